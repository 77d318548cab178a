"""How ``GlobusClient`` shapes its arguments and results, on the client side only.

Arguments are shaped here (lists built, ids, dates and paths turned into strings)
before they are sent; a value of the wrong shape is a :class:`~radical.orbit.errors.UsageError`
naming the argument, not a ``TypeError`` from the shaping itself. Values of the right
shape but wrong content are the endpoint's to judge (a 422 naming the field).

Results gain the keys the original Orbit's results had (docs/compat.md), added here so
nothing extra crosses the wire; :func:`globus_document` takes them off again.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import UsageError

__all__ = ["ORIGINAL_KEYS", "body", "globus_document", "jsonable", "listed", "records", "strings"]

#: the keys the original Orbit's results had, added client-side, by Globus document type
ORIGINAL_KEYS: dict[str, tuple[str, ...]] = {
    "file_list": ("entries", "collection"),
    "task_list": ("tasks",),
    "endpoint_list": ("endpoints",),
}


def globus_document(result: Any) -> Any:
    """``result`` without the original Orbit's keys: the document as Globus sent it.

    For printing it (the CLI's JSON output mirrors the Globus CLI's), where the added
    keys would only repeat ``DATA``.
    """
    if not isinstance(result, dict):
        return result
    added = ORIGINAL_KEYS.get(str(result.get("DATA_TYPE")), ())
    return {k: v for k, v in result.items() if k not in added}


def listed(doc: Any, key: str) -> dict[str, Any]:
    """Globus's list document plus the original's name for its ``DATA`` (the same list)."""
    out = dict(doc)
    out.setdefault(key, out.get("DATA", []))
    return out


def jsonable(value: Any) -> Any:
    """Dates as ISO 8601 and UUIDs as text (what JSON carries); anything else as it is."""
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def body(**kwargs: Any) -> dict[str, Any]:
    """A request body: the arguments given (None means unset, so left out), JSON-ready."""
    return {k: jsonable(v) for k, v in kwargs.items() if v is not None}


def records(value: Any, name: str, example: str) -> list[dict[str, Any]]:
    """A list of dicts (``items``, ``filter_rules``); one dict alone is the usual slip."""
    if isinstance(value, Mapping):
        raise UsageError(f"{name} must be a list of dicts; wrap the single one in a list: {name}=[{example}]")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UsageError(f"{name} must be a list of dicts such as [{example}], got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise UsageError(f"{name}[{index}] must be a dict such as {example}, got {type(item).__name__}")
        out.append(dict(item))
    return out


def task_id_text(value: Any) -> str:
    """A task id given as ``str`` or ``uuid.UUID``, as text; anything else (None, bytes) is
    a :class:`UsageError` here, not a 422 about the string ``'None'`` from the endpoint."""
    if isinstance(value, (str, uuid.UUID)):
        return str(value)
    raise UsageError(f"task_id must be a task id (a str or uuid.UUID such as the task_id a submission returned), got {type(value).__name__}")


def strings(value: Any, name: str, what: str) -> list[str]:
    """One string or a list of them (paths, statuses, ids): always a list of strings."""
    if isinstance(value, (str, uuid.UUID)):
        return [str(value)]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise UsageError(f"{name} must be {what} or a list of them, got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, (str, uuid.UUID)):
            raise UsageError(f"{name}[{index}] must be {what}, got {type(item).__name__}")
        out.append(str(item))
    return out
