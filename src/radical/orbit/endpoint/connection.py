"""One connection to the bridge, from dial to disconnect.

    conn = BridgeConnection(settings, host, queue, inflight, proxy=None, reconnect=False)
    registered = await conn.open()        # dial (maybe through a proxy) + register
    await conn.serve(stop, drain)         # until lost, or until stop is set
    await conn.close(1001)

Contract with the agent (which outlives every connection):

* :meth:`BridgeConnection.open` dials ``ws(s)://bridge/ws/endpoint`` with the endpoint
  key (``Authorization: Bearer``) and name (``X-Orbit-Endpoint``), sends ``register``
  and returns the bridge's ``registered`` frame. Without a key it first waits for the
  key file (:func:`.keys.wait_for_key`: the bridge in the same HOME writes it at start).
  On failure the socket is closed again, and the exception says whether dialing again
  can help: :class:`Refused` wraps an :class:`OrbitError` retrying cannot fix (the
  bridge answered the upgrade with 401/403/400/409, or refused the protocol version);
  anything else (:class:`Lost`, :class:`ProxyError`, websockets' handshake and close
  errors, ``OSError``, ``TimeoutError``) is worth a retry.
* :meth:`BridgeConnection.serve` answers requests (each in its own task, tracked in
  the shared :class:`Inflight` so the agent can drain them), answers pings, sends the
  notification queue and runs the watchdog: our own pings, and ~3 heartbeats of
  silence from the bridge end the connection. It raises why the connection ended
  (:class:`Lost`, ``ConnectionClosed``), or, once ``stop`` is set, awaits ``drain``
  (the agent's graceful stop) while answers and notifications still flow, flushes
  the queue and returns. A close with 4009 "replaced" is :class:`Refused`: another
  endpoint with our key took our name, and dialing again would take it back, forever.
* Secrets: the key goes out in one header and is in no log line; websockets'
  logger never runs at DEBUG (it would log handshake headers and frame contents).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import logging
import os
import platform
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..__about__ import __version__
from ..errors import (
    ConflictError,
    EndpointUnavailableError,
    OrbitError,
    ResponseTooLargeError,
    UsageError,
    quoted,
)
from ..models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_NAME_RESERVED,
    CLOSE_NAME_TAKEN,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    DEFAULT_FRAME_LIMIT,
    Ack,
    Cancel,
    ErrorFrame,
    Notification,
    Ping,
    Pong,
    Register,
    Registered,
    Request,
    Response,
    dump_frame,
    dump_response,
    oversize,
    parse_frame,
)
from .dispatch import error_response
from .keys import FATAL_STATUSES, bridge_says, key_refused, wait_for_key
from .link import BridgeLink, open_link
from .notifications import NotificationQueue
from .plugin_host import PluginHost
from .proxy import HttpProxy
from .settings import EndpointSettings

__all__ = ["BridgeConnection", "Inflight", "Lost", "Refused", "host_info"]

log = logging.getLogger(__name__)


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logger for websockets that never enables DEBUG.

    websockets logs handshake headers (our bearer token) and frame contents
    (request bodies) at debug level; neither may reach a log.
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOG = _NoDebug(logging.getLogger("radical.orbit.endpoint.ws"), {})


class Refused(Exception):
    """The bridge refused us for a reason retrying cannot fix; ``error`` says which."""

    def __init__(self, error: OrbitError) -> None:
        super().__init__(error.message)
        self.error = error


class Lost(Exception):
    """The connection is gone (or as good as gone); dialing again may help."""


@dataclass
class Inflight:
    """Relayed requests being answered, across connections (the agent drains them at stop)."""

    #: the task answering each request, by request id
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: set when the endpoint stops: requests that arrive now are answered 503
    refusing: bool = False
    #: requests the bridge called off (``cancel``): their tasks end without an answer
    called_off: set[str] = field(default_factory=set)

    def track(self, request_id: str, task: asyncio.Task[None]) -> None:
        self.tasks[request_id] = task
        task.add_done_callback(functools.partial(self._done, request_id))

    def _done(self, request_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(request_id) is task:
            del self.tasks[request_id]
        self.called_off.discard(request_id)

    def call_off(self, request_id: str) -> bool:
        """Cancel the work on ``request_id``, whose answer nobody waits for any more;
        False if it is not (or no longer) being answered."""
        task = self.tasks.get(request_id)
        if task is None or task.done():
            return False
        self.called_off.add(request_id)
        task.cancel()
        return True


def host_info() -> dict[str, Any]:
    """What the endpoint tells the bridge about where it runs (no secrets)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pid": os.getpid(),
        "user": user,
    }


