"""``create_app(settings)``: the Starlette app serving Transfer, Auth and admin routes."""

from __future__ import annotations

import asyncio
import errno
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import admin_api, auth_api, login_pages, transfer_api
from .context import Emulator
from .errors import GlobusError, error_response
from .settings import EmulatorSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ID_SEGMENT = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?=/|$)")


def route_key(method: str, path: str) -> str:
    """``GET /v0.10/task/{id}``: the counter key of a request."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"


class FaultMiddleware:
    """Counts requests per route, adds latency and injects random errors (pure ASGI)."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        faults = self.emulator.faults
        faults.count(route_key(scope["method"], path))
        latency, err = faults.request_fault(path)
        if latency:
            await asyncio.sleep(latency)
        if err is not None:
            status, code, message, headers = err
            response = error_response(GlobusError(status, code, message, headers=headers), path)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _on_globus_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlobusError)
    return error_response(exc, request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err = GlobusError(404, "ClientError.NotFound", f"No such resource: {request.url.path}")
    elif exc.status_code == 405:
        err = GlobusError(405, "ClientError.MethodNotAllowed", f"Method {request.method} not allowed on {request.url.path}")
    else:
        err = GlobusError(exc.status_code, "ClientError.BadRequest", str(exc.detail))
    return error_response(err, request.url.path)


#: file-system errors a collection operation can hit, as Globus reports them
_OS_ERRORS: dict[int, tuple[int, str]] = {
    errno.ENAMETOOLONG: (400, "ClientError.BadRequest.InvalidPath"),
    errno.EINVAL: (400, "ClientError.BadRequest.InvalidPath"),
    errno.EACCES: (403, "EndpointPermissionDenied"),
    errno.EPERM: (403, "EndpointPermissionDenied"),
    errno.ENOENT: (404, "ClientError.NotFound"),
    errno.EEXIST: (409, "Exists"),
}


async def _on_os_error(request: Request, exc: Exception) -> Response:
    """An OSError that a route did not map itself: Globus's answer, never the host's path."""
    assert isinstance(exc, OSError)
    status, code = _OS_ERRORS.get(exc.errno or 0, (502, "EndpointError"))
    reason = exc.strerror or type(exc).__name__
    where = request.query_params.get("path")
    err = GlobusError(status, code, f"{reason}" + (f": {where}" if where else ""))
    log.info("file operation failed on %s %s: %s (%s)", request.method, request.url.path, code, reason)
    return error_response(err, request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("emulator bug on %s %s", request.method, request.url.path)
    err = GlobusError(500, "InternalError", f"Emulator internal error ({type(exc).__name__})")
    return error_response(err, request.url.path)


def create_app(settings: EmulatorSettings | None = None, *, emulator: Emulator | None = None) -> Starlette:
    """Build the emulator app; ``app.state.emulator`` holds its state.

    The task engine's threads start here; they stop when the app's lifespan ends
    (or on :meth:`Emulator.close`).
    """
    em = emulator or Emulator(settings or EmulatorSettings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {}
        em.close()

    app = Starlette(
        routes=[*admin_api.routes, *auth_api.routes, *login_pages.routes, *transfer_api.routes],
        exception_handlers={
            GlobusError: _on_globus_error,
            HTTPException: _on_http_error,
            OSError: _on_os_error,
            Exception: _on_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.emulator = em
    app.add_middleware(FaultMiddleware, emulator=em)
    return app
