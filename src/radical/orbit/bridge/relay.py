"""The hot path: any HTTP request on ``/{endpoint}/{plugin}[/{route}]`` -> endpoint -> back.

A raw ASGI handler (no routing, no Request object): read the body under the size
limit, wrap it in a ``request`` frame with a fresh id, send it on the
endpoint's socket, wait for the ``response`` frame with that id, write it out.
Errors use the shared ``{"code","message","details","request_id"}`` body.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import secrets
from typing import Any

from starlette.types import Receive, Scope, Send

from ..errors import OrbitError, PayloadTooLargeError, UpstreamError, UsageError
from ..models.messages import IDENTITY_HEADER, decode_body, encode_body, oversize
from .identity import identity_of
from .registry import Registry
from .settings import BridgeSettings

log = logging.getLogger(__name__)

#: Never forwarded in either direction (RFC 9110 7.6.1), plus what is the bridge's own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
#: ``x-orbit-identity`` is the bridge's to say (who the caller is), never the client's;
#: a browser's session cookie and CSRF header are the bridge's business, not the endpoint's
_DROP_REQUEST = HOP_BY_HOP | {"host", "authorization", "x-request-id", IDENTITY_HEADER, "cookie", "x-orbit-csrf"}
_DROP_REQUEST_B = frozenset(name.encode("latin-1") for name in _DROP_REQUEST)
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "date", "server"}

TIMEOUT_HEADER = b"x-orbit-timeout"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _header_bytes(text: str) -> bytes:
    """Header bytes as on the wire (latin-1), UTF-8 for what latin-1 cannot hold."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode("ascii")),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def send_error(send: Send, exc: OrbitError, request_id: str | None) -> None:
    headers = [(b"x-request-id", request_id.encode("ascii"))] if request_id else []
    if exc.status_code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="radical.orbit"'))
    await send_json(send, exc.status_code, exc.to_payload(request_id), headers)


class RequestIds:
    """Request ids: 32 hex characters, unique for the life of the bridge process.

    A random per-process prefix and a counter. Responses are matched per endpoint
    connection by these ids, so they only need to be unique, and unlike uuid4 they
    cost no ``getrandom`` system call on the hot path.
    """

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


class Relay:
    """ASGI app for the relay routes; ``path`` must be ``/{endpoint}/{plugin}...``."""

    def __init__(self, settings: BridgeSettings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.max_body = settings.max_body
        self.default_timeout = settings.request_timeout
        self.max_timeout = settings.max_request_timeout
        self.debug = log.isEnabledFor(logging.DEBUG)
        self.new_id = RequestIds()

    def _timeout(self, raw: bytes | None) -> float:
        if raw is None:
            return self.default_timeout
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value > 0 or math.isinf(value):
            raise UsageError(
                f"X-Orbit-Timeout must be a positive number of seconds, got {raw.decode('latin-1')!r}",
                header="X-Orbit-Timeout",
            )
        return min(value, self.max_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self.new_id()
        try:
            await self._relay(scope, receive, send, request_id)
        except OrbitError as exc:
            if self.debug:
                log.debug("relay %s %s -> %s %s", scope["method"], scope["path"], exc.status_code, exc.code)
            await send_error(send, exc, request_id)

    async def _relay(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path: str = scope["path"]
        cut = path.index("/", 1)
        endpoint = path[1:cut]
        rest = path[cut:]  # "/{plugin}[/{route}]"
        slash = rest.find("/", 1)
        plugin = rest[1:] if slash < 0 else rest[1:slash]
        conn = self.registry.get(endpoint)
        conn.check_plugin(plugin)

        headers: list[tuple[str, str]] = []
        timeout_raw: bytes | None = None
        length: int | None = None
        for key, value in scope["headers"]:
            if key in _DROP_REQUEST_B:
                continue
            if key == TIMEOUT_HEADER:
                timeout_raw = value
            elif key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise UsageError("invalid Content-Length header") from None
            headers.append((key.decode("latin-1"), value.decode("latin-1")))
        headers.append(("x-request-id", request_id))
        headers.append((IDENTITY_HEADER, identity_of(scope).name))
        timeout = self._timeout(timeout_raw)
        if length is not None and length > self.max_body:
            raise self._too_large(length)

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: the client gave up
                return
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise self._too_large(size)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, encoding = encode_body(b"".join(chunks)) if chunks else ("", "utf8")

        query = scope.get("query_string", b"")
        # the Request frame, serialised directly (json's C encoder) instead of through
        # Request(...).model_dump_json(); test_bridge_app.py::test_relay_frame_matches_model keeps them equal
        frame_text = _dumps(
            {
                "type": "request",
                "id": request_id,
                "method": scope["method"],
                "path": rest,
                "query": query.decode("latin-1") if query else "",
                "headers": headers,
                "body": body,
                "body_encoding": encoding,
            }
        )
        what = f"{scope['method']} {path}"
        too_big = oversize(frame_text, conn.max_frame)
        if too_big is not None:
            raise PayloadTooLargeError(
                f"{what}: the request takes {too_big} bytes as a frame, more than endpoint "
                f"'{endpoint}' accepts ({conn.max_frame}); send a smaller body",
                limit=conn.max_frame,
                size=too_big,
            )
        if self.debug:
            log.debug("relay %s %s -> endpoint %s (request %s, %d bytes)", scope["method"], path, endpoint, request_id, size)
        response = await conn.request(request_id, frame_text, timeout, what=what)

        if not 200 <= response.status <= 599:
            raise UpstreamError(
                f"endpoint '{endpoint}' answered {what} with an invalid HTTP status {response.status}",
                endpoint=endpoint,
                status=response.status,
            )
        data = decode_body(response.body, response.body_encoding) if response.body else b""
        out: list[tuple[bytes, bytes]] = []
        has_rid = False
        for name, value in response.headers:
            lname = name.lower()
            if lname in _DROP_RESPONSE:
                continue
            if lname == "x-request-id":
                has_rid = True
            out.append((_header_bytes(lname), _header_bytes(value)))
        if not has_rid:
            out.append((b"x-request-id", request_id.encode("ascii")))
        out.append((b"content-length", str(len(data)).encode("ascii")))
        if self.debug:
            log.debug("relay %s %s <- %d (request %s, %d bytes)", scope["method"], path, response.status, request_id, len(data))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": data})

    def _too_large(self, size: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body of {size} bytes exceeds the bridge's limit of {self.max_body} bytes "
            "(start the bridge with a larger --max-body)",
            limit=self.max_body,
            size=size,
        )
