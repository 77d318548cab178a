"""Globus Transfer API v0.10 routes (``/v0.10/...``), as the SDK and CLI call them."""

from __future__ import annotations

import os
import posixpath
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bodies import read_json
from .collections import LATEST_TIME, Collection, PathEscape
from .context import Emulator
from .errors import (
    GlobusError,
    bad_request,
    endpoint_not_found,
    json_response,
    new_request_id,
    not_found,
    permission_denied,
)
from .filters import apply_orderby, parse_filter, parse_globus_time
from .state import TRANSFER_RS, TokenRecord
from .task import DEFAULT_DEADLINE, FINISHED, Task

__all__ = ["routes"]

PREFIX = "/v0.10"

# ---------------------------------------------------------------- request bodies


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


class _TaskOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    submission_id: str | None = None
    label: str | None = Field(default=None, max_length=128)
    deadline: str | None = None
    notify_on_succeeded: bool = True
    notify_on_failed: bool = True
    notify_on_inactive: bool = True


class TransferRequest(_TaskOptions):
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


class DeleteRequest(_TaskOptions):
    DATA_TYPE: Literal["delete"] = "delete"
    endpoint: str
    recursive: bool = False
    ignore_missing: bool = False
    interpret_globs: bool = False
    local_user: str | None = None
    DATA: list[DeleteItem] = Field(default_factory=list)


class MkdirRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    DATA_TYPE: Literal["mkdir"] = "mkdir"
    path: str = Field(min_length=1)
    local_user: str | None = None


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    DATA_TYPE: Literal["rename"] = "rename"
    old_path: str = Field(min_length=1)
    new_path: str = Field(min_length=1)
    local_user: str | None = None


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    DATA_TYPE: Literal["task"] = "task"
    label: str | None = Field(default=None, max_length=128)
    deadline: str | None = None


SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}

# ---------------------------------------------------------------- helpers


def emu(request: Request) -> Emulator:
    em: Emulator = request.app.state.emulator
    return em


