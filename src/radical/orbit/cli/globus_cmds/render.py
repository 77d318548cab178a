"""Output of ``radical-orbit globus``: text records and tables, and the machine formats.

Records mimic the Globus CLI's text output (one ``Name:`` per line, values as the
API returned them), so what people grep for (``Task ID:``) is where they expect it.

The machine formats are the Globus CLI's, in one place for every command: ``-F json``
(the document as the API returned it), ``-F unix`` (tab-separated values for ``cut``
and ``while read``) and ``--jmespath EXPR`` (alias ``--jq``), which reshapes the
document first and turns text output into JSON. Scripts written against
``globus ... -F unix --jq ...`` keep working against ``radical-orbit globus``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from rich import box, filesize
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "ENDPOINT_FIELDS",
    "FORMATS",
    "TASK_FIELDS",
    "OutputError",
    "compile_jmespath",
    "data_list",
    "fmt_bytes",
    "fmt_duration",
    "globus_duration",
    "machine_output",
    "print_record",
    "print_table",
    "task_summary",
    "unix_lines",
]

#: ``-F`` choices, as the Globus CLI's
FORMATS = ("text", "json", "unix")


class OutputError(ValueError):
    """The document cannot be shown as asked (a JMESPath expression failed on it, or
    ``-F unix`` met a shape it cannot flatten); the message says what to change."""


# -- machine formats ---------------------------------------------------------------

def compile_jmespath(text: str) -> Any:
    """A compiled JMESPath expression (``--jmespath``); :class:`OutputError` saying what is wrong if it is not one."""
    import jmespath  # type: ignore[import-untyped]  # no type information shipped (jmespath 1.x)
    from jmespath.exceptions import JMESPathError  # type: ignore[import-untyped]

    if not text.strip():
        raise OutputError("the expression is empty (try 'DATA[].task_id')")
    try:
        return jmespath.compile(text)
    except JMESPathError as exc:
        reason = " ".join(str(exc).split())
        raise OutputError(f"{text!r} is not a JMESPath expression: {reason}") from None


def machine_output(value: Any, fmt: str, expression: Any = None) -> str:
    """``value`` as ``-F json`` or ``-F unix`` text, after the JMESPath ``expression`` if any."""
    if expression is not None:
        from jmespath.exceptions import JMESPathError

        try:
            value = expression.search(value)
        except JMESPathError as exc:  # e.g. a function given the wrong type
            raise OutputError(f"--jmespath {expression.expression!r} failed on this output: {' '.join(str(exc).split())}") from None
    if fmt == "unix":
        return "\n".join(unix_lines(value))
    return json.dumps(value, indent=2, default=str)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def unix_lines(value: Any, tag: str | None = None) -> Iterator[str]:
    """The Globus CLI's ``-F unix`` lines (the AWS CLI's text format).

    A dict prints the values of its scalar keys, sorted by key, on one tab-separated
    line, then each list or dict member under a line naming it in capitals (``DATA``).
    A list of dicts prints one such line per dict (missing keys as ``None``); a list of
    scalars one tab-separated line, or one ``TAG<tab>value`` line each under a name.
    Scalars print as Python's ``str`` (``None``, ``True``).
    """
    if isinstance(value, dict):
        yield from _unix_dict(value, tag, sorted(k for k, v in value.items() if _is_scalar(v)))
    elif isinstance(value, list):
        yield from _unix_list(value, tag)
    else:
        yield str(value)


def _unix_list(items: list[Any], tag: str | None) -> Iterator[str]:
    if not items:
        return
    dicts = [i for i in items if isinstance(i, dict)]
    if dicts and len(dicts) != len(items):
        raise OutputError("-F unix cannot print a list that mixes objects with other values; pick fields with --jmespath")
    if dicts:
        keys = sorted({k for d in dicts for k, v in d.items() if _is_scalar(v)})
        for d in dicts:
            yield from _unix_dict(d, tag, keys)
        return
    scalars = [i for i in items if _is_scalar(i)]
    nested = [i for i in items if isinstance(i, list)]
    if nested:  # the scalars on one line, then each inner list
        if scalars:
            yield "\t".join(str(s) for s in scalars)
        for inner in nested:
            yield from _unix_list(inner, tag)
    elif tag is None:
        yield "\t".join(str(s) for s in scalars)
    else:
        for s in scalars:
            yield f"{tag}\t{s}"


def _unix_dict(doc: dict[str, Any], tag: str | None, keys: list[str]) -> Iterator[str]:
    row = [doc.get(k) for k in keys]
    if any(not _is_scalar(v) for v in row):
        raise OutputError("-F unix cannot print a list whose objects mix values and lists under one key; pick fields with --jmespath")
    if row:
        if tag is not None:
            yield tag
        yield "\t".join(str(v) for v in row)
    for key in sorted(set(doc) - set(keys)):
        yield from unix_lines(doc[key], key.upper())


def _text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def print_record(console: Console, doc: dict[str, Any], fields: Sequence[tuple[str, str]], *, skip_missing: bool = True, skip_none: bool = False) -> None:
    """``Label:   value`` lines for ``fields`` = ``[(label, key), ...]`` (dotted keys nest).

    :param skip_missing: leave out keys the document does not have
    :param skip_none: also leave out keys whose value is null
    """
    rows: list[tuple[str, str]] = []
    for label, key in fields:
        value: Any = doc
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None and (skip_none or (skip_missing and not _has(doc, key))):
            continue
        rows.append((label, _text(value)))
    width = max((len(label) for label, _ in rows), default=0) + 2
    for label, value in rows:
        console.print(f"{label + ':':<{width}}{value}", markup=False, highlight=False, soft_wrap=True)


def _has(doc: dict[str, Any], key: str) -> bool:
    value: Any = doc
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def print_table(console: Console, columns: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]], *, empty: str | None = None) -> None:
    """A rich table of ``rows`` with ``columns`` = ``[(header, key), ...]``; ID columns never wrap."""
    rows = list(rows)
    if not rows and empty:
        console.print(empty, markup=False)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header, key in columns:
        is_id = key in ("id", "task_id") or header.endswith("ID")
        table.add_column(header, no_wrap=is_id, min_width=36 if is_id else None, overflow="fold")
    for row in rows:
        # Text, not str: file names and Globus messages are not rich markup ("[draft].txt")
        table.add_row(*[Text(_text(row.get(key)) if row.get(key) is not None or key in row else "") for _, key in columns])
    console.print(table)


def data_list(result: Any) -> list[dict[str, Any]]:
    """The items of a Globus list document (``{"DATA": [...]}``) or a plain list."""
    if isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    if isinstance(result, dict):
        for key in ("DATA", "data", "tasks", "items", "events", "endpoints"):
            value = result.get(key)
            if isinstance(value, list):
                return [r for r in value if isinstance(r, dict)]
    return []


def fmt_bytes(n: Any) -> str:
    """A byte count as rich writes it (decimal units, as Globus shows sizes); other values as they are."""
    try:
        value = int(n or 0)
    except (TypeError, ValueError):
        return str(n)
    return filesize.decimal(value)


#: ``task show`` fields, in the Globus CLI's order
TASK_FIELDS: list[tuple[str, str]] = [
    ("Label", "label"),
    ("Task ID", "task_id"),
    ("Is Paused", "is_paused"),
    ("Type", "type"),
    ("Directories", "directories"),
    ("Files", "files"),
    ("Status", "status"),
    ("Request Time", "request_time"),
    ("Faults", "faults"),
    ("Total Subtasks", "subtasks_total"),
    ("Subtasks Succeeded", "subtasks_succeeded"),
    ("Subtasks Pending", "subtasks_pending"),
    ("Subtasks Retrying", "subtasks_retrying"),
    ("Subtasks Failed", "subtasks_failed"),
    ("Subtasks Canceled", "subtasks_canceled"),
    ("Subtasks Expired", "subtasks_expired"),
    ("Subtasks with Skipped Errors", "subtasks_skipped_errors"),
    ("Completion Time", "completion_time"),
    ("Deadline", "deadline"),
    ("Source Endpoint", "source_endpoint_display_name"),
    ("Source Endpoint ID", "source_endpoint_id"),
    ("Destination Endpoint", "destination_endpoint_display_name"),
    ("Destination Endpoint ID", "destination_endpoint_id"),
    ("Files Transferred", "files_transferred"),
    ("Files Skipped", "files_skipped"),
    ("Bytes Transferred", "bytes_transferred"),
    ("Bytes Per Second", "effective_bytes_per_second"),
    ("Sync Level", "sync_level"),
    ("Verify Checksum", "verify_checksum"),
    ("Nice Status", "nice_status"),
    ("Fatal Error", "fatal_error"),
]

#: ``endpoint show`` fields
ENDPOINT_FIELDS: list[tuple[str, str]] = [
    ("Display Name", "display_name"),
    ("ID", "id"),
    ("Owner", "owner_string"),
    ("Entity Type", "entity_type"),
    ("Description", "description"),
    ("Organization", "organization"),
    ("Department", "department"),
    ("Keywords", "keywords"),
    ("Contact E-mail", "contact_email"),
    ("Info Link", "info_link"),
    ("Public", "public"),
    ("Shareable", "shareable"),
    ("Default Directory", "default_directory"),
    ("Force Encryption", "force_encryption"),
    ("High Assurance", "high_assurance"),
    ("Globus Connect", "is_globus_connect"),
    ("GCS Version", "gcs_version"),
    ("Subscription ID", "subscription_id"),
    ("Non Functional", "non_functional"),
]


def _count(n: Any, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _globus_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:  # Globus writes "2021-09-02T18:04:47+00:00"; very old answers used a space
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def globus_duration(task: dict[str, Any]) -> float | None:
    """How long Globus says the task ran (``completion_time - request_time``), or None
    while it has no completion time (or the times cannot be read)."""
    start, end = _globus_time(task.get("request_time")), _globus_time(task.get("completion_time"))
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return None
    return max(0.0, (end - start).total_seconds())


def fmt_duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 5 s``, ``2 h 10 min``: readable at a glance, whatever the size."""
    if seconds < 60:  # Globus' times are whole seconds: no made-up decimals for them
        return f"{seconds:.0f} s" if seconds == int(seconds) else f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def task_summary(task: dict[str, Any], elapsed: float | None = None) -> str:
    """``Task <id> SUCCEEDED: 12 files transferred, 3.4 MB, 2.1 s`` -- one line for the end of a wait.

    The duration is Globus' own (request to completion) when the task has ended: a task
    cancelled or finished long before the wait began did not last as long as the wait.
    ``elapsed`` (how long we waited) is the fallback while Globus gives no completion time.
    """
    tid = task.get("task_id", "?")
    status = task.get("status", "?")
    parts: list[str] = []
    if task.get("type") == "DELETE":
        if task.get("files") is not None:
            parts.append(_count(task.get("files"), "file"))
    else:
        done = task.get("files_transferred")
        if done is not None:
            parts.append(_count(done, "file") + " transferred")
        if task.get("files_skipped"):
            parts.append(f"{task['files_skipped']} unchanged (sync)")
        if task.get("subtasks_skipped_errors"):
            parts.append(_count(task["subtasks_skipped_errors"], "skipped error"))
        if task.get("bytes_transferred") is not None:
            parts.append(fmt_bytes(task.get("bytes_transferred")))
    duration = globus_duration(task)
    if duration is None:
        duration = elapsed
    if duration is not None:
        parts.append(fmt_duration(duration))
    line = f"Task {tid} {status}"
    if parts:
        line += ": " + ", ".join(parts)
    fatal = task.get("fatal_error")
    if isinstance(fatal, dict) and fatal:
        line += f" ({fatal.get('code')}: {fatal.get('description')})"
    elif status not in ("SUCCEEDED", "FAILED") and task.get("nice_status"):
        line += f" ({task.get('nice_status')})"
    return line
