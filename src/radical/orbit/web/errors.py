"""Helpers shared by our FastAPI apps (bridge and plugin apps): one error mapping.

Any :class:`~radical.orbit.errors.OrbitError` becomes ``{"code", "message",
"details", "request_id"}`` with its status; request validation failures become a
422 whose message names each bad field; anything else is a 500 that is logged with
a traceback, because a 5xx from our code is a bug.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import OrbitError, describe_validation_errors
from ..text import ascii_json

log = logging.getLogger(__name__)


def request_id_of(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


class ErrorJSONResponse(JSONResponse):
    """JSON that quoting what the client sent cannot break (see :func:`ascii_json`):
    otherwise a lone surrogate in a message would turn a 4xx into a 500."""

    def render(self, content: Any) -> bytes:
        return ascii_json(content)


def error_response(exc: OrbitError, request_id: str) -> JSONResponse:
    return ErrorJSONResponse(exc.to_payload(request_id), status_code=exc.status_code)


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping from exceptions to HTTP answers on ``app``."""

    async def on_orbit_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrbitError)
        return error_response(exc, request_id_of(request))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, fields = describe_validation_errors(exc.errors())
        body = {
            "code": "validation_error",
            "message": message,
            "details": {"fields": fields},
            "request_id": request_id_of(request),
        }
        return ErrorJSONResponse(body, status_code=422)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 401: "unauthorized"}
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        body = {
            "code": codes.get(exc.status_code, "http_error"),
            "message": message,
            "details": {},
            "request_id": request_id_of(request),
        }
        return ErrorJSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id_of(request)
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, rid)
        body = {
            "code": "internal_error",
            "message": f"internal error ({type(exc).__name__}); this is a bug, please report request {rid}",
            "details": {},
            "request_id": rid,
        }
        return ErrorJSONResponse(body, status_code=500)

    app.add_exception_handler(OrbitError, on_orbit_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
