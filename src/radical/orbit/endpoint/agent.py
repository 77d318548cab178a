"""The endpoint agent: start the plugins, stay connected to the bridge, stop cleanly.

Lifecycle::

    run()
      start plugins (plugin_host: disabled ones are reported with their reason, never fatal)
      pick the proxy once per bridge URL (proxy: the environment, unless --no-proxy)
      loop until stop():
        one connection (connection: dial, register, serve requests, notifications, watchdog)
        on loss or a failed dial: the next bridge URL at once (several URLs: replicas);
        after a full round without success: wait (backoff: capped exponential with jitter)
      stop(): refuse new requests, let in-flight ones finish within the grace period
              (a second stop() fails them at once), stop plugins (closes sessions),
              flush notifications, close with 1001

What the agent owns outlives every connection: the plugins, the notification outbox,
the requests in flight, the count of registrations. A refused key, a refused or
claimed name or an unsupported protocol version end :meth:`EndpointAgent.run` with an
:class:`OrbitError` (retrying cannot fix them); so does a taken name on the first
connection (on a reconnect the bridge may still hold our previous socket: retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ..backoff import Backoff
from ..errors import OrbitError
from ..models.messages import CLOSE_GOING_AWAY, DEFAULT_FRAME_LIMIT, PluginInfo
from ..plugins.base import Plugin
from ..plugins.registry import PluginEntry
from .connection import BridgeConnection, Inflight, Lost, Refused, host_info
from .dispatch import Dispatcher
from .notifications import NotificationQueue, call_on_loop
from .plugin_host import PluginHost
from .proxy import HttpProxy, ProxyError, select_proxy
from .settings import EndpointSettings, websocket_url

__all__ = ["Backoff", "EndpointAgent", "host_info"]

log = logging.getLogger(__name__)


class EndpointAgent:
    """One endpoint: its plugins, its connection to the bridge, its notification outbox.

    :param settings: resolved :class:`EndpointSettings`
    :param entries: discovered plugins (default: :func:`discover_plugins` with
        ``settings.plugins``)
    """

    def __init__(self, settings: EndpointSettings, entries: list[PluginEntry] | None = None) -> None:
        self.settings = settings
        self.queue = NotificationQueue(settings.notify_queue_size, max_payload=settings.max_notification_bytes)
        self.host = PluginHost(settings, self.notify, entries)
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self.inflight = Inflight()
        #: the proxy each bridge URL is dialed through (None: directly); chosen by run()
        self.proxies: dict[str, HttpProxy | None] = {}
        #: the bridge URL dialed last (one of ``settings.urls``; checked by run())
        self.bridge_url = settings.url.split(",")[0].strip()
        self.heartbeat_interval: float | None = None
        #: largest frame the bridge takes, from its "registered" frame
        self.bridge_max_frame = DEFAULT_FRAME_LIMIT
        #: successful registrations so far (1 after the first, +1 per reconnect)
        self.registrations = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio.Event binds to the loop on first use, so these can exist before run()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._registered = asyncio.Event()

    def __repr__(self) -> str:
        return f"EndpointAgent(name={self.settings.name!r}, url={self.ws_url!r})"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL of the bridge dialed last (as given while it is not a usable URL)."""
        try:
            return websocket_url(self.bridge_url)
        except OrbitError:  # run() says what is wrong with it; a repr must not raise
            return self.bridge_url

    @property
    def proxy(self) -> HttpProxy | None:
        """The proxy the bridge dialed last goes through (None: directly)."""
        return self.proxies.get(self.bridge_url)

    # -- public ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._registered.is_set()

    @property
    def plugins(self) -> dict[str, Plugin]:
        """The started plugins by name."""
        return self.host.plugins

    @property
    def infos(self) -> list[PluginInfo]:
        """Every plugin as registered with the bridge, enabled or not."""
        return self.host.infos

    @property
    def dispatcher(self) -> Dispatcher:
        return self.host.dispatcher

    def notify(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None, /) -> None:
        """``PluginContext.notify``: queue a notification (thread-safe)."""
        self.queue.put(plugin, sid, topic, payload, owner)

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

        :raises OrbitError: when the bridge refuses us for good (token, name, version),
            or the proxy the environment names is not one the endpoint can use
        """
        self._loop = asyncio.get_running_loop()
        self.queue.bind(self._loop)
        signals: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.add_signal_handler(sig, self._request_stop)
                    signals.append(sig)
        try:
            self.proxies = {
                url: select_proxy(websocket_url(url)) if self.settings.use_proxy else None for url in self.settings.urls
            }
            log.info(
                "endpoint %s starting: bridge %s%s, key from %s, plugins %s",
                self.settings.name, ", ".join(self.settings.ws_urls), self._route(), self.settings.key_hint,
                ",".join(self.settings.plugins) if self.settings.plugins else "all installed",
            )
            await self.host.start()
            await self._connect_loop()
        except OrbitError as exc:
            log.error("%s", exc.message)
            raise
        finally:
            await self._drain()
            if len(self.queue):
                log.info("%d notification(s) not delivered: the bridge was not reachable at shutdown", len(self.queue))
            for sig in signals:
                self._loop.remove_signal_handler(sig)
            log.info("endpoint %s stopped", self.settings.name)

    def _route(self) -> str:
        """How the bridge is reached, for log lines (never with proxy credentials)."""
        if self.proxy is not None:
            return f" through the proxy {self.proxy}"
        return "" if self.settings.use_proxy else " (--no-proxy: directly)"

    # -- connection loop -----------------------------------------------------------
    async def _connect_loop(self) -> None:
        urls = self.settings.urls
        failures = 0  # connections lost or dials failed since the last registration
        index = 0
        while not self._stop.is_set():
            self.bridge_url = urls[index]
            before = self.registrations
            # the first failure of a streak is a warning, the retries that follow are info
            warn = log.warning if failures < len(urls) else log.info
            try:
                await self._connection(quiet=failures >= len(urls))
            except Refused as exc:
                raise exc.error from None
            except Lost as exc:
                warn("connection to the bridge lost: %s", exc)
            except ProxyError as exc:
                warn("%s", exc.message)
            except ConnectionClosed as exc:
                warn("connection to the bridge closed (%s)", _close_text(exc))
            except InvalidHandshake as exc:
                warn("bridge at %s refused the WebSocket handshake%s: %s", self.ws_url, self._route(), exc)
            except TimeoutError:
                warn("cannot reach the bridge at %s%s: no answer within %g s", self.ws_url, self._route(),
                     self.settings.connect_timeout)
            except OSError as exc:
                warn("cannot reach the bridge at %s%s: %s", self.ws_url, self._route(), exc or type(exc).__name__)
            except Exception:  # a bug must not end the endpoint; log it and dial again
                log.exception("unexpected error on the connection to the bridge")
            if self._stop.is_set():
                break
            if self.registrations > before:
                failures = 0
            failures += 1
            index = (index + 1) % len(urls)
            if failures % len(urls):  # the next bridge of this round, at once
                log.info("trying the next bridge, %s", websocket_url(urls[index]))
                continue
            delay = self.backoff.delay(failures // len(urls) - 1)
            log.info("reconnecting in %.1f s", delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _connection(self, *, quiet: bool = False) -> None:
        """One connection's life: dial, register, serve until it is lost or we stop."""
        (log.debug if quiet else log.info)(
            "connecting to bridge at %s%s as %r", self.ws_url, self._route(), self.settings.name
        )
        conn = BridgeConnection(
            self.settings.for_bridge(self.bridge_url), self.host, self.queue, self.inflight,
            proxy=self.proxy, reconnect=self.registrations > 0,
        )
        opening = asyncio.create_task(conn.open())
        stopper = asyncio.create_task(self._stop.wait())
        await asyncio.wait({opening, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not opening.done():  # stop() while dialing or registering
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            return
        registered = opening.result()
        try:
            self.heartbeat_interval = registered.heartbeat_interval
            self.bridge_max_frame = conn.bridge_max_frame
            self.registrations += 1
            self._registered.set()
            enabled = [p.name for p in self.infos if p.enabled]
            log.info(
                "registered with the bridge at %s as %r (plugins: %s; heartbeat %.1f s)",
                self.ws_url, self.settings.name, ", ".join(enabled) or "none", registered.heartbeat_interval,
            )
            await conn.serve(self._stop, self._drain)
        finally:
            self._registered.clear()
            await conn.close(CLOSE_GOING_AWAY if self._stop.is_set() else 1000)
            log.info("disconnected from the bridge")

    # -- stop and drain --------------------------------------------------------------
    async def _drain(self) -> None:
        """Graceful stop: refuse new requests, finish (or fail) the ones in flight, stop plugins.

        Runs while still connected when possible, so answers and the notifications of
        closing sessions reach the bridge; safe to run twice.
        """
        self.inflight.refusing = True
        await self._finish_inflight()
        await self.host.stop()

    async def _finish_inflight(self) -> None:
        """Let in-flight requests finish within the grace period, then fail the rest."""
        tasks = list(self.inflight.tasks.values())
        if not tasks:
            return
        log.info("waiting up to %.0f s for %d in-flight request(s)", self.settings.shutdown_grace, len(tasks))
        forced = asyncio.create_task(self._force.wait())
        deadline = time.monotonic() + self.settings.shutdown_grace
        try:
            pending = {t for t in tasks if not t.done()}
            while pending and not forced.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.wait(pending | {forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                pending = {t for t in pending if not t.done()}
        finally:
            forced.cancel()
        left = [t for t in tasks if not t.done()]
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
