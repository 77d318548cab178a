"""File Operations (Globus Transfer API reference): ``ls``, ``mkdir``, ``rename``, ``stat``
under ``operation/endpoint/{id}/``.

These answer synchronously, on a worker thread (a large directory must not stall other
callers). Every path goes through the collection's one gate, so an escape is Globus's
permission error and the host's own layout never shows in an answer.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..collections import Collection, PathEscape
from ..errors import GlobusError, json_response, not_found, permission_denied
from ..filters import apply_orderby, parse_filter
from .common import PREFIX, authenticate, body_of, collection, int_param, result

__all__ = ["routes"]

#: the most entries one ``ls`` lists (Globus's own limit)
LS_MAX = 100000


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
    limit = int(params.get("limit") or LS_MAX)
    offset = int(params.get("offset") or 0)
    docs = []
    try:
        names = os.listdir(real)
    except PermissionError:
        raise GlobusError(403, "EndpointPermissionDenied", f"Permission denied listing '{shown}'") from None
    if len(names) > LS_MAX:
        raise GlobusError(502, "ExternalError.DirListingFailed.SizeLimit", f"Directory has more than {LS_MAX} entries")
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
    int_param(request, "limit", LS_MAX, maximum=LS_MAX)
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


routes = [
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/ls", operation_ls, methods=["GET"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/mkdir", operation_mkdir, methods=["POST"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/rename", operation_rename, methods=["POST"]),
    Route(f"{PREFIX}/operation/endpoint/{{endpoint_id}}/stat", operation_stat, methods=["GET"]),
]
