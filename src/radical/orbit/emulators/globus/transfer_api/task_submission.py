"""Task Submission (Globus Transfer API reference): ``submission_id``, ``transfer``, ``delete``.

A submission is checked whole before a task exists (every item's paths, the
deadline, the sync level), so a bad one is a clear 400/403 instead of a task that
fails later; a reused ``submission_id`` answers 200 ``Duplicate`` with the original
task, which is what makes Globus submissions safe to retry.
"""

from __future__ import annotations

import posixpath
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..collections import Collection, PathEscape
from ..context import emulator_of
from ..errors import bad_request, json_response, permission_denied
from ..task import Task
from .common import (
    PREFIX,
    authenticate,
    body_of,
    check_path,
    collection,
    deadline_of,
    result,
    too_long,
)

__all__ = ["DeleteRequest", "TransferRequest", "routes"]


class FilterRule(BaseModel):
    model_config = ConfigDict(extra="allow")
    DATA_TYPE: Literal["filter_rule"] = "filter_rule"
    method: Literal["include", "exclude"]
    name: str
    type: Literal["file", "dir"] | None = None


class TransferItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    DATA_TYPE: Literal["transfer_item", "transfer_symlink_item"] = "transfer_item"
    source_path: str = Field(min_length=1)
    destination_path: str = Field(min_length=1)
    recursive: bool | None = None
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


class TaskOptions(BaseModel):
    """What a transfer and a delete submission have in common."""

    model_config = ConfigDict(extra="allow")
    submission_id: str | None = None
    label: str | None = Field(default=None, max_length=128)
    deadline: str | None = None
    notify_on_succeeded: bool = True
    notify_on_failed: bool = True
    notify_on_inactive: bool = True


class TransferRequest(TaskOptions):
    DATA_TYPE: Literal["transfer"] = "transfer"
    source_endpoint: str
    destination_endpoint: str
    sync_level: int | Literal["exists", "size", "mtime", "checksum"] | None = None
    verify_checksum: bool = False
    preserve_timestamp: bool = False
    encrypt_data: bool = False
    skip_source_errors: bool = False
    fail_on_quota_errors: bool = False
    delete_destination_extra: bool = False
    recursive_symlinks: Literal["ignore", "keep", "copy"] | None = None
    source_local_user: str | None = None
    destination_local_user: str | None = None
    filter_rules: list[FilterRule] | None = None
    DATA: list[TransferItem] = Field(default_factory=list)


class DeleteItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    DATA_TYPE: Literal["delete_item"] = "delete_item"
    path: str = Field(min_length=1)


class DeleteRequest(TaskOptions):
    DATA_TYPE: Literal["delete"] = "delete"
    endpoint: str
    recursive: bool = False
    ignore_missing: bool = False
    interpret_globs: bool = False
    local_user: str | None = None
    DATA: list[DeleteItem] = Field(default_factory=list)


SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}


def _check_parent(coll: Collection, path: str) -> None:
    """A symlink item's path: its parent must resolve inside the root and its name must fit."""
    try:
        gpath = coll.normalize(path)
        coll.real(posixpath.dirname(gpath))
        coll.fits(gpath)  # the link's own name must fit too (the link is not followed)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, path) from None
    except OSError:
        raise too_long(path) from None


def _check_transfer_items(src: Collection, dst: Collection, items: list[Any]) -> None:
    for item in items:
        if item.DATA_TYPE == "transfer_symlink_item":  # the link itself moves, not its target
            _check_parent(src, item.source_path)
            _check_parent(dst, item.destination_path)
            continue
        check_path(src, item.source_path)
        check_path(dst, item.destination_path)


def _check_delete_items(coll: Collection, items: list[Any]) -> None:
    for item in items:
        check_path(coll, item.path)


