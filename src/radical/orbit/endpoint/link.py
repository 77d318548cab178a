"""The endpoint's WebSocket to the bridge, on websockets' Sans-I/O protocol.

websockets' asyncio connection puts every message through locks, futures, an
assembler and a reader task; on a 2-core machine that was about a third of the
endpoint's CPU per relayed request (``bench/relay.py``). The endpoint needs less:

* a received message is handed to a callback while the bytes are being parsed,
  so a request starts without waiting for another task to wake up;
* a send is synchronous: nothing awaits between encoding a frame and handing it to
  websockets, so frames can never interleave and no lock is needed; callers that
  may produce a lot await :meth:`BridgeLink.drain` afterwards;
* the frames sent during one pass of the event loop go out together in one
  ``transport.write`` at the end of the pass, as the bridge's own writes do
  (``bridge/coalesce.py``): the answers to requests that arrived together cost one
  system call, not one each. Every :data:`FLUSH_EVERY` frames (or :data:`FLUSH_AT`
  bytes) are written at once, so that a large batch is not held back whole.

websockets still does everything WebSocket: the handshake, framing, masking, size
limits, answering pings and the closing handshake. Errors are websockets' own
(``InvalidStatus``, ``InvalidHandshake``, ``ConnectionClosed``), as with its
asyncio client. Only documented parts of its Sans-I/O layer are used
(``ClientProtocol``, ``State``, ``Frame``/``Opcode``, ``http11.Request``, ``parse_uri``).

The TCP connection goes to the bridge, or through an HTTP proxy's CONNECT tunnel
(:mod:`.proxy`); for ``wss://`` TLS then runs over the tunnel, end to end with the
bridge (``loop.start_tls``), so the proxy sees neither the token nor the frames.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Callable, Mapping

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError, InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as HandshakeRequest
from websockets.protocol import State
from websockets.uri import parse_uri

from .proxy import HttpProxy, ProxyError, open_tunnel

__all__ = ["FLUSH_AT", "FLUSH_EVERY", "BridgeLink", "MessageHandler", "open_link"]

log = logging.getLogger(__name__)

#: called with each text (or binary) message as soon as it is parsed
MessageHandler = Callable[[str | bytes], None]

#: bytes of frames sent in one loop pass that are written at once, not at its end
FLUSH_AT = 64 * 1024
#: frames sent in one loop pass that are written at once, not at its end: a batch of
#: answers goes out while the next is being made, so the bridge works on the first
#: ones meanwhile instead of both sides taking turns on whole batches
FLUSH_EVERY = 8


class BridgeLink(asyncio.Protocol):
    """One WebSocket connection: websockets' protocol state machine, asyncio's transport.

    Use :func:`open_link` to get one. Until :meth:`set_handler` is called, messages
    queue up for :meth:`recv` (the registration exchange uses that).
    """

    def __init__(
        self, protocol: ClientProtocol, request: HandshakeRequest, *, close_timeout: float = 2.0
    ) -> None:
        self.protocol = protocol
        self.close_timeout = close_timeout
        self.on_message: MessageHandler | None = None
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._request: HandshakeRequest | None = request  # holds the bearer token: dropped once sent
        self.handshake: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._inbox: collections.deque[str | bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] | None = None
        self._fragment_text = True
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._count = 0  # frames sent since the last write (a write is scheduled when > 0)
        self._unwritten = 0  # their bytes

    # -- state -------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.protocol.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        """The close code the bridge sent (None until the connection is closed)."""
        return self.protocol.close_code if self.protocol.state is State.CLOSED else None

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason if self.protocol.state is State.CLOSED else None

    def _closed_error(self) -> ConnectionClosedError | Exception:
        if self.protocol.state is State.CLOSED:
            return self.protocol.close_exc
        return ConnectionClosedError(None, None)

    # -- sending -----------------------------------------------------------------
    def send(self, text: str, *, now: bool = False) -> None:
        """Send one text message: written with the others sent in this loop pass, at its
        end, or with ``now`` at once (with any still waiting), when the caller knows that
        nothing else is coming: a lone answer then waits for nothing.

        :raises ConnectionClosed: the connection is closing or closed
        """
        if self.protocol.state is not State.OPEN or self.transport is None or self.transport.is_closing():
            raise self._closed_error()
        data = text.encode("utf-8")
        self.protocol.send_text(data)
        self._count += 1
        self._unwritten += len(data)
        if now or self._unwritten > FLUSH_AT or self._count >= FLUSH_EVERY:
            self._flush()
        elif self._count == 1:  # the first since the last write: write at the end of this pass
            self._loop.call_soon(self._flush)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if not self._paused:
            return
        if self._drained is None:
            self._drained = self._loop.create_future()
        await asyncio.shield(self._drained)
        if self.protocol.state is not State.OPEN:
            raise self._closed_error()

    def _flush(self) -> None:
        """Write whatever websockets has to send (frames, pongs, a close) now."""
        self._count = self._unwritten = 0
        transport = self.transport
        if transport is None or transport.is_closing():  # closed meanwhile: nothing can be written
            return
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        data = b"".join(chunks)
        if data:
            transport.write(data)
        if chunks[-1] == b"":  # websockets asks for the end of our half of the stream
            if transport.can_write_eof():
                transport.write_eof()
            else:  # TLS cannot half-close
                transport.close()

    # -- receiving ---------------------------------------------------------------
    def set_handler(self, handler: MessageHandler) -> None:
        """From now on hand each message to ``handler``; messages already queued first."""
        self.on_message = handler
        while self._inbox and self.on_message is handler:
            self._deliver(self._inbox.popleft())

    async def recv(self) -> str | bytes:
        """The next message (only while :attr:`on_message` is unset).

        :raises ConnectionClosed: the connection closed first
        """
        while not self._inbox:
            if self._lost.done() or self.protocol.state is State.CLOSED:
                raise self._closed_error()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    def _deliver(self, message: str | bytes) -> None:
        handler = self.on_message
        if handler is None:
            self._inbox.append(message)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
            return
        try:
            handler(message)
        except Exception:  # a handler bug must not tear down the connection
            log.exception("error while handling a message from the bridge")

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(bytes(frame.data), opcode is Opcode.TEXT)
            else:
                self._fragments = [bytes(frame.data)]
                self._fragment_text = opcode is Opcode.TEXT
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self._message(data, self._fragment_text)
        # PING, PONG and CLOSE: websockets already queued the answer; _flush sends it

    def _message(self, data: bytes, text: bool) -> None:
        if not text:
            self._deliver(data)
            return
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("the bridge sent a text frame that is not UTF-8; closing the connection")
            self.protocol.fail(1007, "invalid UTF-8")
            self._flush()
            self._expect_close()
            return
        self._deliver(decoded)

    # -- closing -----------------------------------------------------------------
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Closing handshake, then the TCP connection (aborted after ``close_timeout``)."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
            self._expect_close()
        elif self.transport is not None and self.protocol.state is State.CONNECTING:
            self.transport.abort()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    def _expect_close(self) -> None:
        """websockets expects the other side to end TCP now; don't wait forever."""
        if self._abort_timer is None and self.protocol.close_expected() and self.transport is not None:
            self._abort_timer = self._loop.call_later(self.close_timeout, self.transport.abort)

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        if self._request is not None:
            self.protocol.send_request(self._request)
            self._request = None
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()  # pongs, a close reply, or the end of a failed handshake
        for event in events:
            if isinstance(event, Frame):
                self._on_frame(event)
            elif not self.handshake.done():  # the handshake response
                self._handshake_done()
        if protocol.handshake_exc is not None and not self.handshake.done():
            self._handshake_done()
        self._expect_close()

    def _handshake_done(self) -> None:
        exc = self.protocol.handshake_exc
        if exc is not None:
            self.handshake.set_exception(exc)
        else:  # open, even if what came with the response already failed it again
            self.handshake.set_result(None)

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.protocol.state is not State.CLOSED:
            self.protocol.receive_eof()  # moves websockets' state machine to CLOSED
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if not self.handshake.done():
            failure = InvalidMessage("the bridge closed the connection during the WebSocket handshake")
            failure.__cause__ = exc
            self.handshake.set_exception(failure)
            self.handshake.exception()  # retrieved: nobody may be awaiting it any more
        if not self._lost.done():
            self._lost.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._wake_writers()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writers()

    def _wake_writers(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None


async def open_link(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    user_agent: str | None = None,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    max_size: int | None = 2**20,
    close_timeout: float = 2.0,
    logger: logging.Logger | logging.LoggerAdapter | None = None,  # type: ignore[type-arg]
    proxy: HttpProxy | None = None,
) -> BridgeLink:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the WebSocket handshake.

    :param proxy: reach the server through this HTTP proxy's CONNECT tunnel (TLS,
        for ``wss://``, runs end to end with the server inside it)
    :raises InvalidStatus: the server answered the handshake with another HTTP status
    :raises InvalidHandshake: anything else wrong with the handshake
    :raises ProxyError: the proxy could not be reached or did not open the tunnel
    :raises OSError: the TCP (or TLS) connection failed
    :raises TimeoutError: no complete handshake within ``timeout`` seconds
    """
    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=max_size, logger=logger)
    request = protocol.connect()
    for name, value in (headers or {}).items():
        request.headers[name] = value
    if user_agent:
        request.headers["User-Agent"] = user_agent
    if uri.secure and ssl_context is None:
        ssl_context = ssl.create_default_context()
    loop = asyncio.get_running_loop()
    transport: asyncio.Transport | None = None
    try:
        async with asyncio.timeout(timeout):
            link = BridgeLink(protocol, request, close_timeout=close_timeout)
            if proxy is None:
                transport, _ = await loop.create_connection(
                    lambda: link,
                    uri.host,
                    uri.port,
                    ssl=ssl_context if uri.secure else None,
                    server_hostname=uri.host if uri.secure else None,
                )
            else:
                transport = await open_tunnel(proxy, uri.host, uri.port, user_agent=user_agent)
                transport.set_protocol(link)
                if uri.secure:
                    assert ssl_context is not None
                    tls = await loop.start_tls(transport, link, ssl_context, server_hostname=uri.host)
                    if tls is None:  # typeshed allows it; asyncio and uvloop return the TLS transport
                        raise ProxyError(f"TLS through the proxy {proxy} did not start")
                    transport = tls
                link.connection_made(transport)  # no create_connection() to call it: we do
            await link.handshake
    except BaseException:
        if transport is not None:
            transport.abort()
        raise
    return link
