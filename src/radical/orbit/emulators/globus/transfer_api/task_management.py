"""Task Management (Globus Transfer API reference): reading, updating and cancelling tasks.

``task_list``, ``task/{id}`` (GET, PUT), ``task/{id}/cancel``, ``event_list``,
``successful_transfers``, ``skipped_errors`` and ``pause_info``. A user sees only their
own tasks: another user's task id answers ``TaskNotFound``, as Globus does. The task
documents themselves come from :meth:`Task.document <..task.Task.document>`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import emulator_of
from ..errors import GlobusError, bad_request, json_response
from ..filters import apply_orderby, parse_filter
from ..task import FINISHED
from .common import (
    PREFIX,
    authenticate,
    body_of,
    deadline_of,
    int_param,
    own_task,
    result,
)

__all__ = ["routes"]


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    DATA_TYPE: Literal["task"] = "task"
    label: str | None = Field(default=None, max_length=128)
    deadline: str | None = None


TASK_FILTER_FIELDS = {
    "task_id": "str",
    "type": "enum",
    "status": "enum",
    "label": "str",
    "request_time": "time",
    "completion_time": "time",
    "owner_id": "str",
    "source_endpoint_id": "str",
    "destination_endpoint_id": "str",
    "is_paused": "bool",
}
TASK_ORDER_FIELDS = (
    "task_id",
    "type",
    "status",
    "label",
    "request_time",
    "completion_time",
    "deadline",
    "files",
    "bytes_transferred",
    "source_endpoint_display_name",
    "destination_endpoint_display_name",
)

CANCEL_MESSAGES = {
    "Canceled": "The task has been cancelled successfully.",
    "CancelAccepted": "The cancel request has been accepted; the task will be cancelled shortly.",
    "TaskComplete": "The task completed before the cancel request was processed.",
}


async def task_list(request: Request) -> Response:
    token = authenticate(request)
    limit = int_param(request, "limit", 10, maximum=1000, minimum=1)
    offset = int_param(request, "offset", 0, maximum=10**9)
    pred = parse_filter(request.query_params.getlist("filter"), TASK_FILTER_FIELDS)
    listed = [(t, t.document()) for t in emulator_of(request).engine.list_for(token.identity_id)]
    if pred is not None:
        listed = [(t, d) for t, d in listed if pred(d)]
    docs = [d for _, d in listed]
    # documents show times to the second; the order follows the times themselves
    exact: dict[str, list[float | None]] = {
        "request_time": [t.request_time for t, _ in listed],
        "completion_time": [t.completion_time for t, _ in listed],
        "deadline": [t.deadline for t, _ in listed],
    }
    docs = apply_orderby(docs, request.query_params.get("orderby"), TASK_ORDER_FIELDS, "request_time DESC", exact=exact)
    page = docs[offset : offset + limit]
    return json_response({"DATA_TYPE": "task_list", "offset": offset, "limit": limit, "total": len(docs), "length": len(page), "DATA": page})


async def get_task(request: Request) -> Response:
    token = authenticate(request)
    return json_response(own_task(request, token).document())


async def update_task(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    req: TaskUpdate = await body_of(request, TaskUpdate)
    if task.status in FINISHED:
        raise GlobusError(409, "Conflict", f"Task '{task.task_id}' is already complete and cannot be updated")
    # Globus documents no deadline rule for an update: the submit rule applies. Checked
    # first, so a refused update changes nothing.
    deadline = deadline_of(req.deadline, time.time()) if req.deadline is not None else None
    with task.lock:
        if "label" in req.model_fields_set:
            task.label = req.label
        if deadline is not None:
            task.deadline = deadline
    emulator_of(request).engine.mark_dirty()
    return result("Updated", "Updated successfully", request.url.path)


async def cancel_task(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    code = await run_in_threadpool(emulator_of(request).engine.cancel, task)
    return result(code, CANCEL_MESSAGES[code], request.url.path)


async def task_event_list(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    limit = int_param(request, "limit", 10, maximum=1000, minimum=1)
    offset = int_param(request, "offset", 0, maximum=10**9)
    pred = parse_filter(request.query_params.getlist("filter"), {"is_error": "bool", "code": "str"})
    with task.lock:
        events = list(reversed(task.events))
    if pred is not None:
        events = [e for e in events if pred(e)]
    page = events[offset : offset + limit]
    return json_response({"DATA_TYPE": "event_list", "offset": offset, "limit": limit, "total": len(events), "length": len(page), "DATA": page})


def _marker_page(request: Request, items: list[dict[str, Any]], data_type: str) -> Response:
    """A marker-paginated list (successful_transfers, skipped_errors): the marker is a position."""
    raw = request.query_params.get("marker") or "0"
    try:
        marker = int(raw)
    except ValueError:
        marker = -1
    if marker < 0:  # a marker is a position this API handed out: never negative
        raise bad_request(f"Invalid marker {raw[:100]!r}")
    limit = int_param(request, "limit", 1000, maximum=1000, minimum=1)
    page = items[marker : marker + limit]
    nxt = marker + limit if marker + limit < len(items) else None
    return json_response({"DATA_TYPE": data_type, "marker": marker, "next_marker": nxt, "DATA": page})


async def successful_transfers(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    if task.type != "TRANSFER":
        raise bad_request("successful_transfers is only available for TRANSFER tasks")
    if task.status not in FINISHED:
        raise bad_request("successful_transfers is only available for completed tasks")
    with task.lock:
        items = list(task.successful)
    return _marker_page(request, items, "successful_transfers")


async def skipped_errors(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    if task.type != "TRANSFER":
        raise bad_request("skipped_errors is only available for TRANSFER tasks")
    with task.lock:
        items = list(task.skipped)
    return _marker_page(request, items, "skipped_errors")


async def pause_info(request: Request) -> Response:
    """Always empty: the emulator has no pause rules."""
    token = authenticate(request)
    own_task(request, token)
    return json_response(
        {
            "DATA_TYPE": "pause_info_limited",
            "pause_rules": [],
            "source_pause_message": None,
            "destination_pause_message": None,
            "source_pause_message_share": None,
            "destination_pause_message_share": None,
        }
    )


routes = [
    Route(f"{PREFIX}/task_list", task_list, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}", get_task, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}", update_task, methods=["PUT"]),
    Route(f"{PREFIX}/task/{{task_id}}/cancel", cancel_task, methods=["POST"]),
    Route(f"{PREFIX}/task/{{task_id}}/event_list", task_event_list, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/successful_transfers", successful_transfers, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/skipped_errors", skipped_errors, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/pause_info", pause_info, methods=["GET"]),
]
