"""Argument shapes of ``radical-orbit globus``: ``COLLECTION:PATH``, batch files, deadlines.

These follow the Globus CLI: a collection is a UUID (or ``local``, the endpoint's
local collection), a path follows the first ``:``, and a ``--batch`` file has one
``SRC_PATH DST_PATH [--recursive]`` pair per line, parsed like a shell command line
(quotes and backslashes work, ``#`` starts a comment, blank lines are skipped).
"""

from __future__ import annotations

import posixpath
import re
import shlex
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import click

from ...errors import quoted
from ..params import GlobusId

__all__ = [
    "DEADLINE_FORMATS",
    "BatchFile",
    "CollectionPath",
    "batch_items",
    "batch_paths",
    "format_deadline",
    "notify_options",
    "orderby_param",
    "ordered_filter_rules",
    "parse_collection",
]

LOCAL = "local"

#: the Globus CLI's ``--deadline`` formats
DEADLINE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]

#: longest ``--batch`` line, in bytes: shlex needs about a minute for a 1 MB line
MAX_BATCH_LINE = 64 * 1024


def _check_collection(value: str, raw: str) -> str:
    if value.lower() == LOCAL:
        return LOCAL
    try:
        uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(
            f"{raw!r}: a collection is a UUID or 'local' (the endpoint's local collection); "
            "find UUIDs with `radical-orbit globus endpoint search TEXT`"
        ) from None
    return value


def parse_collection(raw: str, *, path: str = "optional") -> tuple[str, str | None]:
    """Split ``COLLECTION[:PATH]`` at the first ``:``.

    :param path: ``"optional"``, ``"required"`` or ``"forbidden"``
    :returns: ``(collection, path or None)``
    """
    coll, sep, rest = raw.partition(":")
    if not coll:
        raise click.BadParameter(f"{raw!r}: missing the collection before ':'")
    coll = _check_collection(coll, raw)
    the_path: str | None = rest if sep and rest else None
    if path == "required" and the_path is None:
        raise click.BadParameter(f"{raw!r}: expected COLLECTION:PATH (for example local:/~/data/)")
    if path == "forbidden" and sep:
        raise click.BadParameter(f"{raw!r}: expected only a collection (UUID or 'local'), no ':PATH'")
    return coll, the_path


