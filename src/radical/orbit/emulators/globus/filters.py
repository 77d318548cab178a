"""Globus's filter and orderby syntax for ``task_list`` and ``operation_ls``.

``filter`` is ``field:value/field2:value``; commas inside a value mean OR. String
values may start with an operator: ``=`` (default), ``!``, ``~`` (case-insensitive
glob with ``*``), ``!~``. Several ``filter`` query parameters are ORed (what the
CLI's recursive ls relies on). ``orderby`` is ``field [ASC|DESC],field2 ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .errors import bad_request

__all__ = ["apply_orderby", "glob_matcher", "parse_filter", "string_matcher", "time_range_matcher"]

Predicate = Callable[[dict[str, Any]], bool]


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a whole value matches ``pattern``, ignoring case, with ``*`` (any run of
    characters) as Globus's only wildcard: ``?`` and ``[...]`` are plain characters.

    In time linear in the value per part: the parts between stars are found left to
    right with ``str.find``. (A regular expression of ``.*`` runs backtracked
    exponentially: ten stars kept the emulator busy for minutes.)
    """
    parts = pattern.casefold().split("*")
    if len(parts) == 1:
        exact = parts[0]
        return lambda value: value.casefold() == exact
    head, *middle, tail = parts
    middle = [part for part in middle if part]
    least = len(head) + len(tail) + sum(map(len, middle))

    def match(value: str) -> bool:
        text = value.casefold()
        if len(text) < least or not text.startswith(head) or not text.endswith(tail):
            return False
        pos, end = len(head), len(text) - len(tail)
        for part in middle:
            found = text.find(part, pos, end)
            if found < 0:
                return False
            pos = found + len(part)
        return True

    return match


def string_matcher(spec: str) -> Callable[[str | None], bool]:
    """A predicate for one string clause value (with operator prefix and commas)."""
    negate = False
    fuzzy = False
    if spec.startswith("!~"):
        negate, fuzzy, spec = True, True, spec[2:]
    elif spec.startswith("~"):
        fuzzy, spec = True, spec[1:]
    elif spec.startswith("!"):
        negate, spec = True, spec[1:]
    elif spec.startswith("="):
        spec = spec[1:]
    if fuzzy:
        glob = glob_matcher(spec)

        def match(value: str | None) -> bool:
            ok = value is not None and glob(value)
            return ok != negate

        return match
    options = set(spec.split(","))

    def match_exact(value: str | None) -> bool:
        ok = (value if value is not None else "") in options or (value is None and "null" in options)
        return ok != negate

    return match_exact


def parse_globus_time(text: str) -> float | None:
    """Seconds since the epoch for the date/time forms Globus accepts, or None.

    ``2030-01-01T00:00:00Z``, ``2030-01-01 10:00:00`` (no zone: UTC), ``2030-01-01``
    and ``+00:00`` offsets.
    """
    text = text.strip().replace("Z", "+00:00")
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            dt = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    return None


def _parse_time(text: str) -> float:
    ts = parse_globus_time(text)
    if ts is not None:
        return ts
    raise bad_request(f"Invalid date/time '{text}' in filter")


def time_range_matcher(spec: str) -> Callable[[str | None], bool]:
    """``start,end`` (either may be empty) against a Globus time string."""
    start_s, _, end_s = spec.partition(",")
    start = _parse_time(start_s) if start_s.strip() else None
    end = _parse_time(end_s) if end_s.strip() else None

    def match(value: str | None) -> bool:
        if value is None:
            return False
        ts = _parse_time(value)
        return (start is None or ts >= start) and (end is None or ts <= end)

    return match


def size_matcher(spec: str) -> Callable[[Any], bool]:
    ops = []
    for part in spec.split(","):
        part = part.strip()
        for prefix in (">=", "<=", ">", "<", "="):
            if part.startswith(prefix):
                op, num = prefix, part[len(prefix) :]
                break
        else:
            op, num = "=", part
        try:
            n = int(num)
        except ValueError:
            raise bad_request(f"Invalid size '{part}' in filter") from None
        ops.append((op, n))

    def match(value: Any) -> bool:
        v = int(value or 0)
        for op, n in ops:
            if not {">": v > n, "<": v < n, ">=": v >= n, "<=": v <= n, "=": v == n}[op]:
                return False
        return True

    return match


def _enum_matcher(spec: str) -> Callable[[Any], bool]:
    opts = {s.strip().upper() for s in spec.split(",")}
    return lambda v: str(v).upper() in opts


def _bool_matcher(spec: str) -> Callable[[Any], bool]:
    want = spec.strip().lower() in ("1", "true", "t", "yes")
    return lambda v: bool(v) == want


def parse_filter(values: Iterable[str], fields: dict[str, str]) -> Predicate | None:
    """One predicate for repeated ``filter`` params; ``fields`` maps name -> kind (str|time|size|enum)."""
    alternatives: list[list[tuple[str, Callable[[Any], bool]]]] = []
    for value in values:
        if not value:
            continue
        clauses: list[tuple[str, Callable[[Any], bool]]] = []
        for clause in value.split("/"):
            if not clause:
                continue
            name, sep, spec = clause.partition(":")
            if not sep or name not in fields:
                raise bad_request(f"Invalid filter field '{name}'; valid fields: {', '.join(sorted(fields))}", "ClientError.BadRequest.InvalidFilter")
            kind = fields[name]
            if kind == "time":
                clauses.append((name, time_range_matcher(spec)))
            elif kind == "size":
                clauses.append((name, size_matcher(spec)))
            elif kind == "enum":
                clauses.append((name, _enum_matcher(spec)))
            elif kind == "bool":
                clauses.append((name, _bool_matcher(spec)))
            else:
                clauses.append((name, string_matcher(spec)))
        if clauses:
            alternatives.append(clauses)
    if not alternatives:
        return None

    def predicate(doc: dict[str, Any]) -> bool:
        return any(all(m(doc.get(f)) for f, m in clauses) for clauses in alternatives)

    return predicate


def apply_orderby(
    docs: list[dict[str, Any]],
    orderby: str | None,
    allowed: Iterable[str],
    default: str,
    *,
    exact: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """Sort by ``orderby`` (``field [ASC|DESC]`` comma list).

    ``exact`` gives, per field, the values to sort by in the order of ``docs`` when a
    document shows a rounded one: Globus writes times to the second but sorts by the
    time itself, so tasks submitted in the same second still list newest first.
    """
    spec = orderby or default
    keys: list[tuple[str, bool]] = []
    allowed_set = set(allowed)
    for part in spec.split(","):
        words = part.split()
        if not words:
            continue
        field = words[0]
        if field not in allowed_set:
            raise bad_request(f"Invalid orderby field '{field}'", "ClientError.BadRequest.InvalidOrderBy")
        desc = len(words) > 1 and words[1].upper() == "DESC"
        keys.append((field, desc))
    exact = exact or {}
    order = list(range(len(docs)))
    for field, desc in reversed(keys):
        values = exact.get(field)
        column = list(values) if values is not None else [d.get(field) for d in docs]
        order.sort(key=lambda i: (column[i] is None, column[i] if column[i] is not None else 0), reverse=desc)
    return [docs[i] for i in order]