class BridgeConnection:
    """One dial of the bridge and the life of the connection it gives.

    :param host: the started plugins (what we register, who answers requests)
    :param queue: the notification outbox (shared with the agent, outlives us)
    :param inflight: requests being answered (shared with the agent, outlives us)
    :param proxy: the HTTP proxy to dial through (None: directly)
    :param reconnect: the endpoint was registered before (a taken name is then retried)
    """

    def __init__(
        self,
        settings: EndpointSettings,
        host: PluginHost,
        queue: NotificationQueue,
        inflight: Inflight,
        *,
        proxy: HttpProxy | None = None,
        reconnect: bool = False,
    ) -> None:
        self.settings = settings
        self.host = host
        self.queue = queue
        self.inflight = inflight
        self.proxy = proxy
        self.reconnect = reconnect
        #: largest frame the bridge takes, from its "registered" frame
        self.bridge_max_frame = DEFAULT_FRAME_LIMIT
        #: the bridge's heartbeat interval, from its "registered" frame
        self.heartbeat = 0.0
        self._link: BridgeLink | None = None
        self._last_seen = 0.0
        #: the bridge acknowledges stored notifications ("registered" said so)
        self.acks = False
        #: notifications sent on this connection that no acknowledgement covers yet
        self.unacked: deque[Notification] = deque()

    def __repr__(self) -> str:
        via = f", proxy={self.proxy.address!r}" if self.proxy else ""
        return f"BridgeConnection(name={self.settings.name!r}, url={self.settings.ws_url!r}{via})"

    # -- dial and register -----------------------------------------------------------
    async def open(self) -> Registered:
        """Dial and register; the socket is closed again if registration fails."""
        link = await self._dial()
        try:
            registered = await self._register(link)
        except BaseException:
            with contextlib.suppress(Exception):
                await link.close()
            raise
        self._link = link
        self.bridge_max_frame = registered.max_frame or DEFAULT_FRAME_LIMIT
        self.heartbeat = registered.heartbeat_interval
        self.acks = registered.acks
        self._last_seen = time.monotonic()
        return registered

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.ws_url.startswith("wss:"):
            return None
        cert = self.settings.cert
        return ssl.create_default_context(cafile=cert) if cert else ssl.create_default_context()

    async def _dial(self) -> BridgeLink:
        try:
            key, source = await wait_for_key(self.settings)
        except UsageError as exc:
            raise Refused(exc) from None
        headers = {"Authorization": f"Bearer {key}", "X-Orbit-Endpoint": self.settings.name}
        try:
            # no WebSocket pings (the protocol has its own ping/pong frames), no compression
            return await open_link(
                self.settings.ws_url,
                headers=headers,
                user_agent=f"radical.orbit-endpoint/{__version__}",
                timeout=self.settings.connect_timeout,
                close_timeout=2.0,
                max_size=self.settings.max_message,
                ssl_context=self._ssl_context(),
                logger=_WS_LOG,
                proxy=self.proxy,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in FATAL_STATUSES:
                raise Refused(key_refused(self.settings, source, status, bridge_says(exc))) from None
            raise

    async def _register(self, link: BridgeLink) -> Registered:
        register = Register(
            name=self.settings.name,
            plugins=self.host.infos,
            host=host_info(),
            version=__version__,
            max_frame=self.settings.max_message,
            run=self.queue.run,
            cancels=True,
        )
        error: ErrorFrame | None = None
        try:
            # a bridge that refuses at once (a wrong token) may have sent its error and
            # close frames with the handshake answer: then this send finds the socket
            # closing, and the frames already queued below still say why
            link.send(dump_frame(register))
        except ConnectionClosed:
            pass
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                while True:
                    frame = parse_frame(await link.recv())
                    if isinstance(frame, Registered):
                        return frame
                    if isinstance(frame, ErrorFrame):
                        error = frame
                        break
                    if isinstance(frame, Ping):
                        link.send(dump_frame(Pong(ts=frame.ts)))
                    else:
                        log.debug("ignoring %s frame before registration", frame.type)
            # refused: the close code (if it comes quickly) says why
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(2.0):
                    await link.wait_closed()
        except ConnectionClosed:
            pass
        except (PydanticValidationError, ValueError) as exc:
            raise Lost(f"unexpected answer to register: {exc.__class__.__name__}") from None
        raise self._refusal(link.close_code, error)

    def _refusal(self, close_code: int | None, error: ErrorFrame | None) -> Exception:
        """Turn a refused registration into a fatal (:class:`Refused`) or retryable error."""
        code = error.code if error else ""
        message = error.message if error else f"closed with code {close_code}"
        name = self.settings.name
        if close_code == CLOSE_UNAUTHORIZED or code in ("unauthorized", "forbidden"):
            return Refused(key_refused(self.settings, self.settings.key_hint, 401, message))
        if close_code == CLOSE_NAME_TAKEN or code in ("name_taken", "conflict", "duplicate_name"):
            if self.reconnect:
                return Lost(f"the bridge still holds our previous connection as {name!r}; retrying")
            return Refused(ConflictError(
                f"endpoint name {name!r} is already connected to the bridge at {self.settings.url}: "
                "stop the other endpoint or pick another --name"
            ))
        if close_code == CLOSE_NAME_RESERVED or code in ("name_reserved", "reserved_name"):
            return Refused(UsageError(f"endpoint name {name!r} is reserved by the bridge: pick another --name"))
        if close_code == CLOSE_BAD_VERSION or code in ("bad_version", "unsupported_version"):
            return Refused(UsageError(
                f"the bridge does not speak this endpoint's protocol ({message}); install matching radical.orbit versions"
            ))
        return Lost(f"registration refused: {code or 'closed'}: {message}")

    # -- serve -----------------------------------------------------------------------
    async def serve(self, stop: asyncio.Event, drain: Callable[[], Awaitable[None]]) -> None:
        """Serve the registered connection until it is lost, or until ``stop`` is set.

        :param drain: the agent's graceful stop, run while this connection still
            carries answers and notifications
        :raises Lost: the bridge went silent or closed the connection
        """
        link = self._require_link()
        # frames that came right behind "registered" are waiting in the link: handled first
        link.set_handler(lambda raw: self._on_message(link, raw))
        reader = asyncio.create_task(link.wait_closed(), name="orbit-reader")
        sender = asyncio.create_task(self._send_notifications(link), name="orbit-sender")
        watchdog = asyncio.create_task(self._watchdog(link, self.heartbeat), name="orbit-watchdog")
        stopper = asyncio.create_task(stop.wait(), name="orbit-stop")
        tasks = {reader, sender, watchdog, stopper}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                await drain()  # the reader keeps running and refuses new requests
                await self._flush(sender)
                return
            replaced = self._replaced(link)
            if replaced is not None:
                raise replaced
            for loop_task in (reader, sender, watchdog):
                if loop_task in done:
                    loop_task.result()  # raises why the connection ended
            code = link.close_code
            reason = f" ({code}{': ' + link.close_reason if link.close_reason else ''})" if code is not None else ""
            raise Lost(f"the bridge closed the connection{reason}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.unacked:  # the bridge may not have stored these: the next connection sends them again
                log.info("%d notifications the bridge did not acknowledge are sent again on the next connection", len(self.unacked))
                self.queue.requeue(list(self.unacked))
                self.unacked.clear()

    def _replaced(self, link: BridgeLink) -> Refused | None:
        """:class:`Refused` if the bridge closed us because our key registered our name again."""
        rcvd = link.protocol.close_rcvd
        if rcvd is None or rcvd.code != CLOSE_REPLACED:
            return None
        return Refused(ConflictError(
            f"the bridge at {self.settings.url} handed the name {self.settings.name!r} to a new connection with this "
            "endpoint's key: another endpoint with the same key and name is running; stop one of them"
        ))

    async def close(self, code: int = 1000) -> None:
        """Closing handshake (if the connection is still open), then the socket."""
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(Exception):
                await link.close(code)

    def _require_link(self) -> BridgeLink:
        if self._link is None:
            raise RuntimeError("open() the connection first")
        return self._link

    async def _flush(self, sender: asyncio.Task[None], timeout: float = 2.0) -> None:
        """Give queued notifications (a closing session's last ones) a moment to go out
        and be acknowledged."""
        deadline = time.monotonic() + timeout
        while (len(self.queue) or self.unacked) and not sender.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- what a connection does --------------------------------------------------------
    def _on_message(self, link: BridgeLink, raw: str | bytes) -> None:
        """One frame from the bridge, handled as it is parsed (no reader task to wake)."""
        self._last_seen = time.monotonic()
        try:
            frame = parse_frame(raw)
        except (PydanticValidationError, ValueError) as exc:
            log.warning("malformed frame from the bridge ignored (%s)", type(exc).__name__)
            self._send_quietly(link, dump_frame(ErrorFrame(code="malformed_frame", message="frame did not validate")))
            return
        if isinstance(frame, Request):
            log.debug("request %s: %s %s", frame.id, frame.method, frame.path)
            self.inflight.track(frame.id, asyncio.create_task(self._answer(link, frame), name=f"orbit-request-{frame.id}"))
        elif isinstance(frame, Ack):
            self._acknowledged(frame.seq)
        elif isinstance(frame, Cancel):
            if self.inflight.call_off(frame.id):
                log.info("request %s called off by the bridge (%s): its work is cancelled", quoted(frame.id, 64), quoted(frame.reason, 120))
        elif isinstance(frame, Ping):
            self._send_quietly(link, dump_frame(Pong(ts=frame.ts)))
        elif isinstance(frame, Pong):
            log.debug("pong from the bridge")
        elif isinstance(frame, ErrorFrame):
            log.warning("bridge reported an error: %s: %s (ref %s)", frame.code, frame.message, frame.ref)
        else:
            log.debug("ignoring unexpected %s frame from the bridge", frame.type)

    def _acknowledged(self, seq: int) -> None:
        """The bridge stored every notification up to ``seq``: forget them."""
        unacked = self.unacked
        while unacked and (unacked[0].seq or 0) <= seq:
            unacked.popleft()

    @staticmethod
    def _send_quietly(link: BridgeLink, text: str) -> None:
        """Send if the connection is still open; a closing one is noticed elsewhere."""
        with contextlib.suppress(ConnectionClosed):
            link.send(text)

    async def _answer(self, link: BridgeLink, frame: Request) -> None:
        name = self.settings.name
        if self.inflight.refusing:
            response = error_response(frame.id, EndpointUnavailableError(
                f"endpoint '{name}' is shutting down; retry on another endpoint or later"
            ))
        else:
            try:
                response = await self.host.dispatcher.handle(frame)
            except asyncio.CancelledError:
                if frame.id in self.inflight.called_off:  # the bridge answered the client already
                    return
                response = error_response(frame.id, EndpointUnavailableError(
                    f"endpoint '{name}' shut down before {frame.method} {frame.path} finished"
                ))
        await self._send_response(link, response, frame)

    def _response_text(self, response: Response, request: Request) -> str:
        """The response frame, or a 502 frame when the bridge could not take it: a
        frame over its limit would make it close the socket, failing every request
        in flight on this endpoint."""
        text = dump_response(response)
        limit = self.bridge_max_frame
        size = oversize(text, limit)
        if size is None:
            return text
        log.warning("the answer to %s %s (request %s) is %d bytes as a frame, over the bridge's %d: answered 502",
                    request.method, request.path, request.id, size, limit)
        error = ResponseTooLargeError(
            f"the answer to {request.method} {request.path} on endpoint '{self.settings.name}' takes {size} bytes "
            f"as a frame, more than the bridge accepts ({limit}); ask for less at a time, "
            "or start the bridge with a larger --max-body (its frame limit is twice that plus 1 MiB)",
            size=size,
            limit=limit,
        )
        return dump_response(error_response(response.id, error))

    async def _send_response(self, link: BridgeLink, response: Response, request: Request) -> None:
        try:
            # the only request being answered (this task): nothing to gather it with
            link.send(self._response_text(response, request), now=len(self.inflight.tasks) <= 1)
            await link.drain()
        except ConnectionClosed:
            # the bridge already failed this request with 503 when the connection dropped
            log.info("response %s not delivered: the connection to the bridge is gone", response.id)
        else:
            log.debug("response %s: %d", response.id, response.status)

    async def _send_notifications(self, link: BridgeLink) -> None:
        while True:
            await self.queue.wait()
            frame = self.queue.pop()
            if frame is None:
                continue
            try:
                text = dump_frame(frame)
            except (PydanticSerializationError, ValueError, TypeError) as exc:
                log.warning("notification %s/%s dropped: it cannot be serialised (%s)", frame.plugin, frame.topic, type(exc).__name__)
                continue
            try:
                link.send(text)
            except BaseException:
                self.queue.push_back(frame)
                raise
            if self.acks and frame.seq is not None:
                self.unacked.append(frame)
                if len(self.unacked) > self.queue.maxsize:
                    # kept for a resend only: the bridge has it (its outbox is bounded too)
                    self.unacked.popleft()
            await link.drain()
            log.debug("notification %s/%s sent", frame.plugin, frame.topic)

    async def _watchdog(self, link: BridgeLink, heartbeat: float) -> None:
        ping_every = self.settings.heartbeat or heartbeat
        dead_after = self.settings.dead_after * heartbeat
        step = max(min(ping_every, heartbeat) / 4, 0.01)
        next_ping = time.monotonic() + ping_every
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            silent = now - self._last_seen
            if silent > dead_after:
                raise Lost(f"no frame from the bridge for {silent:.1f} s ({self.settings.dead_after:g} heartbeats)")
            if now >= next_ping:
                next_ping = now + ping_every
                link.send(dump_frame(Ping(ts=time.time())))
