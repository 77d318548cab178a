"""Answer one relayed Request frame by calling a plugin's ASGI app in-process.

No sockets and no HTTP server: the frame becomes an ASGI ``http`` scope whose path
is the route part (``/{plugin}/info`` -> ``/info``), the app's ``send`` messages are
collected into a Response frame. Anything the app fails to answer becomes a JSON
error body in the shape every Orbit server uses.

The identity the bridge names in ``x-orbit-identity`` is the current identity
(:func:`~radical.orbit.plugins.caller.current_identity`) while the app answers, so
a plugin knows whose sessions the request may use.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Scope

from ..errors import OrbitError, PluginDisabledError, PluginNotFoundError
from ..models.messages import Request, Response, decode_body, encode_body
from ..plugins.caller import calling_as, identity_in

__all__ = ["ASGIApp", "Dispatcher", "HostedPlugin", "build_scope", "call_asgi", "error_response"]

log = logging.getLogger(__name__)

_JSON = [("content-type", "application/json")]


@dataclass
class HostedPlugin:
    """A plugin as the dispatcher sees it: an app when enabled, a reason when not."""

    name: str
    app: ASGIApp | None
    reason: str | None = None


def error_response(request_id: str, exc: OrbitError) -> Response:
    """A Response frame carrying ``exc`` as Orbit's JSON error body."""
    body = json.dumps(exc.to_payload(request_id))
    return Response(id=request_id, status=exc.status_code, headers=list(_JSON), body=body)


def _latin1(text: str) -> bytes:
    """HTTP header bytes: latin-1 as on the wire, UTF-8 for anything latin-1 cannot hold."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


@functools.lru_cache(maxsize=1024)
def _raw_path(route: str) -> bytes:
    """``route`` re-quoted as it would appear on the wire (routes repeat: cached)."""
    return quote(route, safe="/:@!$&'()*+,;=-._~").encode("ascii")


def build_scope(frame: Request, route: str) -> Scope:
    """The ASGI ``http`` scope for ``frame``, rooted at the plugin (``path`` = ``route``).

    ``frame.path`` is the decoded path (what Starlette hands the bridge), so
    ``raw_path`` is re-quoted from it.
    """
    try:  # nearly always latin-1; the per-header fallback only when one is not
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in frame.headers]
    except UnicodeEncodeError:
        headers = [(_latin1(k.lower()), _latin1(v)) for k, v in frame.headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": frame.method.upper(),
        "scheme": "http",
        "path": route,
        "raw_path": _raw_path(route),
        "query_string": _latin1(frame.query),
        "root_path": "",
        "headers": headers,
        "client": ("orbit-bridge", 0),
        "server": ("orbit-endpoint", 0),
        "state": {},
        "extensions": {},
    }


async def call_asgi(app: ASGIApp, scope: Scope, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run ``app`` for one request; returns ``(status, headers, body)``.

    The body is delivered in one ``http.request`` message; after the response is
    complete ``receive`` reports ``http.disconnect`` (as a server would).
    """
    sent_body = False
    done: asyncio.Event | None = None  # made only if the app asks for more than the body
    finished = False
    status: int | None = None
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body, done
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        if not finished:
            if done is None:
                done = asyncio.Event()
            await done.wait()
        return {"type": "http.disconnect"}

    def finish() -> None:
        nonlocal finished
        finished = True
        if done is not None:
            done.set()

    async def send(message: Message) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ()))
        elif kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(bytes(chunk))
            if not message.get("more_body", False):
                finish()

    try:
        await app(scope, receive, send)
    finally:
        finish()
    if status is None:
        raise RuntimeError("the plugin app returned without starting a response")
    return status, headers, b"".join(chunks)


class Dispatcher:
    """Route Request frames to hosted plugins by the first path segment."""

    def __init__(self, plugins: dict[str, HostedPlugin]) -> None:
        self.plugins = plugins

    def _split(self, path: str) -> tuple[str, str]:
        name, _, rest = path.lstrip("/").partition("/")
        return name, "/" + rest

    async def handle(self, frame: Request) -> Response:
        """Answer ``frame``; never raises (a failing plugin becomes a 500 frame)."""
        name, route = self._split(frame.path)
        hosted = self.plugins.get(name)
        if hosted is None:
            known = ", ".join(sorted(self.plugins)) or "none"
            return error_response(
                frame.id,
                PluginNotFoundError(f"no plugin '{name}' on this endpoint (plugins: {known})", plugin=name),
            )
        if hosted.app is None:
            return error_response(
                frame.id,
                PluginDisabledError(f"plugin '{name}' is disabled on this endpoint: {hosted.reason}", plugin=name),
            )
        scope = build_scope(frame, route)
        try:
            with calling_as(identity_in(frame.headers)):
                status, headers, body = await call_asgi(hosted.app, scope, decode_body(frame.body, frame.body_encoding))
        except Exception as exc:  # a plugin bug must become a 500, not kill the agent
            log.exception("plugin %s failed on %s %s (request %s)", name, frame.method, route, frame.id)
            return error_response(
                frame.id,
                OrbitError(f"plugin '{name}' failed on {frame.method} {route} ({type(exc).__name__}); "
                           f"this is a bug, please report request {frame.id}"),
            )
        text, encoding = encode_body(body)
        # every field is already of its model type (status from int(), headers str pairs)
        return Response.model_construct(id=frame.id, status=status, headers=headers, body=text, body_encoding=encoding)
