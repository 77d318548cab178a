"""``WS /ws/endpoint``: one endpoint's connection, from handshake to teardown.

The handler coroutine is the connection's only reader: a plain ASGI ``receive()``
loop that acts on each frame in arrival order. Writes go through
:meth:`EndpointConnection.send` (one ASGI message per frame, so frames never
interleave), so relay tasks, the heartbeat and the reader can all send. A watchdog task pings every ``heartbeat_interval`` and drops an
endpoint that has sent nothing for three intervals. Teardown (registry, pending
requests, topology event) runs exactly once, whoever notices first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from ..errors import ConflictError, OrbitError, UpstreamError
from ..models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_NAME_TAKEN,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    PROTOCOL_VERSION,
    ErrorFrame,
    Notification,
    Ping,
    Pong,
    Register,
    Registered,
    Response,
    dump_frame,
    oversize,
    parse_frame,
    session_tag,
)
from .auth import Authenticator
from .backplane import Backplane, LocalBackplane
from .events import KIND_NOTIFICATION, KIND_TOPOLOGY, EventHub
from .registry import EndpointConnection, Registry
from .settings import BridgeSettings

log = logging.getLogger(__name__)

_CLOSED = (WebSocketDisconnect, RuntimeError, OSError)
#: subscribers the reader may offer events to before it lets the loop run others
FANOUT_SLICE = 256


class RawSocket:
    """The endpoint's WebSocket as plain ASGI messages.

    The bridge serves this route straight from its ASGI entry point, not through
    FastAPI's middleware and router: every frame the reader waits for resumes the
    whole await chain, so a short chain is a cheaper hot path.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.closed = False

    @property
    def peer(self) -> str:
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else "?"

    async def connect(self) -> bool:
        """Wait for the upgrade request; False if the client left before it."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            self.closed = True
            return False
        return True

    async def accept(self) -> None:
        """Complete the handshake (after :meth:`connect`)."""
        await self._send({"type": "websocket.accept"})

    async def deny(self, exc: OrbitError) -> None:
        """Refuse the upgrade with ``exc``'s HTTP status and JSON body (after :meth:`connect`).

        Through the ASGI WebSocket denial response extension, which uvicorn offers;
        a server without it turns a close before the handshake into a plain 403.
        """
        self.closed = True
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self._send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": ""})
            return
        body = json.dumps(exc.to_payload()).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))]
        if exc.status_code == 401:
            headers.append((b"www-authenticate", b'Bearer realm="radical.orbit"'))
        await self._send({"type": "websocket.http.response.start", "status": exc.status_code, "headers": headers})
        await self._send({"type": "websocket.http.response.body", "body": body})

    async def receive_text(self) -> str | bytes | None:
        """The next frame's payload, or None once the socket is closed."""
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def send_text(self, text: str) -> None:
        if self.closed:
            raise WebSocketDisconnect(1006, "socket already closed")
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


def payload_bytes(payload: dict[str, Any]) -> int:
    """A notification payload's size as compact JSON in UTF-8 (what the limit counts)."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _answered(raw: str | bytes) -> str | None:
    """The request id of a ``response`` frame that did not validate (None if not one)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "response":
        return None
    ref = data.get("id")
    return ref if isinstance(ref, str) else None


def _describe(exc: Exception) -> str:
    if isinstance(exc, PydanticValidationError):
        errs = exc.errors()
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'frame'}: {e.get('msg')}" for e in errs[:3]]
        return "; ".join(parts)
    return str(exc)


