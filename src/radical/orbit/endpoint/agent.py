"""The endpoint agent: dial the bridge, register, answer relayed requests, stay connected.

Lifecycle::

    run()
      start plugins (disabled ones are reported with their reason, never fatal)
      loop until stop():
        connect ws(s)://bridge/ws/endpoint (Authorization: Bearer <token>)
        send register -> expect registered {heartbeat_interval}
        reader:   request -> one task each -> dispatch into the plugin app -> response
                  ping -> pong
        sender:   notification queue -> notification frames
        watchdog: our own pings; ~3 heartbeats of silence from the bridge -> reconnect
        on loss:  wait backoff (capped exponential with jitter), then dial again
      stop(): answer or fail in-flight requests, stop plugins (closes sessions),
              flush notifications, close with 1001

A refused token (HTTP 401/403 or close 4001), a reserved name or an unsupported
protocol version end :meth:`EndpointAgent.run` with an :class:`OrbitError`: retrying
cannot fix them. A name that is already connected does too, unless this agent was
registered before (then the bridge may still hold our previous connection; retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import os
import platform
import signal
import socket
import ssl
import time
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..__about__ import __version__
from ..backoff import Backoff
from ..errors import (
    AuthenticationError,
    ConflictError,
    EndpointUnavailableError,
    OrbitError,
    ResponseTooLargeError,
    UsageError,
)
from ..models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_GOING_AWAY,
    CLOSE_NAME_RESERVED,
    CLOSE_NAME_TAKEN,
    CLOSE_UNAUTHORIZED,
    DEFAULT_FRAME_LIMIT,
    ErrorFrame,
    Ping,
    PluginInfo,
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
from ..plugins.base import Plugin, PluginContext
from ..plugins.registry import PluginEntry, discover_plugins
from .dispatch import Dispatcher, HostedPlugin, error_response
from .link import BridgeLink, open_link
from .notifications import NotificationQueue, call_on_loop
from .settings import EndpointSettings

__all__ = ["Backoff", "EndpointAgent", "host_info"]

log = logging.getLogger(__name__)


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logger for websockets that never enables DEBUG.

    websockets logs handshake headers (our bearer token) and frame contents
    (request bodies) at debug level; neither may reach a log.
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOG = _NoDebug(logging.getLogger("radical.orbit.endpoint.ws"), {})


class _Fatal(Exception):
    """Internal: wraps an error that retrying cannot fix."""

    def __init__(self, error: OrbitError) -> None:
        super().__init__(error.message)
        self.error = error


class _Lost(Exception):
    """Internal: the connection is gone (or as good as gone)."""



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


class EndpointAgent:
    """One endpoint: its plugins, its connection to the bridge, its notification outbox.

    :param settings: resolved :class:`EndpointSettings`
    :param entries: discovered plugins (default: :func:`discover_plugins` with
        ``settings.plugins``)
    """

    def __init__(self, settings: EndpointSettings, entries: list[PluginEntry] | None = None) -> None:
        self.settings = settings
        self._entries = entries
        self.queue = NotificationQueue(settings.notify_queue_size)
        self.plugins: dict[str, Plugin] = {}
        self.infos: list[PluginInfo] = []
        self.dispatcher = Dispatcher({})
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self.heartbeat_interval: float | None = None
        #: largest frame the bridge takes, from its "registered" frame
        self.bridge_max_frame = DEFAULT_FRAME_LIMIT
        #: successful registrations so far (1 after the first, +1 per reconnect)
        self.registrations = 0
        self._ws: BridgeLink | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio.Event binds to the loop on first use, so these can exist before run()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._registered = asyncio.Event()
        self._stopping = False
        self._plugins_stopped = False
        self._last_seen = 0.0

    def __repr__(self) -> str:
        return f"EndpointAgent(name={self.settings.name!r}, url={self.settings.ws_url!r})"

    # -- public ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._registered.is_set()

    def notify(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any]) -> None:
        """``PluginContext.notify``: queue a notification (thread-safe)."""
        self.queue.put(plugin, sid, topic, payload)

    async def wait_registered(self, timeout: float | None = None) -> None:
        """Until the agent is registered with the bridge (for tests and embedding)."""
        await asyncio.wait_for(self._registered.wait(), timeout)

    def stop(self) -> None:
        """Ask :meth:`run` to shut down cleanly; a second call stops waiting for requests.

        Safe to call from any thread.
        """
        loop = self._loop
        if loop is None or loop.is_closed():  # not running: run() will return at once
            self._request_stop()
            return
        call_on_loop(loop, self._request_stop)

    def _request_stop(self) -> None:
        if self._stop.is_set():
            log.warning("second stop request: failing in-flight requests now")
            self._force.set()
        else:
            log.info("stopping endpoint %s", self.settings.name)
        self._stop.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until :meth:`stop` (or SIGINT/SIGTERM with ``handle_signals``).

        :raises OrbitError: when the bridge refuses us for good (token, name, version)
        """
        self._loop = asyncio.get_running_loop()
        self.queue.bind(self._loop)
        signals: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.add_signal_handler(sig, self._request_stop)
                    signals.append(sig)
        log.info(
            "endpoint %s starting: bridge %s, token %s, plugins %s",
            self.settings.name, self.settings.ws_url, "set" if self.settings.token else "none",
            ",".join(self.settings.plugins) if self.settings.plugins else "all installed",
        )
        try:
            await self._start_plugins()
            await self._connect_loop()
        finally:
            self._stopping = True
            await self._finish_inflight()
            await self._stop_plugins()
            if len(self.queue):
                log.info("%d notification(s) not delivered: the bridge was not reachable at shutdown", len(self.queue))
            for sig in signals:
                self._loop.remove_signal_handler(sig)
            log.info("endpoint %s stopped", self.settings.name)

    # -- plugins -----------------------------------------------------------------
    async def _start_plugins(self) -> None:
        entries = self._entries if self._entries is not None else discover_plugins(self.settings.plugins)
        hosted: dict[str, HostedPlugin] = {}
        infos: list[PluginInfo] = []
        unknown = sorted(set(self.settings.plugin_options) - {entry.name for entry in entries})
        if unknown:
            log.warning("options given for plugins that are not loaded: %s", ", ".join(unknown))
        for entry in entries:
            info = entry.info
            if entry.cls is not None and info.enabled:
                plugin: Plugin | None = None
                ctx = PluginContext(
                    endpoint=self.settings.name,
                    notify=self.notify,
                    settings=dict(self.settings.plugin_options.get(entry.name, {})),
                )
                try:
                    plugin = entry.cls(ctx)
                    await plugin.start()
                    app = plugin.app
                except Exception as exc:  # one broken plugin must not take the endpoint down
                    if isinstance(exc, OrbitError):  # e.g. a bad option: the message says it all
                        log.error("plugin %s cannot start (reported as disabled): %s", entry.name, exc.message)
                    else:
                        log.exception("plugin %s failed to start; reporting it as disabled", entry.name)
                    if plugin is not None:
                        with contextlib.suppress(Exception):
                            await plugin.stop()  # release whatever start() got going
                    info = info.model_copy(update={"enabled": False, "reason": f"failed to start: {type(exc).__name__}: {exc}"})
                else:
                    assert plugin is not None
                    self.plugins[entry.name] = plugin
                    hosted[entry.name] = HostedPlugin(entry.name, app)
                    log.info("plugin %s %s started", entry.name, info.version)
            if not info.enabled:
                hosted[entry.name] = HostedPlugin(entry.name, None, info.reason)
                log.warning("plugin %s is disabled: %s", entry.name, info.reason)
            infos.append(info)
        self.infos = infos
        self.dispatcher = Dispatcher(hosted)
        # plugins, their apps and imports live as long as the process: keep the cyclic
        # GC from re-scanning them on every full collection (p99 latency spikes)
        gc.collect()
        gc.freeze()

    async def _stop_plugins(self) -> None:
        if self._plugins_stopped:
            return
        self._plugins_stopped = True
        for name, plugin in self.plugins.items():
            try:
                await plugin.stop()
            except Exception:  # keep stopping the others
                log.exception("plugin %s failed to stop cleanly", name)
            else:
                log.info("plugin %s stopped", name)

    # -- connection loop -----------------------------------------------------------
    async def _connect_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            before = self.registrations
            # the first failure of a streak is a warning, the retries that follow are info
            warn = log.warning if attempt == 0 else log.info
            try:
                await self._connection(quiet=attempt > 0)
            except _Fatal as exc:
                log.error("%s", exc.error.message)
                raise exc.error from None
            except _Lost as exc:
                warn("connection to the bridge lost: %s", exc)
            except ConnectionClosed as exc:
                warn("connection to the bridge closed (%s)", _close_text(exc))
            except InvalidHandshake as exc:
                warn("bridge at %s refused the WebSocket handshake: %s", self.settings.ws_url, exc)
            except (TimeoutError, OSError) as exc:
                warn("cannot reach the bridge at %s: %s", self.settings.ws_url, exc or type(exc).__name__)
            except Exception:  # a bug must not end the endpoint; log it and dial again
                log.exception("unexpected error on the connection to the bridge")
            if self._stop.is_set():
                break
            if self.registrations > before:
                attempt = 0
            delay = self.backoff.delay(attempt)
            attempt += 1
            log.info("reconnecting in %.1f s", delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.ws_url.startswith("wss:"):
            return None
        return ssl.create_default_context(cafile=self.settings.cert) if self.settings.cert else ssl.create_default_context()

    async def _dial(self) -> BridgeLink:
        headers: dict[str, str] = {}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
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
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise _Fatal(self._token_refused(f"HTTP {status}")) from None
            raise

    def _token_refused(self, how: str) -> AuthenticationError:
        given = "no token was given" if self.settings.token is None else "the token was not accepted"
        return AuthenticationError(
            f"bridge refused the token ({how}; {given}) at {self.settings.ws_url}: pass --token, set "
            "RADICAL_ORBIT_BRIDGE_TOKEN or ~/.radical/orbit/bridge.token to the bridge's token"
        )

    async def _open(self) -> tuple[BridgeLink, Registered]:
        """Dial and register; the connection is closed again if registration fails."""
        ws = await self._dial()
        try:
            return ws, await self._register(ws)
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise

    async def _register(self, ws: BridgeLink) -> Registered:
        register = Register(
            name=self.settings.name,
            plugins=self.infos,
            host=host_info(),
            version=__version__,
            max_frame=self.settings.max_message,
        )
        error: ErrorFrame | None = None
        try:
            # a bridge that refuses at once (a wrong token) may have sent its error and
            # close frames with the handshake answer: then this send finds the socket
            # closing, and the frames already queued below still say why
            ws.send(dump_frame(register))
        except ConnectionClosed:
            pass
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                while True:
                    frame = parse_frame(await ws.recv())
                    if isinstance(frame, Registered):
                        return frame
                    if isinstance(frame, ErrorFrame):
                        error = frame
                        break
                    if isinstance(frame, Ping):
                        ws.send(dump_frame(Pong(ts=frame.ts)))
                    else:
                        log.debug("ignoring %s frame before registration", frame.type)
            # refused: the close code (if it comes quickly) says why
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(2.0):
                    await ws.wait_closed()
        except ConnectionClosed:
            pass
        except (PydanticValidationError, ValueError) as exc:
            raise _Lost(f"unexpected answer to register: {exc.__class__.__name__}") from None
        raise self._refusal(ws.close_code, error)

    def _refusal(self, close_code: int | None, error: ErrorFrame | None) -> Exception:
        """Turn a refused registration into a fatal or a retryable error."""
        code = error.code if error else ""
        message = error.message if error else f"closed with code {close_code}"
        name = self.settings.name
        if close_code == CLOSE_UNAUTHORIZED or code in ("unauthorized", "forbidden"):
            return _Fatal(self._token_refused(f"close code {close_code}"))
        if close_code == CLOSE_NAME_TAKEN or code in ("name_taken", "conflict", "duplicate_name"):
            if self.registrations:
                return _Lost(f"the bridge still holds our previous connection as {name!r}; retrying")
            return _Fatal(ConflictError(
                f"endpoint name {name!r} is already connected to the bridge at {self.settings.url}: "
                "stop the other endpoint or pick another --name"
            ))
        if close_code == CLOSE_NAME_RESERVED or code in ("name_reserved", "reserved_name"):
            return _Fatal(UsageError(f"endpoint name {name!r} is reserved by the bridge: pick another --name"))
        if close_code == CLOSE_BAD_VERSION or code in ("bad_version", "unsupported_version"):
            return _Fatal(UsageError(
                f"the bridge does not speak this endpoint's protocol ({message}); install matching radical.orbit versions"
            ))
        return _Lost(f"registration refused: {code or 'closed'}: {message}")

    async def _connection(self, *, quiet: bool = False) -> None:
        """One connection's life: dial, register, serve until it is lost or we stop."""
        (log.debug if quiet else log.info)("connecting to bridge at %s as %r", self.settings.ws_url, self.settings.name)
        opening = asyncio.create_task(self._open())
        stopper = asyncio.create_task(self._stop.wait())
        await asyncio.wait({opening, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not opening.done():  # stop() while dialing or registering
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            return
        ws, registered = opening.result()
        try:
            self._ws = ws
            self.heartbeat_interval = registered.heartbeat_interval
            self.bridge_max_frame = registered.max_frame or DEFAULT_FRAME_LIMIT
            self.registrations += 1
            self._last_seen = time.monotonic()
            self._registered.set()
            enabled = [p.name for p in self.infos if p.enabled]
            log.info(
                "registered with the bridge as %r (plugins: %s; heartbeat %.1f s)",
                self.settings.name, ", ".join(enabled) or "none", registered.heartbeat_interval,
            )
            await self._serve(ws, registered.heartbeat_interval)
        finally:
            self._registered.clear()
            self._ws = None
            with contextlib.suppress(Exception):
                await ws.close(CLOSE_GOING_AWAY if self._stop.is_set() else 1000)
            log.info("disconnected from the bridge")

    async def _serve(self, ws: BridgeLink, heartbeat: float) -> None:
        # frames that came right behind "registered" are waiting in the link: handled first
        ws.set_handler(lambda raw: self._on_message(ws, raw))
        reader = asyncio.create_task(ws.wait_closed(), name="orbit-reader")
        sender = asyncio.create_task(self._send_notifications(ws), name="orbit-sender")
        watchdog = asyncio.create_task(self._watchdog(ws, heartbeat), name="orbit-watchdog")
        stopper = asyncio.create_task(self._stop.wait(), name="orbit-stop")
        tasks = {reader, sender, watchdog, stopper}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                await self._shutdown_connected(ws, sender)
                return
            for loop_task in (reader, sender, watchdog):
                if loop_task in done:
                    loop_task.result()  # raises why the connection ended
            code = ws.close_code
            reason = f" ({code}{': ' + ws.close_reason if ws.close_reason else ''})" if code is not None else ""
            raise _Lost(f"the bridge closed the connection{reason}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _shutdown_connected(self, ws: BridgeLink, sender: asyncio.Task[None]) -> None:
        """Graceful stop while connected: requests, plugins, notifications, then close."""
        self._stopping = True  # the reader keeps running and refuses new requests
        await self._finish_inflight()
        await self._stop_plugins()  # closing sessions may still notify
        deadline = time.monotonic() + 2.0
        while len(self.queue) and not sender.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- what a connection does --------------------------------------------------------
    def _on_message(self, ws: BridgeLink, raw: str | bytes) -> None:
        """One frame from the bridge, handled as it is parsed (no reader task to wake)."""
        self._last_seen = time.monotonic()
        try:
            frame = parse_frame(raw)
        except (PydanticValidationError, ValueError) as exc:
            log.warning("malformed frame from the bridge ignored (%s)", type(exc).__name__)
            self._send_quietly(ws, dump_frame(ErrorFrame(code="malformed_frame", message="frame did not validate")))
            return
        if isinstance(frame, Request):
            log.debug("request %s: %s %s", frame.id, frame.method, frame.path)
            task = asyncio.create_task(self._answer(ws, frame), name=f"orbit-request-{frame.id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        elif isinstance(frame, Ping):
            self._send_quietly(ws, dump_frame(Pong(ts=frame.ts)))
        elif isinstance(frame, Pong):
            log.debug("pong from the bridge")
        elif isinstance(frame, ErrorFrame):
            log.warning("bridge reported an error: %s: %s (ref %s)", frame.code, frame.message, frame.ref)
        else:
            log.debug("ignoring unexpected %s frame from the bridge", frame.type)

    @staticmethod
    def _send_quietly(ws: BridgeLink, text: str) -> None:
        """Send if the connection is still open; a closing one is noticed elsewhere."""
        with contextlib.suppress(ConnectionClosed):
            ws.send(text)

    async def _answer(self, ws: BridgeLink, frame: Request) -> None:
        if self._stopping:
            response = error_response(frame.id, EndpointUnavailableError(
                f"endpoint '{self.settings.name}' is shutting down; retry on another endpoint or later"
            ))
        else:
            try:
                response = await self.dispatcher.handle(frame)
            except asyncio.CancelledError:
                response = error_response(frame.id, EndpointUnavailableError(
                    f"endpoint '{self.settings.name}' shut down before {frame.method} {frame.path} finished"
                ))
        await self._send_response(ws, response, frame)

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

    async def _send_response(self, ws: BridgeLink, response: Response, request: Request) -> None:
        try:
            ws.send(self._response_text(response, request))
            await ws.drain()
        except ConnectionClosed:
            # the bridge already failed this request with 503 when the connection dropped
            log.info("response %s not delivered: the connection to the bridge is gone", response.id)
        else:
            log.debug("response %s: %d", response.id, response.status)

    async def _send_notifications(self, ws: BridgeLink) -> None:
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
                ws.send(text)
            except BaseException:
                self.queue.push_back(frame)
                raise
            await ws.drain()
            log.debug("notification %s/%s sent", frame.plugin, frame.topic)

    async def _watchdog(self, ws: BridgeLink, heartbeat: float) -> None:
        ping_every = self.settings.heartbeat or heartbeat
        dead_after = self.settings.dead_after * heartbeat
        step = max(min(ping_every, heartbeat) / 4, 0.01)
        next_ping = time.monotonic() + ping_every
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            silent = now - self._last_seen
            if silent > dead_after:
                raise _Lost(f"no frame from the bridge for {silent:.1f} s ({self.settings.dead_after:g} heartbeats)")
            if now >= next_ping:
                next_ping = now + ping_every
                ws.send(dump_frame(Ping(ts=time.time())))

    async def _finish_inflight(self) -> None:
        """Let in-flight requests finish within the grace period, then fail the rest."""
        if not self._inflight:
            return
        log.info("waiting up to %.0f s for %d in-flight request(s)", self.settings.shutdown_grace, len(self._inflight))
        forced = asyncio.create_task(self._force.wait())
        deadline = time.monotonic() + self.settings.shutdown_grace
        try:
            pending = {t for t in self._inflight if not t.done()}
            while pending and not forced.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.wait(pending | {forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                pending = {t for t in pending if not t.done()}
        finally:
            forced.cancel()
        left = [t for t in self._inflight if not t.done()]
        if left:
            log.warning("failing %d request(s) still running at shutdown", len(left))
            for task in left:
                task.cancel()
            await asyncio.wait(left, timeout=2.0)


def _close_text(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "no close frame"
    return f"code {rcvd.code}" + (f": {rcvd.reason}" if rcvd.reason else "")
