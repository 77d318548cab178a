"""Text output of ``radical-orbit globus``: records (``Key: value``) and rich tables.

Records mimic the Globus CLI's text output (one ``Name:`` per line, values as the
API returned them), so what people grep for (``Task ID:``) is where they expect it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich import box, filesize
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["ENDPOINT_FIELDS", "TASK_FIELDS", "data_list", "fmt_bytes", "print_record", "print_table", "task_summary"]


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


def task_summary(task: dict[str, Any], elapsed: float | None = None) -> str:
    """``Task <id> SUCCEEDED: 12 files transferred, 3.4 MB, 2.1 s`` -- one line for the end of a wait."""
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
    if elapsed is not None:
        parts.append(f"{elapsed:.1f} s")
    line = f"Task {tid} {status}"
    if parts:
        line += ": " + ", ".join(parts)
    fatal = task.get("fatal_error")
    if isinstance(fatal, dict) and fatal:
        line += f" ({fatal.get('code')}: {fatal.get('description')})"
    elif status not in ("SUCCEEDED", "FAILED") and task.get("nice_status"):
        line += f" ({task.get('nice_status')})"
    return line
