"""Which endpoints are connected, and the requests waiting on each of them.

Each :class:`EndpointConnection` owns a map ``request id -> Future``. Ids are minted
by the bridge (unique for its lifetime, see ``relay.RequestIds``), never by clients,
so a response can only ever resolve the request it answers, whichever client sent it. A response for an unknown id (late after a
timeout, or bogus) is logged and dropped. When the connection goes away every
pending future fails with :class:`~radical.orbit.errors.EndpointUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocketDisconnect

from ..errors import (
    ConflictError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    OrbitError,
    PluginDisabledError,
    PluginNotFoundError,
    UpstreamError,
)
from ..models.messages import (
    DEFAULT_FRAME_LIMIT,
    Ack,
    Cancel,
    PluginInfo,
    Register,
    Response,
    dump_frame,
)

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]


class EndpointConnection:
    """One registered endpoint: what it offers, its socket's send side, its pending requests.

    :param register: the endpoint's ``register`` frame
    :param send_text: sends one text frame on the endpoint's WebSocket
    :param peer: ``host:port`` of the endpoint, for logs
    :param name: the name it holds, as first claimed (default: the register frame's)
    :param key: the name of the endpoint key it proved (the name's owner)
    """

    def __init__(self, register: Register, send_text: SendText, *, peer: str = "", name: str | None = None, key: str = "") -> None:
        self.name = name or register.name
        self.key = key
        self.version = register.version
        self.host = dict(register.host)
        self.plugins: dict[str, PluginInfo] = {p.name: p for p in register.plugins}
        #: largest frame the endpoint takes (relay.py answers 413 to larger requests)
        self.max_frame = register.max_frame or DEFAULT_FRAME_LIMIT
        #: the endpoint process's run (numbered notifications are acknowledged)
        self.run = register.run
        #: the highest notification number acknowledged (or about to be)
        self.acked = 0
        self._ack_task: asyncio.Task[None] | None = None
        #: the endpoint stops the work on a request it is sent ``cancel`` for
        self.cancels = register.cancels
        self._cancels: set[asyncio.Task[None]] = set()
        self.peer = peer
        self.connected_at = time.time()
        self.last_seen = time.time()
        self.last_seen_mono = time.monotonic()
        self.pending: dict[str, asyncio.Future[Response]] = {}
        self.closed = False
        self.dropped = False
        #: with the Redis backplane: the name's fence when this replica took it (0: not
        #: yet taken), and the monotonic time until which the lease surely holds
        self.fence = 0
        self.lease_until = math.inf
        #: its name moved to another replica (no "disconnected" event for it)
        self.moved = False
        #: the "registered" frame has gone out: request frames may follow
        self.ready = False
        self._ready: asyncio.Event | None = None
        self._send_text = send_text

    def __repr__(self) -> str:
        return f"EndpointConnection({self.name!r}, peer={self.peer!r}, inflight={len(self.pending)})"

    def touch(self) -> None:
        """Any frame from the endpoint proves it is alive."""
        self.last_seen_mono = time.monotonic()
        self.last_seen = time.time()

    def check_plugin(self, plugin: str) -> PluginInfo:
        """The plugin's info, or the 404/503 a client should get for it."""
        info = self.plugins.get(plugin)
        if info is None:
            names = sorted(self.plugins)
            listing = ", ".join(names) if names else "none"
            raise PluginNotFoundError(
                f"endpoint '{self.name}' has no plugin '{plugin}' (it has: {listing})",
                endpoint=self.name,
                plugin=plugin,
                available=names,
            )
        if not info.enabled:
            reason = info.reason or "no reason given"
            raise PluginDisabledError(
                f"plugin '{plugin}' on endpoint '{self.name}' is disabled: {reason}",
                endpoint=self.name,
                plugin=plugin,
                reason=reason,
            )
        return info

    async def send(self, text: str) -> None:
        """Send one frame.

        No lock: one frame is one ASGI ``websocket.send`` message, which the server
        writes whole, so frames from concurrent senders never interleave.
        """
        if self.closed:
            raise EndpointUnavailableError(f"endpoint '{self.name}' is disconnected", endpoint=self.name)
        try:
            await self._send_text(text)
        except OrbitError:
            raise
        except (RuntimeError, OSError, WebSocketDisconnect) as exc:
            # a closed socket: Starlette raises RuntimeError or WebSocketDisconnect, uvicorn OSError
            raise EndpointUnavailableError(
                f"endpoint '{self.name}' went away while sending to it", endpoint=self.name
            ) from exc

    def acknowledge(self, seq: int) -> None:
        """Notification ``seq`` (and every one before it) is stored: tell the endpoint,
        once per loop pass however many were stored in it."""
        if seq <= self.acked or self.closed:
            return
        self.acked = seq
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.get_running_loop().create_task(self._send_ack(), name=f"orbit-ack-{self.name}")

    async def _send_ack(self) -> None:
        sent = 0
        with contextlib.suppress(OrbitError):  # gone: it sends them again on its next connection
            while sent < self.acked:
                await asyncio.sleep(0)  # let the rest of this pass's notifications be stored first
                sent = self.acked
                await self.send(dump_frame(Ack(seq=sent)))

    def mark_ready(self) -> None:
        """The endpoint has its "registered" frame (or never will): let requests go out."""
        self.ready = True
        if self._ready is not None:
            self._ready.set()

    async def _until_ready(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
        await self._ready.wait()

    async def request(self, request_id: str, frame_text: str, timeout: float, *, what: str = "") -> Response:
        """Send a ``request`` frame and wait for its ``response``.

        The deadline covers the send too: an endpoint that stopped reading (full
        socket buffers) cannot hold a client past its timeout.

        :raises GatewayTimeoutError: no answer within ``timeout`` seconds (504)
        :raises EndpointUnavailableError: the endpoint disconnected first (503)
        """
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                if not self.ready:  # found in the registry while it registers: the request waits its turn
                    await self._until_ready()
                self.pending[request_id] = fut
                await self.send(frame_text)
                return await fut
        except TimeoutError:
            if request_id in self.pending:  # sent (or being sent): the endpoint may stop working on it
                self.call_off(request_id, f"no answer within {timeout:g} s: the client was answered 504")
            raise GatewayTimeoutError(
                f"endpoint '{self.name}' did not answer {what or 'the request'} within {timeout:g} s",
                endpoint=self.name,
                timeout=timeout,
            ) from None
        finally:
            self.pending.pop(request_id, None)

    def call_off(self, request_id: str, reason: str) -> None:
        """Tell the endpoint that nobody waits for the answer to ``request_id`` any more,
        so that it frees what the work holds (a thread, its caller's share of a pool);
        in the background, so that the client's answer does not wait for it."""
        if not self.cancels or self.closed:
            return
        task = asyncio.get_running_loop().create_task(self._send_cancel(request_id, reason), name=f"orbit-cancel-{request_id}")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _send_cancel(self, request_id: str, reason: str) -> None:
        with contextlib.suppress(OrbitError):  # gone: its requests ended with the connection
            await self.send(dump_frame(Cancel(id=request_id, reason=reason)))

    def resolve(self, response: Response) -> bool:
        """Hand a ``response`` frame to its waiting request; False if nobody waits."""
        fut = self.pending.pop(response.id, None)
        if fut is None or fut.done():
            return False
        fut.set_result(response)
        return True

    def reject(self, request_id: str, message: str, code: str) -> bool:
        """An ``error`` frame that refers to a request fails that request with a 502."""
        return self.fail(
            request_id,
            UpstreamError(f"endpoint '{self.name}' could not handle the request: {message}", endpoint=self.name, upstream_code=code),
        )

    def fail(self, request_id: str, exc: OrbitError) -> bool:
        """Fail a waiting request with ``exc`` (an answer that did not validate); False
        if nobody waits for ``request_id``."""
        fut = self.pending.pop(request_id, None)
        if fut is None or fut.done():
            return False
        fut.set_exception(exc)
        return True

    def fail_all(self, reason: str) -> int:
        """Fail every pending request (503); returns how many there were."""
        self.mark_ready()  # a request still waiting for the registration finds the socket closed
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(
                    EndpointUnavailableError(
                        f"endpoint '{self.name}' {reason} before answering", endpoint=self.name
                    )
                )
        return len(pending)

    def info(self) -> dict[str, Any]:
        """What ``GET /endpoints`` shows for this endpoint."""
        return {
            "name": self.name,
            "version": self.version,
            "host": self.host,
            "plugins": [p.model_dump() for p in self.plugins.values()],
            "connected_at": self.connected_at,
            "last_seen": self.last_seen,
            "alive": not self.closed,
            "inflight": len(self.pending),
            "peer": self.peer,
        }


class Registry:
    """Connected endpoints by name; names are unique regardless of case (``ep1`` is ``EP1``),
    and so is routing, while each endpoint keeps the case it was claimed with."""

    def __init__(self) -> None:
        #: casefolded name -> connection
        self.endpoints: dict[str, EndpointConnection] = {}

    def __len__(self) -> int:
        return len(self.endpoints)

    def add(self, conn: EndpointConnection) -> EndpointConnection | None:
        """Register ``conn``; returns the live connection it replaces (same key), if any.

        The key that holds a name may take it over at once (an endpoint that reconnects
        before the bridge noticed its old socket died); the caller closes the old one.

        :raises ConflictError: a live connection of another key holds the name
        """
        folded = conn.name.casefold()
        current = self.endpoints.get(folded)
        if current is not None and not current.closed:
            if current.key != conn.key:
                raise ConflictError(
                    f"an endpoint named '{current.name}' is already connected (from {current.peer or 'elsewhere'}); "
                    "pick another name or stop the other endpoint",
                    endpoint=current.name,
                )
        else:
            current = None
        self.endpoints[folded] = conn
        return current

    def remove(self, conn: EndpointConnection) -> bool:
        """Forget ``conn`` (only if that very connection holds its name)."""
        folded = conn.name.casefold()
        if self.endpoints.get(folded) is conn:
            del self.endpoints[folded]
            return True
        return False

    def get(self, name: str) -> EndpointConnection:
        conn = self.endpoints.get(name.casefold())
        if conn is None or conn.closed:
            raise self.missing(name)
        return conn

    def find(self, name: str) -> EndpointConnection | None:
        """The live connection holding ``name`` here, if any."""
        conn = self.endpoints.get(name.casefold())
        return None if conn is None or conn.closed else conn

    def missing(self, name: str) -> EndpointNotFoundError:
        """The 404 for a name no endpoint holds, naming those connected."""
        names = sorted(c.name for c in self.endpoints.values())
        listing = ", ".join(names) if names else "none"
        return EndpointNotFoundError(
            f"no endpoint named '{name}' is connected (connected: {listing})",
            endpoint=name,
            available=names,
        )

    def list(self) -> list[dict[str, Any]]:
        return [conn.info() for conn in sorted(self.endpoints.values(), key=lambda c: c.name)]