class CollectionPath(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """Click type for ``COLLECTION[:PATH]`` arguments; converts to ``(collection, path)``."""

    name = "COLLECTION[:PATH]"

    def __init__(self, path: str = "optional") -> None:
        self.path = path
        if path == "required":
            self.name = "COLLECTION:PATH"
        elif path == "forbidden":
            self.name = "COLLECTION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return parse_collection(str(value), path=self.path)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _join(prefix: str | None, path: str) -> str:
    return posixpath.join(prefix, path) if prefix else path


class BatchFile(click.File):
    """``click.File("rb")`` whose ``-`` fails as a usage error when there is no
    standard input to read (a closed stdin: click raises a bare RuntimeError)."""

    def __init__(self) -> None:
        super().__init__("rb")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except RuntimeError:
            self.fail("standard input is closed, so '-' has nothing to read; give a file name", param, ctx)


def _quoted(text: str) -> str:
    """A bad ``--batch`` line or word, stripped and quoted short (:func:`errors.quoted`)."""
    return quoted(text.strip())


def _bounded(lines: Iterable[str | bytes]) -> Iterator[str | bytes]:
    """The lines of a file read one at a time, each cut after ``MAX_BATCH_LINE + 1`` bytes
    (so an over-long one is seen as such); other iterables as they are.

    Iterating a file reads a whole line first: /dev/zero, which has no newline, used
    all the memory there was before the length check could refuse it.
    """
    readline = getattr(lines, "readline", None)
    if readline is None:
        yield from lines
        return
    while True:
        raw: str | bytes = readline(MAX_BATCH_LINE + 1)
        if not raw:
            return
        yield raw


def _batch_lines(lines: Iterable[str | bytes]) -> Iterator[tuple[str, str]]:
    """``(where, line)`` pairs, ``where`` being ``--batch FILE: line N``.

    The file is opened in binary mode and decoded here, line by line, so a bad byte
    is a usage error naming its line (the text layer raised UnicodeDecodeError from
    a read-ahead chunk); over-long lines are refused before shlex spends minutes on them.
    """
    name = getattr(lines, "name", None)
    source = "--batch " + ("-" if name in (None, "<stdin>") else str(name))
    for lineno, raw in enumerate(_bounded(lines), start=1):
        where = f"{source}: line {lineno}"
        if len(raw) > MAX_BATCH_LINE:
            raise click.BadParameter(f"{where} is longer than {MAX_BATCH_LINE // 1024} KiB; put one entry per line")
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise click.BadParameter(f"{where} is not valid UTF-8; save the file as UTF-8") from None
        yield where, raw


def batch_items(
    lines: Iterable[str | bytes],
    *,
    source_prefix: str | None = None,
    dest_prefix: str | None = None,
    recursive: bool | None = None,
    checksum_algorithm: str | None = None,
) -> list[dict[str, Any]]:
    """Transfer items from ``--batch`` lines.

    A line is ``[--recursive|--no-recursive] [--external-checksum SUM]
    [--checksum-algorithm ALG] SRC_PATH DST_PATH`` (options anywhere on the line).
    Relative paths are joined to the command line's paths (prefixes), absolute ones
    are used as they are. A line without a flag inherits ``recursive`` and
    ``checksum_algorithm``.
    """
    items: list[dict[str, Any]] = []
    for where, line in _batch_lines(lines):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise click.BadParameter(f"{where}: {exc}") from None
        if not words:
            continue
        rec = recursive
        values: dict[str, str] = {}
        paths: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            name, eq, value = word.partition("=")
            if word in ("-r", "--recursive"):
                rec = True
            elif word == "--no-recursive":
                rec = False
            elif name in ("--external-checksum", "--checksum-algorithm"):
                if not eq:
                    if i + 1 >= len(words):
                        raise click.BadParameter(f"{where}: {name} needs a value")
                    i += 1
                    value = words[i]
                values[name[2:].replace("-", "_")] = value
            elif word.startswith("-") and len(word) > 1:
                raise click.BadParameter(
                    f"{where}: unknown option {_quoted(word)} "
                    "(allowed: --recursive, --no-recursive, --external-checksum, --checksum-algorithm)"
                )
            else:
                paths.append(word)
            i += 1
        if len(paths) != 2:
            raise click.BadParameter(f"{where}: expected 'SRC_PATH DST_PATH [--recursive]', got {_quoted(line)}")
        item: dict[str, Any] = {"source": _join(source_prefix, paths[0]), "destination": _join(dest_prefix, paths[1])}
        if rec is not None:
            item["recursive"] = rec
        if "external_checksum" in values:
            item["external_checksum"] = values["external_checksum"]
        alg = values.get("checksum_algorithm", checksum_algorithm)
        if alg:
            item["checksum_algorithm"] = alg
        items.append(item)
    if not items:
        raise click.BadParameter("the batch input holds no 'SRC_PATH DST_PATH' line")
    return items


#: Globus's longest task label
MAX_LABEL = 128
#: ``--submission-id``: checked when the command line is read, so ``--dry-run`` refuses what the submission would
SUBMISSION_ID = GlobusId("; give the submission_id an earlier submit printed")


def label_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--label``: at most :data:`MAX_LABEL` characters, as Globus takes them."""
    if value is not None and len(value) > MAX_LABEL:
        raise click.BadParameter(f"is {len(value)} characters long; Globus takes labels of at most {MAX_LABEL}")
    return value


NOTIFY_CHOICES = ("on", "off", "succeeded", "failed", "inactive")


def notify_options(value: str | None) -> dict[str, bool]:
    """The Globus CLI's ``--notify`` (comma list of on/off/succeeded/failed/inactive) as
    ``notify_on_*`` flags; ``{}`` when not given (Globus' defaults: all on)."""
    if value is None:
        return {}
    words = {w.strip().lower() for w in value.split(",") if w.strip()}
    bad = words - set(NOTIFY_CHOICES)
    if bad or not words:
        raise click.BadParameter(f"--notify {value!r}: use a comma list of {', '.join(NOTIFY_CHOICES)}")
    if words & {"on", "off"} and len(words) > 1:
        raise click.BadParameter("--notify: 'on' and 'off' cannot be combined with other values")
    if "on" in words or "off" in words:
        flag = "on" in words
        return {f"notify_on_{k}": flag for k in ("succeeded", "failed", "inactive")}
    return {f"notify_on_{k}": k in words for k in ("succeeded", "failed", "inactive")}


def orderby_param(values: tuple[str, ...]) -> str | None:
    """``--orderby name:DESC`` (repeatable) as Globus' ``orderby=name DESC,size ASC``."""
    out = []
    for value in values:
        fld, _, direction = value.partition(":")
        direction = (direction or "ASC").upper()
        if not fld or direction not in ("ASC", "DESC"):
            raise click.BadParameter(f"--orderby {value!r}: expected FIELD[:ASC|DESC]")
        out.append(f"{fld} {direction}")
    return ",".join(out) or None


def batch_paths(lines: Iterable[str | bytes], *, prefix: str | None = None) -> list[str]:
    """Paths from a delete ``--batch``: one ``PATH`` a line (quoted like a shell word)."""
    out: list[str] = []
    for where, line in _batch_lines(lines):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise click.BadParameter(f"{where}: {exc}") from None
        if not words:
            continue
        if len(words) != 1:
            raise click.BadParameter(f"{where}: expected one PATH, got {_quoted(line)}")
        out.append(_join(prefix, words[0]))
    if not out:
        raise click.BadParameter("the batch input holds no PATH line")
    return out


def format_deadline(value: datetime | None) -> str | None:
    """ISO 8601 (``YYYY-MM-DDTHH:MM:SS``), local time as given, like the Globus CLI."""
    return value.replace(microsecond=0, tzinfo=None).isoformat() if value is not None else None  # strftime %Y: "1" for 0001


_FILTER_OPT = re.compile(r"^--(include|exclude)(?:=(.*))?$")


def ordered_filter_rules(argv: list[str], includes: tuple[str, ...], excludes: tuple[str, ...]) -> list[dict[str, str]]:
    """``--include``/``--exclude`` as Globus filter rules, in command-line order.

    Click groups repeated options per name, but the first matching rule wins, so the
    order across both options matters; it is recovered from ``argv``. Like the
    Globus CLI, rules apply to files (``type: file``).
    """
    seen: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        m = _FILTER_OPT.match(word)
        if m:
            if m.group(2) is not None:
                seen.append((m.group(1), m.group(2)))
            elif i + 1 < len(argv):
                seen.append((m.group(1), argv[i + 1]))
                i += 1
        i += 1
    want = sorted([("include", v) for v in includes] + [("exclude", v) for v in excludes])
    if sorted(seen) != want:  # argv did not tell us (e.g. called programmatically)
        seen = [("include", v) for v in includes] + [("exclude", v) for v in excludes]
    return [{"method": m, "name": v, "type": "file"} for m, v in seen]
