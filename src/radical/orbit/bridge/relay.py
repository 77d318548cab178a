"""The hot path: any HTTP request on ``/{endpoint}/{plugin}[/{route}]`` -> endpoint -> back.

A raw ASGI handler (no routing, no Request object): read the body under the size
limit, wrap it in a ``request`` frame with a fresh id, send it on the
endpoint's socket, wait for the ``response`` frame with that id, write it out.
Errors use the shared ``{"code","message","details","request_id"}`` body.

Bounded, so that one client cannot exhaust the bridge or an endpoint: requests
waiting for an answer are counted per client identity (429 beyond
``max_inflight_per_identity``) and per endpoint (503 beyond
``max_inflight_per_endpoint``), both with ``Retry-After``; answers received but not
yet written to their (slow) clients are counted in bytes over the whole bridge, and
an answer that would take the count past ``max_held_answer_bytes`` is a 503 at once.

An endpoint is not trusted to answer well: a body that is not valid base64 (or not
encodable text), a header that HTTP cannot carry (CR/LF, other control characters,
beyond latin-1, a name that is not a token) or a status that is not a final HTTP
status is a 502 naming the endpoint and the fault, with one warning line in the log,
instead of a 500 or a dropped client connection.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import math
import re
import secrets
from collections import Counter
from typing import Any

from starlette.types import Receive, Scope, Send

from ..errors import (
    BridgeUnavailableError,
    EndpointUnavailableError,
    OrbitError,
    PayloadTooLargeError,
    RateLimitedError,
    UpstreamError,
    UsageError,
    quoted,
)
from ..models.messages import IDENTITY_HEADER, Response, encode_body, oversize
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
#: seconds a client refused for too many requests in flight is asked to wait
RETRY_AFTER = 1
#: answers larger than this are written in pieces of this size: a server takes a write
#: whole and waits for a slow client only before the next one, so one big write would
#: leave the answer in the server's buffer, out of the count of held bytes
SEND_CHUNK = 256 * 1024

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

#: a header name HTTP can carry: an RFC 9110 token
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
#: what a header value must not hold: CTLs but HTAB (CR and LF among them), and
#: anything latin-1 cannot encode; leading and trailing blanks are stripped first
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


def _value_fault(value: str, at: int) -> str:
    char = value[at]
    if char in "\r\n":
        return f"a line break (CR/LF) at character {at}"
    if ord(char) > 0xFF:
        return f"a character latin-1 cannot encode at character {at}"
    return f"a control character at character {at}"


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
    retry_after = exc.details.get("retry_after")
    if isinstance(retry_after, int):
        headers.append((b"retry-after", str(retry_after).encode("ascii")))
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
        self.max_per_identity = settings.max_inflight_per_identity
        self.max_per_endpoint = settings.max_inflight_per_endpoint
        self.max_held = settings.max_held_answer_bytes
        #: requests waiting for an answer, by client identity name
        self.inflight: Counter[str] = Counter()
        #: bytes of answers received and not yet written to their clients
        self.held = 0

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
        caller = identity_of(scope).name
        if self.inflight[caller] >= self.max_per_identity:
            raise RateLimitedError(
                f"{what}: '{caller}' already has {self.inflight[caller]} requests waiting for an answer, "
                "the most the bridge allows one client (max_inflight_per_identity); retry when some have finished",
                setting="max_inflight_per_identity",
                limit=self.max_per_identity,
                retry_after=RETRY_AFTER,
            )
        if len(conn.pending) >= self.max_per_endpoint:
            raise EndpointUnavailableError(
                f"{what}: endpoint '{endpoint}' already has {len(conn.pending)} requests waiting for an answer, "
                "the most the bridge sends one endpoint (max_inflight_per_endpoint); retry later",
                endpoint=endpoint,
                setting="max_inflight_per_endpoint",
                limit=self.max_per_endpoint,
                retry_after=RETRY_AFTER,
            )
        if self.debug:
            log.debug("relay %s %s -> endpoint %s (request %s, %d bytes)", scope["method"], path, endpoint, request_id, size)
        self.inflight[caller] += 1
        try:
            response = await conn.request(request_id, frame_text, timeout, what=what)
        finally:
            self.inflight[caller] -= 1
            if not self.inflight[caller]:
                del self.inflight[caller]

        status, out, data = self._answer(response, endpoint, what)
        del response  # the frame's copy of the body is not needed any more
        if not any(name == b"x-request-id" for name, _ in out):
            out.append((b"x-request-id", request_id.encode("ascii")))
        out.append((b"content-length", str(len(data)).encode("ascii")))
        held = len(data)
        if self.held + held > self.max_held:
            raise BridgeUnavailableError(
                f"{what}: the bridge holds {self.held} bytes of answers its clients have not read yet; "
                f"this answer's {held} bytes would pass its limit (max_held_answer_bytes = {self.max_held}); "
                "retry later",
                setting="max_held_answer_bytes",
                limit=self.max_held,
                size=held,
                retry_after=RETRY_AFTER,
            )
        if self.debug:
            log.debug("relay %s %s <- %d (request %s, %d bytes)", scope["method"], path, status, request_id, held)
        self.held += held
        try:
            await send({"type": "http.response.start", "status": status, "headers": out})
            if held <= SEND_CHUNK:
                await send({"type": "http.response.body", "body": data})
            else:  # the server waits for a slow client between chunks, not after the last
                for start in range(0, held, SEND_CHUNK):
                    end = start + SEND_CHUNK
                    await send({"type": "http.response.body", "body": data[start:end], "more_body": end < held})
        finally:
            self.held -= held

    def _answer(self, response: Response, endpoint: str, what: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers (as bytes) and body of an endpoint's answer, or the 502 for
        an answer HTTP cannot carry."""
        status = response.status
        if not 200 <= status <= 599:
            raise _malformed(endpoint, what, f"the status {status} is not a final HTTP status (200-599)", status=status)
        out: list[tuple[bytes, bytes]] = []
        for name, value in response.headers:
            lname = name.lower()
            if lname in _DROP_RESPONSE:
                continue
            if not _TOKEN.fullmatch(lname):
                raise _malformed(endpoint, what, f"the header name {quoted(name, 40)} is not an HTTP token")
            value = value.strip(" \t")
            bad = _BAD_VALUE.search(value)
            if bad is not None:  # the value is not quoted: it may be a secret
                raise _malformed(endpoint, what, f"the value of header '{lname}' has {_value_fault(value, bad.start())}")
            out.append((lname.encode("ascii"), value.encode("latin-1")))
        body = response.body
        if not body:
            return status, out, b""
        if response.body_encoding == "base64":
            try:
                return status, out, base64.b64decode(body, validate=True)
            except binascii.Error:
                raise _malformed(endpoint, what, "its body is not valid base64") from None
        try:
            return status, out, body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (the frame parser refuses them, the relay does not rely on it)
            raise _malformed(endpoint, what, "its body is text UTF-8 cannot encode (send such a body as base64)") from None

    def _too_large(self, size: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body of {size} bytes exceeds the bridge's limit of {self.max_body} bytes "
            "(start the bridge with a larger --max-body)",
            limit=self.max_body,
            size=size,
        )


def _malformed(endpoint: str, what: str, fault: str, **details: Any) -> UpstreamError:
    """The 502 for an answer HTTP cannot carry, logged once (a warning, no traceback)."""
    log.warning("endpoint %s sent a malformed answer to %s: %s", endpoint, what, fault)
    return UpstreamError(
        f"endpoint '{endpoint}' sent a malformed answer to {what}: {fault}", endpoint=endpoint, fault=fault, **details
    )
