"""The emulator's own routes: ``GET /health`` and the admin API under ``/_emulator/``.

Not part of Globus; the prefix cannot clash with a Globus path. Unauthenticated by
design (the emulator binds to loopback and plays a test double):

- ``GET /health``, ``GET /_emulator/info`` — collections (incl. the local one), ids
- ``POST /_emulator/token`` ``{"scope"?, "refresh"?, "lifetime"?, "consents"?: [collection ids]}``
  — a token for the dev user (what the CLI's ``emulator token`` prints)
- ``POST /_emulator/clients`` — register a new confidential client
- ``POST /_emulator/expire_tokens`` — expire every access token now
- ``GET|PATCH /_emulator/login`` ``{"auto_approve"?, "code_lifetime"?}`` — browser-login
  settings: auto-approve answers the authorize URL with a code, without the consent page
- ``POST /_emulator/expire_codes`` — expire every outstanding authorization code now
- ``GET|PUT|PATCH|DELETE /_emulator/faults`` — read / replace / merge / reset faults
- ``POST /_emulator/faults/paths``, ``DELETE /_emulator/faults/paths/{id}`` — path faults
- ``GET|DELETE /_emulator/counters`` — per-route request counters
- ``POST /_emulator/tasks/{task_id}/suspend`` ``{"nice_status"?}`` / ``.../resume`` — make a
  task INACTIVE (as expired credentials do) and back
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bodies import read_json
from .context import emulator_of
from .errors import GlobusError, bad_request, json_response
from .faults import FaultSettings, PathFault
from .settings import UuidText
from .state import TRANSFER_SCOPE, Identity, ScopeError

__all__ = ["routes"]


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str | None = None
    refresh: bool = False
    lifetime: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)  # ten years at most
    consents: list[UuidText] = Field(default_factory=list, description="collection ids to grant data_access for")


async def _json(request: Request) -> Any:
    """The body (``{}`` when blank), through the same gate as the Transfer routes."""
    return await read_json(request, allow_empty=True)


def _invalid(exc: PydanticValidationError) -> GlobusError:
    return bad_request("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))


def _validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise _invalid(exc) from None


async def health(request: Request) -> Response:
    return json_response(emulator_of(request).health())


async def info(request: Request) -> Response:
    em = emulator_of(request)
    body = em.health()
    body["client_id"] = em.settings.client_id
    body["token_lifetime"] = em.settings.token_lifetime
    return json_response(body)


async def dev_token(request: Request) -> Response:
    em = emulator_of(request)
    req: DevTokenRequest = _validate(DevTokenRequest, await _json(request))
    scope = req.scope or TRANSFER_SCOPE
    if req.consents:
        deps = " ".join(f"*https://auth.globus.org/scopes/{c}/data_access" for c in req.consents)
        scope = f"{TRANSFER_SCOPE}[{deps}]" if not req.scope else scope
    try:
        body = em.auth.grant(Identity.dev(), em.settings.native_client_id, scope, refresh=req.refresh, lifetime=req.lifetime)
    except ScopeError as exc:
        raise bad_request(f"Unknown scope: {exc}") from None
    body["client_id"] = em.settings.native_client_id
    return json_response(body)


class NewClientRequest(BaseModel):
    """``POST /_emulator/clients``: a generated client, or one with the id and/or secret given
    (a client a test or a Globus CLI configuration already names)."""

    model_config = ConfigDict(extra="forbid")

    client_id: UuidText | None = None
    client_secret: str | None = Field(default=None, min_length=8, max_length=256, pattern=r"^[\x21-\x7e]+$", repr=False)


async def new_client(request: Request) -> Response:
    em = emulator_of(request)
    req: NewClientRequest = _validate(NewClientRequest, await _json(request))
    if req.client_id is not None and em.auth.has_client(req.client_id):
        raise GlobusError(409, "Conflict", f"client_id {req.client_id} is registered already; leave it out for a new one")
    cid, secret = em.auth.new_client(req.client_id, req.client_secret)
    return json_response({"client_id": cid, "client_secret": secret})


async def expire_tokens(request: Request) -> Response:
    return json_response({"expired": emulator_of(request).auth.expire_all()})


class LoginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_approve: bool | None = None
    code_lifetime: int | None = Field(default=None, ge=1, le=3600)


async def login(request: Request) -> Response:
    logins = emulator_of(request).logins
    if request.method == "PATCH":
        req: LoginSettings = _validate(LoginSettings, await _json(request))
        if req.auto_approve is not None:
            logins.auto_approve = req.auto_approve
        if req.code_lifetime is not None:
            logins.code_lifetime = req.code_lifetime
    return json_response({"auto_approve": logins.auto_approve, "code_lifetime": logins.code_lifetime})


async def expire_codes(request: Request) -> Response:
    return json_response({"expired": emulator_of(request).logins.expire_codes()})


async def faults(request: Request) -> Response:
    state = emulator_of(request).faults
    if request.method == "PUT":
        state.configure(_validate(FaultSettings, await _json(request)))
    elif request.method == "PATCH":
        data = await _json(request)
        if not isinstance(data, dict):
            raise bad_request("PATCH body must be a JSON object")
        try:
            state.update(data)
        except PydanticValidationError as exc:
            raise _invalid(exc) from None
    elif request.method == "DELETE":
        state.reset()
    return json_response(state.snapshot())


async def add_path_fault(request: Request) -> Response:
    fault = _validate(PathFault, await _json(request))
    if emulator_of(request).collections.get(fault.collection) is None:
        raise GlobusError(404, "EndpointNotFound", f"No such endpoint '{fault.collection}'")
    emulator_of(request).faults.add_path_fault(fault)
    return json_response(fault.model_dump(), 201)


async def remove_path_fault(request: Request) -> Response:
    fid = request.path_params["fault_id"]
    if not emulator_of(request).faults.remove_path_fault(fid):
        raise GlobusError(404, "ClientError.NotFound", f"No path fault '{fid}'")
    return json_response({"removed": fid})


async def counters(request: Request) -> Response:
    state = emulator_of(request).faults
    if request.method == "DELETE":
        state.reset_counters()
    snap = state.snapshot()
    return json_response({"counters": snap["counters"], "injected": snap["injected"]})


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nice_status: str = "Creds Expired"


async def suspend_task(request: Request) -> Response:
    engine = emulator_of(request).engine
    task = engine.get(request.path_params["task_id"])
    if task is None:
        raise GlobusError(404, "TaskNotFound", f"Task '{request.path_params['task_id']}' not found")
    if request.url.path.endswith("/suspend"):
        req: SuspendRequest = _validate(SuspendRequest, await _json(request))
        changed = engine.suspend(task, req.nice_status)
    else:
        changed = engine.resume(task)
    if not changed:
        raise GlobusError(409, "Conflict", f"Task '{task.task_id}' is {task.status}")
    return json_response(task.document())


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/_emulator/info", info, methods=["GET"]),
    Route("/_emulator/token", dev_token, methods=["POST"]),
    Route("/_emulator/clients", new_client, methods=["POST"]),
    Route("/_emulator/expire_tokens", expire_tokens, methods=["POST"]),
    Route("/_emulator/login", login, methods=["GET", "PATCH"]),
    Route("/_emulator/expire_codes", expire_codes, methods=["POST"]),
    Route("/_emulator/faults", faults, methods=["GET", "PUT", "PATCH", "DELETE"]),
    Route("/_emulator/faults/paths", add_path_fault, methods=["POST"]),
    Route("/_emulator/faults/paths/{fault_id}", remove_path_fault, methods=["DELETE"]),
    Route("/_emulator/counters", counters, methods=["GET", "DELETE"]),
    Route("/_emulator/tasks/{task_id}/suspend", suspend_task, methods=["POST"]),
    Route("/_emulator/tasks/{task_id}/resume", suspend_task, methods=["POST"]),
]