def _accepted(task: Task, created: bool, kind: str, resource: str) -> Response:
    link = {"DATA_TYPE": "link", "href": f"task/{task.task_id}?format=json", "rel": "related", "resource": "task", "title": "related task"}
    if created:
        msg = f"The {kind} has been accepted and a task has been created and queued for execution"
        return result("Accepted", msg, resource, f"{kind}_result", 202, submission_id=task.submission_id, task_id=task.task_id, task_link=link)
    msg = f"A {kind} with submission_id '{task.submission_id}' was already submitted"
    return result("Duplicate", msg, resource, f"{kind}_result", 200, submission_id=task.submission_id, task_id=task.task_id, task_link=link)


def _duplicate(request: Request, submission_id: str | None) -> Task | None:
    """The task an earlier submission with this id created, if any."""
    if not submission_id:
        return None
    engine = emulator_of(request).engine
    existing = engine.submissions.get(submission_id)
    return engine.get(existing) if existing else None


async def get_submission_id(request: Request) -> Response:
    authenticate(request)
    return json_response({"DATA_TYPE": "submission_id", "value": emulator_of(request).engine.new_submission_id()})


async def submit_transfer(request: Request) -> Response:
    token = authenticate(request)
    req: TransferRequest = await body_of(request, TransferRequest)
    if (task := _duplicate(request, req.submission_id)) is not None:
        return _accepted(task, False, "transfer", request.url.path)
    if not req.DATA:
        raise bad_request("A transfer requires at least one item", "ClientError.BadRequest.NoTransferItems")
    src = collection(request, req.source_endpoint, token)
    dst = collection(request, req.destination_endpoint, token)
    # in a thread: 100,000 items take seconds, which must not stall every other caller
    await run_in_threadpool(_check_transfer_items, src, dst, req.DATA)
    sync = req.sync_level
    if isinstance(sync, str):
        sync = SYNC_LEVELS[sync]
    if sync is not None and not 0 <= sync <= 3:
        raise bad_request("sync_level must be between 0 and 3")
    now = time.time()
    payload = req.model_dump(mode="json")
    payload["sync_level"] = sync
    if req.filter_rules is None:
        payload["filter_rules"] = None
    task = Task(
        task_id=str(uuid.uuid4()),
        type="TRANSFER",
        owner_id=token.identity_id,
        username=token.username,
        submission_id=req.submission_id or str(uuid.uuid4()),
        request=payload,
        source_endpoint_id=src.id,
        destination_endpoint_id=dst.id,
        source_display_name=src.display_name,
        destination_display_name=dst.display_name,
        request_time=now,
        deadline=deadline_of(req.deadline, now),
        label=req.label,
    )
    task, created = emulator_of(request).engine.submit(task)
    return _accepted(task, created, "transfer", request.url.path)


async def submit_delete(request: Request) -> Response:
    token = authenticate(request)
    req: DeleteRequest = await body_of(request, DeleteRequest)
    if (task := _duplicate(request, req.submission_id)) is not None:
        return _accepted(task, False, "delete", request.url.path)
    if not req.DATA:
        raise bad_request("A delete requires at least one item", "ClientError.BadRequest.NoDeleteItems")
    coll = collection(request, req.endpoint, token)
    await run_in_threadpool(_check_delete_items, coll, req.DATA)
    now = time.time()
    task = Task(
        task_id=str(uuid.uuid4()),
        type="DELETE",
        owner_id=token.identity_id,
        username=token.username,
        submission_id=req.submission_id or str(uuid.uuid4()),
        request=req.model_dump(mode="json"),
        source_endpoint_id=coll.id,
        destination_endpoint_id=None,
        source_display_name=coll.display_name,
        destination_display_name=None,
        request_time=now,
        deadline=deadline_of(req.deadline, now),
        label=req.label,
    )
    task, created = emulator_of(request).engine.submit(task)
    return _accepted(task, created, "delete", request.url.path)


routes = [
    Route(f"{PREFIX}/submission_id", get_submission_id, methods=["GET"]),
    Route(f"{PREFIX}/transfer", submit_transfer, methods=["POST"]),
    Route(f"{PREFIX}/delete", submit_delete, methods=["POST"]),
]
