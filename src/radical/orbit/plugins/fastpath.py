"""Answer the common plugin route shape without FastAPI's per-request machinery.

Plugins declare ordinary FastAPI routes, mostly ``POST /x`` taking one pydantic body
and returning a dict. For those, FastAPI's middleware stack, routing scan, dependency
solving and response handling cost 0.2-0.6 ms per call on a small host, many times
the handler's own work. :class:`PluginApp` is a ``FastAPI`` that first offers each
request to :class:`FastPath`: a table of such routes, built from ``app.router.routes``
when the app serves its first request, answered directly::

      scope (http, method+path in table, JSON body)    anything else
        -> json.loads, the route's own body field        -> FastAPI, unchanged
        -> await handler(body)
        -> the route's own response field (or jsonable_encoder + JSONResponse)

Output is byte-identical to FastAPI's because the same objects do the work: FastAPI's
``ModelField`` for the body (same errors, locs prefixed ``body``) and for the response
(same ``dump_json``), and the app's registered exception handlers for every error.
Whatever FastAPI treats in a way not reproduced here (no or non-JSON content type,
empty or undecodable body, a client disconnect, telemetry, a ``root_path``) is handed
to FastAPI with the body messages replayed. OpenAPI and the route objects are
untouched.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..text import ascii_json
from .answers import PluginRoute, SafeJSONResponse

__all__ = ["FastPath", "FastRoute", "PluginApp", "fast_route", "fast_route_table"]

log = logging.getLogger(__name__)

_JSON = b"application/json"
_JSON_TYPE = (b"content-type", _JSON)
_Handler = Callable[[Request, Exception], Any]


class _Field(Protocol):
    """The part of FastAPI's ``ModelField`` used here (validation and JSON dump)."""

    def validate(
        self, value: Any, values: dict[str, Any] = ..., *, loc: tuple[int | str, ...] = ...
    ) -> tuple[Any, list[dict[str, Any]]]: ...

    def serialize_json(
        self,
        value: Any,
        *,
        include: Any = ...,
        exclude: Any = ...,
        by_alias: bool = ...,
        exclude_unset: bool = ...,
        exclude_defaults: bool = ...,
        exclude_none: bool = ...,
    ) -> bytes: ...

    def serialize(self, value: Any, *, mode: Literal["json", "python"] = ...) -> Any:
        """As :meth:`serialize_json` (it takes the same options too), to Python objects."""


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One route the fast path answers: what FastAPI would call and with which fields."""

    route: APIRoute
    call: Callable[..., Awaitable[Any]]
    param: str
    body: _Field
    response: _Field | None
    dump: Mapping[str, Any]


def fast_route(route: BaseRoute) -> FastRoute | None:
    """The fast-path entry for ``route``, or None when only FastAPI may answer it.

    Eligible: an ``APIRoute`` with a static path, a plain ``async def`` handler whose
    only parameter is one non-embedded JSON body typed as a pydantic model, no
    dependencies, default status code and response class, no body size limit and no
    streaming. The response model may be anything: the route's own field serialises.
    """
    if not isinstance(route, APIRoute) or route.param_convertors or "{" in route.path:
        return None
    dep = route.dependant
    call = dep.call
    if call is None or not inspect.iscoroutinefunction(call):
        return None
    if dep.path_params or dep.query_params or dep.header_params or dep.cookie_params or dep.dependencies:
        return None
    special = (
        dep.request_param_name,
        dep.websocket_param_name,
        dep.http_connection_param_name,
        dep.response_param_name,
        dep.background_tasks_param_name,
        dep.security_scopes_param_name,
    )
    if any(name is not None for name in special) or len(dep.body_params) != 1:
        return None
    field = dep.body_params[0]
    info = field.field_info
    annotation = info.annotation
    if type(info) is not params.Body or getattr(info, "embed", False) or getattr(route, "_embed_body_fields", True):
        return None
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return None
    response_class = route.response_class
    if not (isinstance(response_class, DefaultPlaceholder) and response_class.value in (JSONResponse, SafeJSONResponse)):
        return None
    if route.status_code is not None or getattr(route, "max_body_size", None) is not None:
        return None
    if getattr(route, "stream_item_field", None) is not None or getattr(route, "is_json_stream", False):
        return None
    if getattr(route, "is_sse_stream", False):
        return None
    dump = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }
    return FastRoute(route, call, field.name, field, route.response_field, dump)


def _first_full_match(routes: Iterable[BaseRoute], method: str, path: str) -> BaseRoute | None:
    """The route Starlette's router would pick for ``method path`` (first full match)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def fast_route_table(app: FastAPI) -> dict[tuple[str, str], FastRoute]:
    """``(method, path) -> FastRoute`` for every eligible route the router would select.

    A route shadowed by an earlier one (a duplicate, a path converter, a mount) is left
    out, as is everything when the app has middleware, a body limit or debug on, since
    the fast path would skip them.
    """
    router = app.router
    if app.user_middleware or app.debug or getattr(app, "max_body_size", None) is not None:
        return {}
    if getattr(router, "max_body_size", None) is not None or getattr(router, "middleware_stack", None) != router.app:
        return {}
    table: dict[tuple[str, str], FastRoute] = {}
    for route in router.routes:
        entry = fast_route(route)
        if entry is None:
            continue
        for method in sorted(entry.route.methods or ()):
            key = (method, entry.route.path)
            if key not in table and _first_full_match(router.routes, *key) is route:
                table[key] = entry
    return table


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when FastAPI would certainly parse the body as JSON (``application/json``).

    FastAPI reads the first ``content-type`` through ``email.message``; this accepts
    only values that parse to ``application/json`` there (parameters ignored). Other
    ``+json`` types and odd spellings go to FastAPI, which decides.
    """
    for key, value in headers:
        if key == b"content-type":
            return value == _JSON or value.partition(b";")[0].strip().lower() == _JSON
    return False


class FastPath:
    """ASGI front of a plugin app's middleware stack; see the module docstring.

    :param app: FastAPI's own middleware stack, which answers everything else
    :param table: from :func:`fast_route_table`
    :param handlers: the app's ``exception_handlers`` (classes and status codes)
    """

    def __init__(self, app: ASGIApp, table: Mapping[tuple[str, str], FastRoute], handlers: Mapping[Any, _Handler]) -> None:
        self.app = app
        self.table = dict(table)
        self.error_handler: _Handler | None = None
        self.class_handlers: dict[type[BaseException], _Handler] = {}
        self.status_handlers: dict[int, _Handler] = {}
        # split as FastAPI.build_middleware_stack does: 500/Exception answer in
        # ServerErrorMiddleware (then re-raise), the rest in ExceptionMiddleware
        for key, handler in handlers.items():
            if key in (500, Exception):
                self.error_handler = handler
            elif isinstance(key, int):
                self.status_handlers[key] = handler
            else:
                self.class_handlers[key] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.table.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if entry is None or scope.get("root_path") or not _is_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # disconnect: FastAPI's answer
                await self._fallback(scope, messages, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if not raw:  # FastAPI's "missing body" path
            await self._fallback(scope, messages, receive, send)
            return
        try:
            data = json.loads(raw)  # bytes, as Request.json(): same encoding detection
        except Exception:  # noqa: BLE001  # bad JSON/UTF-8, too deep: FastAPI answers 422/400
            await self._fallback(scope, messages, receive, send)
            return
        await self._answer(entry, data, scope, receive, send)

    async def _fallback(self, scope: Scope, messages: list[Message], receive: Receive, send: Send) -> None:
        """Hand the request to FastAPI, replaying the body messages already read."""
        pending = deque(messages)

        async def replay() -> Message:
            return pending.popleft() if pending else await receive()

        await self.app(scope, replay, send)

    async def _answer(self, entry: FastRoute, data: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``entry`` with errors handled in FastAPI's two layers.

        Inner (Starlette's exception wrapper): the app's handler for the exception
        class or HTTP status answers. Outer (ServerErrorMiddleware): anything else,
        including a failing handler, gets the 500 handler's answer and is re-raised.
        Both run inside ``except`` blocks, so a logging handler sees the traceback.
        """
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            try:
                await self._run(entry, data, scope, receive, tracked)
            except Exception as exc:
                handler = self._handler_for(exc)
                if handler is None:
                    raise
                if started:
                    raise RuntimeError("Caught handled exception, but response already started.") from exc
                response = await _run_handler(handler, Request(scope, receive, send), exc)
                if response is not None:
                    await response(scope, receive, tracked)
                exc.__traceback__ = None  # as Starlette: reused exceptions must not pile up frames
        except Exception as exc:
            if self.error_handler is None:
                response = PlainTextResponse("Internal Server Error", status_code=500)
            else:
                response = await _run_handler(self.error_handler, Request(scope), exc)
            if not started and response is not None:
                await response(scope, receive, send)
            raise

    async def _run(self, entry: FastRoute, data: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """Validate, call and answer as FastAPI's request handler does for this shape."""
        value, errors = entry.body.validate(data, {}, loc=("body",))
        if errors:
            raise RequestValidationError(errors, body=data)
        result = await entry.call(**{entry.param: value})
        if isinstance(result, Response) or entry.response is None:
            # no response model: FastAPI's jsonable_encoder + the route's response class,
            # verbatim (a plain json.dumps would differ, e.g. it keeps "_sa*" keys)
            if isinstance(result, Response):
                response = result
            else:
                chosen = entry.route.response_class  # a DefaultPlaceholder here (fast_route)
                response_class = chosen.value if isinstance(chosen, DefaultPlaceholder) else chosen
                response = response_class(jsonable_encoder(result))
            await response(scope, receive, send)
            return
        checked, errors = entry.response.validate(result, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors, body=result)
        try:
            body = entry.response.serialize_json(checked, **entry.dump)
        except PydanticSerializationError:
            # text UTF-8 cannot carry, e.g. a file name from a non-UTF-8 file system that
            # Globus or os.fsdecode handed over as lone surrogates: JSON can still say it
            # with \u escapes (a client's json.loads gives the same str back)
            body = ascii_json(entry.response.serialize(checked, mode="json", **entry.dump))
        # what Response(body, media_type="application/json") sends
        headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _handler_for(self, exc: Exception) -> _Handler | None:
        """The app's handler for ``exc``: by HTTP status first, then along the MRO."""
        if isinstance(exc, HTTPException):
            handler = self.status_handlers.get(exc.status_code)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            if cls in self.class_handlers:
                return self.class_handlers[cls]
        return None


async def _run_handler(handler: _Handler, request: Request, exc: Exception) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(request, exc)
    return await run_in_threadpool(handler, request, exc)


class PluginApp(FastAPI):
    """The ``FastAPI`` app of a plugin, answering eligible routes through :class:`FastPath`.

    Still a plain FastAPI app to everything outside (routes, OpenAPI, handlers,
    middleware). The fast path sits in front of ``FastAPI.__call__``, whose check for
    native OpenTelemetry costs ~10 us per request; it steps aside while telemetry is
    on (re-checked once a second), so traced requests see FastAPI's spans.
    """

    #: seconds a "telemetry is off" answer is trusted
    telemetry_recheck: float = 1.0

    def __init__(self, *args: Any, fast_routes: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # answers holding text UTF-8 cannot carry go out with JSON escapes (answers.py)
        self.router.route_class = PluginRoute
        self.fast_routes = fast_routes
        self.fast_table: dict[tuple[str, str], FastRoute] = {}
        self._fast: FastPath | None = None
        self._untraced_until = 0.0

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack; also the fast-path table, from the routes at first use."""
        stack = super().build_middleware_stack()
        try:
            self.fast_table = fast_route_table(self) if self.fast_routes else {}
        except Exception:  # a FastAPI release whose internals differ: FastAPI answers everything
            log.warning("%s: fast path disabled (unexpected FastAPI internals)", self.title, exc_info=True)
            self.fast_table = {}
        self._fast = FastPath(stack, self.fast_table, self.exception_handlers) if self.fast_table else None
        if self.fast_table:
            log.debug("%s: fast path for %s", self.title, ", ".join(f"{m} {p}" for m, p in sorted(self.fast_table)))
        return stack

    def _untraced(self, scope: Scope) -> bool:
        """True when ``FastAPI.__call__`` would just run the stack (no telemetry)."""
        if "fastapi.telemetry" in scope:
            return False
        now = time.monotonic()
        if now < self._untraced_until:
            return True
        telemetry = getattr(self, "_native_telemetry", None)
        if telemetry is not None and telemetry.enabled():
            return False
        self._untraced_until = now + self.telemetry_recheck
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        fast = self._fast
        if fast is None or scope["type"] != "http" or self.root_path or not self._untraced(scope):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette.__call__ does before running the stack
        await fast(scope, receive, send)
