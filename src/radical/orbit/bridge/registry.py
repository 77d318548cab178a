"""Which endpoints are connected, and the requests waiting on each of them.

Each :class:`EndpointConnection` owns a map ``request id -> Future``. Ids are minted
by the bridge (unique for its lifetime, see ``relay.RequestIds``), never by clients,
so a response can only ever resolve the request it answers, whichever client sent it. A response for an unknown id (late after a
timeout, or bogus) is logged and dropped. When the connection goes away every
pending future fails with :class:`~radical.orbit.errors.EndpointUnavailableError`.
"""

from __future__ import annotations

import asyncio
import logging
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
from ..models.messages import DEFAULT_FRAME_LIMIT, PluginInfo, Register, Response

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
        self.peer = peer
        self.connected_at = time.time()
        self.last_seen = time.time()
        self.last_seen_mono = time.monotonic()
        self.pending: dict[str, asyncio.Future[Response]] = {}
        self.closed = False
        self.dropped = False
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

    async def request(self, request_id: str, frame_text: str, timeout: float, *, what: str = "") -> Response:
        """Send a ``request`` frame and wait for its ``response``.

        The deadline covers the send too: an endpoint that stopped reading (full
        socket buffers) cannot hold a client past its timeout.

        :raises GatewayTimeoutError: no answer within ``timeout`` seconds (504)
        :raises EndpointUnavailableError: the endpoint disconnected first (503)
        """
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = fut
        try:
            async with asyncio.timeout(timeout):
                await self.send(frame_text)
                return await fut
        except TimeoutError:
            raise GatewayTimeoutError(
                f"endpoint '{self.name}' did not answer {what or 'the request'} within {timeout:g} s",
                endpoint=self.name,
                timeout=timeout,
            ) from None
        finally:
            self.pending.pop(request_id, None)

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
            names = sorted(c.name for c in self.endpoints.values())
            listing = ", ".join(names) if names else "none"
            raise EndpointNotFoundError(
                f"no endpoint named '{name}' is connected (connected: {listing})",
                endpoint=name,
                available=names,
            )
        return conn

    def list(self) -> list[dict[str, Any]]:
        return [conn.info() for conn in sorted(self.endpoints.values(), key=lambda c: c.name)]