def authenticate(request: Request) -> TokenRecord:
    """The caller's token record, or Globus's authentication error."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise GlobusError(400, "ClientError.AuthenticationFailed", "No credentials supplied")
    rec = emu(request).auth.lookup(token.strip())
    if rec is None or rec.kind != "access" or not rec.active():
        raise GlobusError(401, "AuthenticationFailed", "Token is not active")
    if rec.resource_server != TRANSFER_RS:
        raise GlobusError(401, "AuthenticationFailed", "Token is not valid for the Transfer service")
    return rec


def collection(request: Request, endpoint_id: str, token: TokenRecord) -> Collection:
    coll = emu(request).collections.get(endpoint_id)
    if coll is None:
        raise endpoint_not_found(endpoint_id)
    if coll.spec.requires_data_access and coll.id not in token.consents:
        raise GlobusError(
            403,
            "ConsentRequired",
            "Missing required data_access consent",
            extra={"required_scopes": [coll.required_scope()]},
        )
    return coll


async def body_of(request: Request, model: type[BaseModel]) -> Any:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}")
        raise bad_request("Invalid request: " + "; ".join(parts)) from None


def int_param(request: Request, name: str, default: int, *, maximum: int, minimum: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for '{name}': {raw!r} is not an integer") from None
    if value < minimum or value > maximum:
        raise bad_request(f"Invalid value for '{name}': must be between {minimum} and {maximum}")
    return value


def parse_deadline(text: str | None) -> float | None:
    """Seconds since the epoch; a deadline past 9999-12-31T23:59:59Z (an offset can push
    ``9999-12-31T23:59:59-23:59`` there) is refused: no task document could show it."""
    if text is None:
        return None
    ts = parse_globus_time(text)
    if ts is None:
        raise bad_request(f"Invalid deadline '{text}'", "ClientError.BadRequest.InvalidDeadline")
    if ts > LATEST_TIME:
        raise bad_request(f"Invalid deadline '{text}': it must not be later than 9999-12-31T23:59:59+00:00", "ClientError.BadRequest.InvalidDeadline")
    return ts


def result(code: str, message: str, resource: str, data_type: str = "result", status: int = 200, **extra: Any) -> Response:
    body = {"DATA_TYPE": data_type, "code": code, "message": message, "request_id": new_request_id(), "resource": resource, **extra}
    return json_response(body, status)


def own_task(request: Request, token: TokenRecord) -> Task:
    task_id = request.path_params["task_id"]
    task = emu(request).engine.get(task_id)
    if task is None or task.owner_id != token.identity_id:
        raise GlobusError(404, "TaskNotFound", f"Task '{task_id}' not found")
    return task


def _too_long(path: str) -> GlobusError:
    shown = path if len(path) <= 200 else f"{path[:200]}... ({len(path)} characters)"
    return GlobusError(400, "ClientError.BadRequest.InvalidPath", f"File name too long: {shown}")


def check_path(coll: Collection, path: str) -> str:
    """Normalised Globus path, refusing escapes with the permission error and a path
    the file system cannot hold (too long) at once, as mkdir does."""
    try:
        gpath, _ = coll.resolve(path)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, path) from None
    except OSError:
        raise _too_long(path) from None
    return gpath


def _check_parent(coll: Collection, path: str) -> None:
    try:
        gpath = coll.normalize(path)
        coll.real(posixpath.dirname(gpath))
        coll.fits(gpath)  # the link's own name must fit too (the link is not followed)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, path) from None
    except OSError:
        raise _too_long(path) from None


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


# ---------------------------------------------------------------- submission


async def get_submission_id(request: Request) -> Response:
    authenticate(request)
    return json_response({"DATA_TYPE": "submission_id", "value": emu(request).engine.new_submission_id()})


def _accepted(task: Task, created: bool, kind: str, resource: str) -> Response:
    link = {"DATA_TYPE": "link", "href": f"task/{task.task_id}?format=json", "rel": "related", "resource": "task", "title": "related task"}
    if created:
        msg = f"The {kind} has been accepted and a task has been created and queued for execution"
        return result("Accepted", msg, resource, f"{kind}_result", 202, submission_id=task.submission_id, task_id=task.task_id, task_link=link)
    msg = f"A {kind} with submission_id '{task.submission_id}' was already submitted"
    return result("Duplicate", msg, resource, f"{kind}_result", 200, submission_id=task.submission_id, task_id=task.task_id, task_link=link)


def _deadline(text: str | None, now: float) -> float:
    """The deadline of a submission or task update: 24 h by default, never in the past."""
    deadline = parse_deadline(text)
    if deadline is None:
        return now + DEFAULT_DEADLINE
    if deadline <= now:
        raise bad_request(f"Invalid deadline '{text}': the deadline must be in the future", "ClientError.BadRequest.InvalidDeadline")
    return deadline


async def submit_transfer(request: Request) -> Response:
    token = authenticate(request)
    req: TransferRequest = await body_of(request, TransferRequest)
    em = emu(request)
    if req.submission_id:
        existing = em.engine.submissions.get(req.submission_id)
        if existing and (task := em.engine.get(existing)) is not None:
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
        deadline=_deadline(req.deadline, now),
        label=req.label,
    )
    task, created = em.engine.submit(task)
    return _accepted(task, created, "transfer", request.url.path)


async def submit_delete(request: Request) -> Response:
    token = authenticate(request)
    req: DeleteRequest = await body_of(request, DeleteRequest)
    em = emu(request)
    if req.submission_id:
        existing = em.engine.submissions.get(req.submission_id)
        if existing and (task := em.engine.get(existing)) is not None:
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
        deadline=_deadline(req.deadline, now),
        label=req.label,
    )
    task, created = em.engine.submit(task)
    return _accepted(task, created, "delete", request.url.path)


# ---------------------------------------------------------------- tasks


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
    deadline = _deadline(req.deadline, time.time()) if req.deadline is not None else None
    with task.lock:
        if "label" in req.model_fields_set:
            task.label = req.label
        if deadline is not None:
            task.deadline = deadline
    emu(request).engine.mark_dirty()
    return result("Updated", "Updated successfully", request.url.path)


async def cancel_task(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    code = await run_in_threadpool(emu(request).engine.cancel, task)
    messages = {
        "Canceled": "The task has been cancelled successfully.",
        "CancelAccepted": "The cancel request has been accepted; the task will be cancelled shortly.",
        "TaskComplete": "The task completed before the cancel request was processed.",
    }
    return result(code, messages[code], request.url.path)


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


async def task_list(request: Request) -> Response:
    token = authenticate(request)
    limit = int_param(request, "limit", 10, maximum=1000)
    offset = int_param(request, "offset", 0, maximum=10**9)
    pred = parse_filter(request.query_params.getlist("filter"), TASK_FILTER_FIELDS)
    docs = [t.document() for t in emu(request).engine.list_for(token.identity_id)]
    if pred is not None:
        docs = [d for d in docs if pred(d)]
    docs = apply_orderby(docs, request.query_params.get("orderby"), TASK_ORDER_FIELDS, "request_time DESC")
    page = docs[offset : offset + limit]
    return json_response({"DATA_TYPE": "task_list", "offset": offset, "limit": limit, "total": len(docs), "length": len(page), "DATA": page})


async def task_event_list(request: Request) -> Response:
    token = authenticate(request)
    task = own_task(request, token)
    limit = int_param(request, "limit", 10, maximum=1000)
    offset = int_param(request, "offset", 0, maximum=10**9)
    pred = parse_filter(request.query_params.getlist("filter"), {"is_error": "bool", "code": "str"})
    with task.lock:
        events = list(reversed(task.events))
    if pred is not None:
        events = [e for e in events if pred(e)]
    page = events[offset : offset + limit]
    return json_response({"DATA_TYPE": "event_list", "offset": offset, "limit": limit, "total": len(events), "length": len(page), "DATA": page})


def _marker_page(request: Request, items: list[dict[str, Any]], data_type: str) -> Response:
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


# ---------------------------------------------------------------- file operations

LS_FILTER_FIELDS = {"name": "str", "type": "str", "size": "size", "last_modified": "time", "permissions": "str", "user": "str", "group": "str"}
LS_ORDER_FIELDS = ("name", "type", "size", "last_modified", "permissions", "user", "group")


def _ls(coll: Collection, path: str | None, params: Any) -> dict[str, Any]:
    try:
        gpath, real = coll.resolve(path)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, path or "/~/") from None
    shown = gpath.rstrip("/") + "/"
    if not os.path.exists(real):
        raise not_found(f"Directory '{shown}' not found on endpoint {coll.display_name} ({coll.id})")
    if not os.path.isdir(real):
        raise GlobusError(502, "ExternalError.DirListingFailed.NotDirectory", f"Path '{gpath}' is not a directory")
    show_hidden = params.get("show_hidden", "1").lower() not in ("0", "false", "f")
    limit = int(params.get("limit") or 100000)
    offset = int(params.get("offset") or 0)
    docs = []
    try:
        names = os.listdir(real)
    except PermissionError:
        raise GlobusError(403, "EndpointPermissionDenied", f"Permission denied listing '{shown}'") from None
    if len(names) > 100000:
        raise GlobusError(502, "ExternalError.DirListingFailed.SizeLimit", "Directory has more than 100000 entries")
    for name in names:
        if not show_hidden and name.startswith("."):
            continue
        try:
            docs.append(coll.describe(os.path.join(real, name), name))
        except OSError:
            continue
    pred = parse_filter(params.getlist("filter"), LS_FILTER_FIELDS)
    if pred is not None:
        docs = [d for d in docs if pred(d)]
    docs = apply_orderby(docs, params.get("orderby"), LS_ORDER_FIELDS, "type,name")
    total = len(docs)
    page = docs[offset : offset + limit]
    return {
        "DATA_TYPE": "file_list",
        "DATA": page,
        "path": shown,
        "absolute_path": None,
        "endpoint": coll.id,
        "length": len(page),
        "total": total,
        "offset": offset,
        "limit": limit,
        "rename_supported": True,
        "symlink_supported": True,
    }


async def operation_ls(request: Request) -> Response:
    token = authenticate(request)
    coll = collection(request, request.path_params["endpoint_id"], token)
    int_param(request, "limit", 100000, maximum=100000)
    int_param(request, "offset", 0, maximum=10**9)
    doc = await run_in_threadpool(_ls, coll, request.query_params.get("path"), request.query_params)
    return json_response(doc)


def _mkdir(coll: Collection, path: str) -> None:
    try:
        gpath, real = coll.resolve(path)
    except PathEscape:
        raise GlobusError(403, "ExternalError.MkdirFailed.PermissionDenied", f"Permission denied: {path}") from None
    if os.path.lexists(real):
        raise GlobusError(502, "ExternalError.MkdirFailed.Exists", f"Path already exists, Error Path '{gpath}' already exists")
    try:
        os.mkdir(real)
    except FileNotFoundError:
        raise not_found(f"Parent directory of '{gpath}' not found") from None
    except NotADirectoryError:
        raise GlobusError(502, "ExternalError.MkdirFailed.NotDirectory", f"A parent of '{gpath}' is not a directory") from None
    except PermissionError:
        raise GlobusError(403, "ExternalError.MkdirFailed.PermissionDenied", f"Permission denied: {gpath}") from None


async def operation_mkdir(request: Request) -> Response:
    token = authenticate(request)
    coll = collection(request, request.path_params["endpoint_id"], token)
    req: MkdirRequest = await body_of(request, MkdirRequest)
    await run_in_threadpool(_mkdir, coll, req.path)
    return result("DirectoryCreated", "The directory was created successfully", request.url.path, "mkdir_result", 202)


def _rename(coll: Collection, old: str, new: str) -> None:
    try:
        ogp, oreal = coll.resolve(old)
        ngp, nreal = coll.resolve(new)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, f"{old} -> {new}") from None
    if ogp == "/" or ngp == "/":
        raise GlobusError(400, "InvalidPath", "Cannot rename the collection root")
    if not os.path.lexists(oreal):
        raise GlobusError(404, "NotFound", f"Path not found: '{ogp}' does not exist")
    if os.path.lexists(nreal):
        raise GlobusError(409, "Exists", f"Destination '{ngp}' already exists")
    if not os.path.isdir(os.path.dirname(nreal)):
        raise GlobusError(502, "EndpointError", f"Error renaming: parent directory of '{ngp}' does not exist")
    if (ngp + "/").startswith(ogp.rstrip("/") + "/"):
        raise GlobusError(400, "InvalidPath", "Cannot move a directory into itself")
    try:
        os.rename(oreal, nreal)
    except PermissionError:
        raise GlobusError(403, "EndpointPermissionDenied", f"Permission denied renaming '{ogp}'") from None
    except OSError as exc:
        raise GlobusError(502, "EndpointError", f"Error renaming '{ogp}': {exc.strerror}") from None


async def operation_rename(request: Request) -> Response:
    token = authenticate(request)
    coll = collection(request, request.path_params["endpoint_id"], token)
    req: RenameRequest = await body_of(request, RenameRequest)
    await run_in_threadpool(_rename, coll, req.old_path, req.new_path)
    return result("FileRenamed", "File or directory renamed successfully", request.url.path)


def _stat(coll: Collection, path: str | None) -> dict[str, Any]:
    try:
        gpath, real = coll.resolve(path)
    except PathEscape:
        raise permission_denied(coll.display_name, coll.id, path or "/~/") from None
    if not os.path.lexists(real):
        raise GlobusError(
            404,
            "NotFound",
            f"Path not found, Error (list)\nEndpoint: {coll.display_name} ({coll.id})\nMessage: No such file or directory\n---\nDetails: Error: '{path}' not found\n",
        )
    name = os.path.basename(gpath.rstrip("/")) or "/"
    return coll.describe(real, name)


async def operation_stat(request: Request) -> Response:
    token = authenticate(request)
    coll = collection(request, request.path_params["endpoint_id"], token)
    doc = await run_in_threadpool(_stat, coll, request.query_params.get("path"))
    return json_response(doc)


# ---------------------------------------------------------------- endpoints

SCOPES = (
    "all",
    "my-endpoints",
    "my-gcp-endpoints",
    "recently-used",
    "in-use",
    "shared-by-me",
    "shared-with-me",
    "administered-by-me",
    "hide-no-permissions",
)


async def endpoint_search(request: Request) -> Response:
    token = authenticate(request)
    q = request.query_params
    scope = q.get("filter_scope") or "all"
    if scope not in SCOPES:
        raise bad_request(f"Invalid filter_scope '{scope}'; valid scopes: {', '.join(SCOPES)}")
    text = (q.get("filter_fulltext") or "").strip()
    if scope == "all" and not text:
        raise bad_request("filter_fulltext is required when filter_scope is 'all'")
    limit = int_param(request, "limit", 25, maximum=100, minimum=1)
    offset = int_param(request, "offset", 0, maximum=999)
    words = [w.lower() for w in text.replace(",", " ").split() if w]
    raw_nf = q.get("filter_non_functional")
    non_functional = None if raw_nf in (None, "") else raw_nf.lower() in ("1", "true", "t", "yes")
    out = []
    for coll in emu(request).collections:
        doc = coll.endpoint_document()
        mine = doc["owner_id"] == token.identity_id
        if scope in ("my-endpoints", "administered-by-me") and not mine:
            continue
        if scope == "my-gcp-endpoints" and not (mine and doc["is_globus_connect"]):
            continue
        if scope in ("shared-by-me", "shared-with-me") and not doc["entity_type"].endswith(("guest_collection", "share")):
            continue
        if q.get("filter_owner_id") and doc["owner_id"] != q.get("filter_owner_id"):
            continue
        if q.get("filter_host_endpoint") and doc["host_endpoint_id"] != q.get("filter_host_endpoint"):
            continue
        if q.get("filter_entity_type") and doc["entity_type"] != q.get("filter_entity_type"):
            continue
        if non_functional is not None and non_functional != doc["non_functional"]:
            continue
        if words:
            haystack = coll.search_text()
            if coll.id not in words and not all(any(h.startswith(w) for h in haystack) for w in words):
                continue
        out.append(doc)
    page = out[offset : offset + limit]
    return json_response({"DATA_TYPE": "endpoint_list", "offset": offset, "limit": limit, "has_next_page": offset + limit < len(out), "DATA": page})


async def get_endpoint(request: Request) -> Response:
    authenticate(request)
    coll = emu(request).collections.get(request.path_params["endpoint_id"])
    if coll is None:
        raise endpoint_not_found(request.path_params["endpoint_id"])
    return json_response(coll.endpoint_document())


routes = [
    Route(f"{PREFIX}/submission_id", get_submission_id, methods=["GET"]),
    Route(f"{PREFIX}/transfer", submit_transfer, methods=["POST"]),
    Route(f"{PREFIX}/delete", submit_delete, methods=["POST"]),
    Route(f"{PREFIX}/task_list", task_list, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}", get_task, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}", update_task, methods=["PUT"]),
    Route(f"{PREFIX}/task/{{task_id}}/cancel", cancel_task, methods=["POST"]),
    Route(f"{PREFIX}/task/{{task_id}}/event_list", task_event_list, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/successful_transfers", successful_transfers, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/skipped_errors", skipped_errors, methods=["GET"]),
    Route(f"{PREFIX}/task/{{task_id}}/pause_info", pause_info, methods=["GET"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/ls", operation_ls, methods=["GET"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/mkdir", operation_mkdir, methods=["POST"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/rename", operation_rename, methods=["POST"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/stat", operation_stat, methods=["GET"]),
    Route(f"{PREFIX}/endpoint_search", endpoint_search, methods=["GET"]),
    Route(f"{PREFIX}/endpoint/{{endpoint_id}}", get_endpoint, methods=["GET"]),
]

