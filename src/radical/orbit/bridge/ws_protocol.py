"""uvicorn's WebSocket protocol plus one ASGI extension: messages straight to a callback.

uvicorn hands every received WebSocket message to the app through a queue, and
pauses and resumes reading the socket around each one (its backpressure). For the
bridge's endpoint sockets that is a task wake-up and two epoll changes per relayed
response, on the hot path of every request (``bench/relay.py``).

:class:`OrbitWebSocketProtocol` offers the extension ``radical.orbit.on_message`` in
the scope: an app that calls ``scope["extensions"][EXTENSION]["set_handler"](fn)``
gets each later text/binary message as ``fn(message)`` while the bytes are parsed,
with nothing queued and no pause; ``websocket.disconnect`` still arrives through
``receive()``. The handler must be quick and must not raise. An app that does not
use the extension sees plain uvicorn.

It builds on uvicorn's Sans-I/O implementation; :func:`protocol_class` returns
``None`` (use uvicorn's default) if that implementation is not there or has changed
shape, and ``tests/unit/bridge/test_ws_protocol.py`` fails loudly when it does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .coalesce import coalesce

log = logging.getLogger(__name__)

EXTENSION = "radical.orbit.on_message"

MessageHandler = Callable[[str | bytes], None]

#: what the subclass relies on in uvicorn's implementation
_REQUIRED = ("handle_connect", "send_receive_event_to_app", "handle_parser_exception", "shutdown", "stop_keepalive")

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol,
    )
    from websockets.protocol import State
except ImportError:  # pragma: no cover - uvicorn without its Sans-I/O implementation
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]


def protocol_class() -> type[asyncio.Protocol] | None:
    """The protocol class to give uvicorn's ``ws=``, or None for uvicorn's default."""
    if WebSocketsSansIOProtocol is None or not all(hasattr(WebSocketsSansIOProtocol, n) for n in _REQUIRED):
        log.info("uvicorn's Sans-I/O WebSocket protocol is not available; endpoint sockets use the default")
        return None
    return OrbitWebSocketProtocol


if WebSocketsSansIOProtocol is not None:

    class OrbitWebSocketProtocol(WebSocketsSansIOProtocol):
        """See the module docstring."""

        _orbit_handler: MessageHandler | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # an upgrade hands over the HTTP protocol's transport, already coalescing;
            # frames to one endpoint written in one loop pass share a system call
            super().connection_made(coalesce(transport))

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)
            if scope is not None:  # None: the handshake was refused before a scope existed
                scope.setdefault("extensions", {})[EXTENSION] = {"set_handler": self._orbit_set_handler}

        def _orbit_set_handler(self, handler: MessageHandler | None) -> None:
            self._orbit_handler = handler

        def shutdown(self) -> None:
            """Server shutdown: close frame only on a socket still open.

            uvicorn answers a peer's close frame and closes the transport, but a TLS
            transport takes a round trip to finish closing; a server shutdown in that
            window made uvicorn send a second close frame, which ``websockets``
            refuses with ``InvalidState`` (a traceback in the shutdown path).
            """
            if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
                self.stop_keepalive()
                self.transport.close()
                return
            super().shutdown()

        def send_receive_event_to_app(self) -> None:
            handler = self._orbit_handler
            if handler is None or self.close_sent:
                super().send_receive_event_to_app()
                return
            frames = self.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            self.frames = []
            if self.curr_msg_data_type == "text":
                try:
                    message: str | bytes = bytes(data).decode("utf-8")
                except UnicodeDecodeError:
                    self.logger.warning("invalid UTF-8 in a text frame from %s; closing", self.client)
                    self.conn.send_close(1007)
                    self.handle_parser_exception()
                    return
            else:
                message = bytes(data)
            try:
                handler(message)
            except Exception:  # the handler's bug must not take the connection down
                log.exception("error in the WebSocket message handler")

else:  # pragma: no cover
    OrbitWebSocketProtocol = None  # type: ignore[assignment,misc]