class EndpointSocket:
    """Serves one endpoint WebSocket for the bridge."""

    def __init__(self, settings: BridgeSettings, registry: Registry, hub: EventHub, backplane: Backplane | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.hub = hub
        #: names are claimed cluster-wide and events published through it (the hub's own
        #: publish when there is one bridge)
        self.backplane: Backplane = backplane if backplane is not None else LocalBackplane(hub)
        self.publish = self.backplane.publish
        self.interval = settings.heartbeat_interval
        self._sockets: dict[EndpointConnection, RawSocket] = {}

    async def _refuse(self, websocket: RawSocket, code: str, message: str, close_code: int) -> None:
        log.warning("endpoint connection from %s refused: %s", websocket.peer, message)
        with contextlib.suppress(*_CLOSED):
            await websocket.send_text(dump_frame(ErrorFrame(code=code, message=message)))
            await websocket.close(code=close_code, reason=message[:120])

    async def serve(self, websocket: RawSocket, auth: Authenticator) -> None:
        """``WS /ws/endpoint``: check key and name before the upgrade, register, then
        read frames until the socket closes."""
        if not await websocket.connect():
            return
        try:
            admission = await auth.admit(websocket.scope)
        except OrbitError as exc:
            log.warning("endpoint connection from %s refused (HTTP %d): %s", websocket.peer, exc.status_code, exc.message)
            with contextlib.suppress(*_CLOSED):
                await websocket.deny(exc)
            return
        try:
            await websocket.accept()
        except _CLOSED:
            return
        register = await self._handshake(websocket)
        if register is None:
            return
        if register.name != admission.requested:
            await self._refuse(
                websocket,
                "name_mismatch",
                f"the register frame names '{register.name}' but the upgrade request's X-Orbit-Endpoint named "
                f"'{admission.requested}'; send the same name in both",
                CLOSE_PROTOCOL_ERROR,
            )
            return

        conn = EndpointConnection(register, websocket.send_text, peer=websocket.peer, name=admission.name, key=admission.key)
        name = conn.name
        try:
            replaced = self.registry.add(conn)
        except ConflictError as exc:
            await self._refuse(websocket, "name_taken", exc.message, CLOSE_NAME_TAKEN)
            return
        if replaced is not None:
            log.info("endpoint %s connected again from %s: its connection from %s is replaced", name, conn.peer, replaced.peer)
            await self._drop(replaced, "was replaced by a new connection", CLOSE_REPLACED, "replaced")
        if self.backplane.clustered:
            try:
                await self.backplane.claim(conn)
            except ConflictError as exc:
                self.registry.remove(conn)
                conn.closed = True
                conn.fail_all("was refused its name")
                await self._refuse(websocket, "name_taken", exc.message, CLOSE_NAME_TAKEN)
                return
        try:
            await conn.send(dump_frame(Registered(name=name, heartbeat_interval=self.interval, max_frame=self.settings.max_frame, acks=True)))
        except OrbitError:
            self.registry.remove(conn)
            self.backplane.release(conn)
            conn.closed = True
            conn.fail_all("went away while registering")
            return
        conn.mark_ready()
        self._sockets[conn] = websocket
        plugins = ", ".join(f"{p.name}{'' if p.enabled else ' (disabled)'}" for p in register.plugins) or "none"
        log.info("endpoint %s connected from %s (version %s; plugins: %s)", name, conn.peer, register.version or "?", plugins)
        self._topology(conn, "endpoint_connected")
        watchdog = asyncio.create_task(self._watchdog(websocket, conn), name=f"orbit-heartbeat-{name}")
        try:
            while True:
                raw = await websocket.receive_text()
                if raw is None:
                    break
                reply = self._handle(conn, raw)
                if reply is not None:
                    await conn.send(reply)
                if self.hub.visits >= FANOUT_SLICE:
                    # frames may be waiting in the socket's queue, and each may go to many
                    # subscribers: let the rest of the loop run between slices of that work
                    self.hub.visits = 0
                    await asyncio.sleep(0)
        except _CLOSED as exc:  # the socket is gone; teardown below says so
            log.debug("endpoint %s socket closed: %s", name, type(exc).__name__)
        finally:
            watchdog.cancel()
            self._teardown(conn, "disconnected")

    async def _handshake(self, websocket: RawSocket) -> Register | None:
        """Wait for a valid ``register``; refuse (error frame + close) anything else."""
        try:
            raw = await asyncio.wait_for(websocket.receive_text(), self.settings.register_timeout)
        except TimeoutError:
            await self._refuse(
                websocket, "register_timeout", f"no register frame within {self.settings.register_timeout:g} s", CLOSE_PROTOCOL_ERROR
            )
            return None
        except _CLOSED:
            return None
        if raw is None:
            return None
        try:
            frame = parse_frame(raw)
        except (PydanticValidationError, ValueError) as exc:
            await self._refuse(websocket, "bad_frame", f"invalid register frame: {_describe(exc)}", CLOSE_PROTOCOL_ERROR)
            return None
        if not isinstance(frame, Register):
            await self._refuse(
                websocket, "bad_frame", f"the first frame must be 'register', got '{frame.type}'", CLOSE_PROTOCOL_ERROR
            )
            return None
        if frame.v != PROTOCOL_VERSION:
            await self._refuse(
                websocket,
                "bad_version",
                f"protocol version {frame.v} is not supported (this bridge speaks {PROTOCOL_VERSION})",
                CLOSE_BAD_VERSION,
            )
            return None
        return frame

    def _handle(self, conn: EndpointConnection, raw: str | bytes) -> str | None:
        """Act on one frame from the endpoint; returns the frame to answer with, if any.

        Synchronous, so frames take effect in the order they arrived (notifications
        keep their order, a response resolves its request at once).
        """
        conn.touch()
        try:
            frame = parse_frame(raw)
        except (PydanticValidationError, ValueError) as exc:
            problem = _describe(exc)
            ref = _answered(raw)
            failed = UpstreamError(f"endpoint '{conn.name}' sent a malformed answer: {problem}", endpoint=conn.name)
            if ref is not None and conn.fail(ref, failed):  # its client gets a 502 now, not a 504 later
                log.warning("endpoint %s sent a malformed answer to request %s: %s", conn.name, ref, problem)
            else:
                log.warning("endpoint %s sent a malformed frame: %s", conn.name, problem)
            return dump_frame(ErrorFrame(code="bad_frame", message=f"malformed frame: {problem}", ref=ref))
        if isinstance(frame, Response):
            if not conn.resolve(frame):
                log.warning("endpoint %s answered unknown or expired request %s (dropped)", conn.name, frame.id)
        elif isinstance(frame, Notification):
            return self._notification(conn, frame, raw)
        elif isinstance(frame, Ping):
            return dump_frame(Pong(ts=frame.ts))
        elif isinstance(frame, Pong):
            pass
        elif isinstance(frame, ErrorFrame):
            if frame.ref and conn.reject(frame.ref, frame.message, frame.code):
                log.warning("endpoint %s failed request %s: %s", conn.name, frame.ref, frame.code)
            else:
                log.warning("endpoint %s reported an error: %s: %s", conn.name, frame.code, frame.message)
        else:
            log.warning("endpoint %s sent an unexpected '%s' frame", conn.name, frame.type)
            ref = getattr(frame, "id", None)
            return dump_frame(
                ErrorFrame(code="unexpected_frame", message=f"a bridge does not accept '{frame.type}' frames here", ref=ref)
            )
        return None

    def _notification(self, conn: EndpointConnection, frame: Notification, raw: str | bytes) -> str | None:
        """Publish one notification; an error frame for the endpoint if it is too large."""
        limit = self.settings.max_notification_bytes
        # the frame is larger than its payload: only a frame over the limit is measured
        frame_over = len(raw) > limit if isinstance(raw, bytes) else oversize(raw, limit) is not None
        if frame_over and (size := payload_bytes(frame.payload)) > limit:
            what = f"notification {frame.plugin}/{frame.topic}"
            log.warning(
                "endpoint %s sent a %s of %d bytes, over the bridge's max_notification_bytes (%d): dropped", conn.name, what, size, limit
            )
            message = (
                f"{what} dropped: its payload takes {size} bytes, more than the bridge's "
                f"max_notification_bytes ({limit}); send less per notification"
            )
            return dump_frame(ErrorFrame(code="notification_too_large", message=message))
        extra = None
        numbered = None
        stored = None
        if frame.seq is not None and conn.run:
            seq = frame.seq
            numbered = (conn.name.casefold(), conn.run, seq)
            stored = functools.partial(conn.acknowledge, seq)
        if frame.dropped:
            log.warning("endpoint %s dropped %d notifications while disconnected", conn.name, frame.dropped)
            extra = {"dropped": frame.dropped}
        self.publish(
            KIND_NOTIFICATION,
            endpoint=conn.name,
            plugin=frame.plugin,
            topic=frame.topic,
            session=session_tag(frame.sid) if frame.sid else None,
            payload=frame.payload,
            owner=frame.owner,
            ts=frame.ts,
            extra=extra,
            numbered=numbered,
            stored=stored,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("notification %s/%s topic %s", conn.name, frame.plugin, frame.topic)
        return None

    async def _watchdog(self, websocket: RawSocket, conn: EndpointConnection) -> None:
        """Ping every interval; drop the endpoint after three silent intervals."""
        interval = self.interval
        next_ping = time.monotonic() + interval
        while not conn.closed:
            now = time.monotonic()
            silent = now - conn.last_seen_mono
            if silent >= 3 * interval:
                log.warning("endpoint %s dropped: nothing received for %.1f s (heartbeat %g s)", conn.name, silent, interval)
                conn.dropped = True
                self._teardown(conn, "was dropped (missed heartbeats)")
                with contextlib.suppress(*_CLOSED):
                    await websocket.close(code=CLOSE_HEARTBEAT_TIMEOUT, reason="heartbeat timeout")
                return
            if now >= next_ping:
                next_ping = now + interval
                try:
                    async with asyncio.timeout(interval):  # a stuck socket must not stall the check
                        await conn.send(dump_frame(Ping(ts=time.time())))
                except (OrbitError, TimeoutError):  # the reader or the silence check cleans up
                    log.debug("ping to endpoint %s failed", conn.name)
            deadline = min(next_ping, conn.last_seen_mono + 3 * interval)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.001)

    def _teardown(self, conn: EndpointConnection, reason: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._sockets.pop(conn, None)
        self.registry.remove(conn)
        self.backplane.release(conn)
        failed = conn.fail_all(reason)
        topic = "endpoint_dropped" if conn.dropped else "endpoint_disconnected"
        if not conn.dropped:
            log.info("endpoint %s disconnected%s", conn.name, f" ({failed} requests failed)" if failed else "")
        elif failed:
            log.info("endpoint %s: %d in-flight requests failed", conn.name, failed)
        if not conn.moved:  # (one that moved to another replica is still connected there)
            self._topology(conn, topic)

    def _topology(self, conn: EndpointConnection, topic: str) -> None:
        self.publish(
            KIND_TOPOLOGY, endpoint=conn.name, plugin=None, topic=topic, session=None, payload=conn.info()
        )

    async def _drop(self, conn: EndpointConnection, why: str, code: int, reason: str) -> None:
        """Tear ``conn`` down and close its socket with ``code``."""
        websocket = self._sockets.get(conn)
        self._teardown(conn, why)
        if websocket is not None:
            with contextlib.suppress(*_CLOSED):
                await websocket.close(code=code, reason=reason)

    async def replaced(self, conn: EndpointConnection, why: str) -> None:
        """Another replica holds ``conn``'s name now: close it (4009) without telling
        clients it disconnected (it is connected there)."""
        conn.moved = True
        await self._drop(conn, f"was replaced ({why})", CLOSE_REPLACED, "replaced")

    async def enforce(self, auth: Authenticator) -> None:
        """After the identity store changed: disconnect endpoints whose key was revoked
        or whose name was released (``endpoints forget``), so it takes effect at once."""
        for conn in list(self._sockets):
            why = auth.revoked(conn.name, conn.key)
            if why is not None and not conn.closed:
                log.warning("endpoint %s disconnected: %s", conn.name, why)
                await self._drop(conn, f"was disconnected ({why})", CLOSE_UNAUTHORIZED, why)

    async def close_all(self, code: int, reason: str) -> None:
        """Bridge shutdown: fail what is in flight and close every endpoint socket."""
        for conn, websocket in list(self._sockets.items()):
            self._teardown(conn, "disconnected (bridge shutting down)")
            with contextlib.suppress(*_CLOSED):
                await websocket.close(code=code, reason=reason)
