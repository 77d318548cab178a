"""What every Transfer API section shares: the caller's token, collection access, bodies,
query parameters, deadlines and the ``result`` documents Globus answers actions with.

Every Transfer route starts with :func:`authenticate` (Globus's two authentication
errors) and reaches a collection only through :func:`collection` (unknown endpoint,
missing data_access consent), so the sections cannot differ in those answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..bodies import read_json
from ..collections import LATEST_TIME, Collection, PathEscape
from ..context import emulator_of
from ..errors import (
    GlobusError,
    bad_request,
    endpoint_not_found,
    json_response,
    new_request_id,
    permission_denied,
)
from ..filters import parse_globus_time
from ..state import TRANSFER_RS, TokenRecord
from ..task import DEFAULT_DEADLINE, Task

__all__ = [
    "PREFIX",
    "authenticate",
    "body_of",
    "check_path",
    "collection",
    "deadline_of",
    "int_param",
    "own_task",
    "result",
    "too_long",
]

#: the API version every Transfer route lives under
PREFIX = "/v0.10"


def authenticate(request: Request) -> TokenRecord:
    """The caller's token record, or Globus's authentication error."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise GlobusError(400, "ClientError.AuthenticationFailed", "No credentials supplied")
    rec = emulator_of(request).auth.lookup(token.strip())
    if rec is None or rec.kind != "access" or not rec.active():
        raise GlobusError(401, "AuthenticationFailed", "Token is not active")
    if rec.resource_server != TRANSFER_RS:
        raise GlobusError(401, "AuthenticationFailed", "Token is not valid for the Transfer service")
    return rec


def collection(request: Request, endpoint_id: str, token: TokenRecord) -> Collection:
    """The collection ``endpoint_id``, if it exists and ``token`` may use it."""
    coll = emulator_of(request).collections.get(endpoint_id)
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
    """The JSON body validated as ``model``; a 400 naming each bad field otherwise."""
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
    """An integer query parameter within its bounds, or a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: int() also takes "１０", " 10 " and "1_0"
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise bad_request(f"Invalid value for '{name}': {raw[:40]!r} is not an integer")
    value = int(raw)
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


def deadline_of(text: str | None, now: float) -> float:
    """The deadline of a submission or task update: 24 h by default, never in the past."""
    deadline = parse_deadline(text)
    if deadline is None:
        return now + DEFAULT_DEADLINE
    if deadline <= now:
        raise bad_request(f"Invalid deadline '{text}': the deadline must be in the future", "ClientError.BadRequest.InvalidDeadline")
    return deadline


def result(code: str, message: str, resource: str, data_type: str = "result", status: int = 200, **extra: Any) -> Response:
    """Globus's answer to an action: ``{DATA_TYPE, code, message, request_id, resource}``."""
    body = {"DATA_TYPE": data_type, "code": code, "message": message, "request_id": new_request_id(), "resource": resource, **extra}
    return json_response(body, status)


def own_task(request: Request, token: TokenRecord) -> Task:
    """The task in the path, if the caller owns it (another user's task is "not found")."""
    task_id = request.path_params["task_id"]
    task = emulator_of(request).engine.get(task_id)
    if task is None or task.owner_id != token.identity_id:
        raise GlobusError(404, "TaskNotFound", f"Task '{task_id}' not found")
    return task


def too_long(path: str) -> GlobusError:
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
        raise too_long(path) from None
    return gpath
