"""The client's event listener: one thread per :class:`BridgeClient` reading ``GET /events``.

The thread holds one Server-Sent-Events stream open, unfiltered, and hands every
event to the callbacks whose pattern matches (``*`` and shell-style wildcards on
endpoint, plugin and topic; optional session). It survives everything but
:meth:`EventListener.stop`: a dropped stream is reopened after a
:class:`~radical.orbit.backoff.Backoff` delay (a fast first retry, then capped at a
few seconds), resuming with ``Last-Event-ID`` so the bridge replays what was missed
(or sends a ``gap`` event when its buffer no longer holds it). An event whose id
was delivered already (a replay overlapping what arrived before) is not delivered
again: the bridge's ids grow by one per event. A callback that raises is logged and
the listener carries on. The stream is a request like any
other of the :class:`~radical.orbit.client.transport.BridgeHTTP` seam, so its
failures read exactly like those of a plain request.

Subscription is explicit: the bridge opens every stream with a ``hello`` event, and
:meth:`EventListener.start` returns only once the first one arrived, so an event
raised after ``register_callback`` returns cannot be missed.

    # BridgeClient.register_callback does this for you:
    listener = EventListener(bridge_http)
    cid = listener.add(Subscription("ep", "*", "job_state", print))
    listener.start(timeout=10)      # raises BridgeUnavailableError / AuthenticationError
    ...
    listener.stop()
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final

import httpx
from httpx_sse import EventSource

from ..backoff import Backoff
from ..errors import OrbitError, UsageError
from ..models.messages import session_tag
from .transport import CONNECT_TIMEOUT, BridgeHTTP

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
"""``callback(event)``; ``event`` is the decoded ``data:`` of one ``/events`` entry."""

#: waits between reconnection attempts: the first within 0.2 s (a bridge restart is
#: usually quick), then doubling up to 5 s, so a lost bridge is noticed soon after it is back
RECONNECT: Final = Backoff(initial=0.2, cap=5.0)
#: the bridge sends a keep-alive comment every 15 s; silence for this long means dead
STREAM_READ_TIMEOUT = 45.0
#: the path of the stream, and the context of its error messages
EVENTS_PATH = "/events"
CONTEXT = "bridge /events"

_WILDCARD_CHARS = frozenset("*?[")


def match_pattern(pattern: str, value: Any) -> bool:
    """Whether ``value`` matches ``pattern`` (``*``, a shell-style pattern or an exact name)."""
    if pattern == "*":
        return True
    if not isinstance(value, str):
        return False
    if _WILDCARD_CHARS.isdisjoint(pattern):
        return pattern == value
    return fnmatchcase(value, pattern)


@dataclass
class Subscription:
    """One registered callback and what it wants to see.

    :param endpoint, plugin, topic: exact names, ``"*"``, or shell-style patterns
        (``"job_*"``); an event field that is null only matches ``"*"``
    :param session: a session tag (as in events) or a session id (hashed here)
    :param key: what names this registration for :meth:`EventListener.remove_key`:
        the filters and the callable as the caller gave them (the original Orbit's
        ``unregister_callback`` takes those, not an id)
    """

    endpoint: str
    plugin: str
    topic: str
    callback: EventCallback
    session: str | None = None
    key: tuple[Any, ...] | None = None
    _tags: frozenset[str] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        for name in ("endpoint", "plugin", "topic"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise UsageError(f"{name} must be a name, '*' or a pattern such as 'job_*', got {value!r}")
        if self.session is not None and (not isinstance(self.session, str) or not self.session):
            raise UsageError(f"session must be a session id or tag (a string) or None, got {self.session!r}")
        if self.session is not None:
            # accept either form; a sid and a tag can never collide (tags are hashes)
            self._tags = frozenset({self.session, session_tag(self.session)})

    def matches(self, event: dict[str, Any]) -> bool:
        if self.session is not None and event.get("session") not in self._tags:
            return False
        return (
            match_pattern(self.endpoint, event.get("endpoint"))
            and match_pattern(self.plugin, event.get("plugin"))
            and match_pattern(self.topic, event.get("topic"))
        )


class EventListener:
    """Background SSE reader that dispatches events to :class:`Subscription` callbacks.

    :param http: the owner's HTTP seam: its client, TLS, headers (authorization) and
        error mapping serve the stream too
    """

    _counter = itertools.count(1)

    def __init__(self, http: BridgeHTTP) -> None:
        self._http = http
        self._subs: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._first_attempt_done = threading.Event()
        self._first_error: OrbitError | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.last_event_id: str | None = None
        self.connects = 0
        #: events dropped because their id was delivered already
        self.repeats = 0
        #: the newest event id delivered, as (bridge boot, sequence number)
        self._newest: tuple[str, int] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EventListener({self.url!r}, {state}, callbacks={len(self._subs)}, last_event_id={self.last_event_id!r})"

    @property
    def url(self) -> str:
        """The stream's URL on the bridge in use (with several bridge URLs it follows the one that answers)."""
        return f"{self._http.url}{EVENTS_PATH}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the stream is subscribed, waiting up to ``timeout`` seconds for it (a reconnect)."""
        return self._subscribed.wait(timeout)

    # -- callbacks ---------------------------------------------------------------
    def add(self, sub: Subscription) -> str:
        with self._lock:
            cid = f"cb-{next(self._ids)}"
            self._subs[cid] = sub
        return cid

    def remove(self, cid: str) -> bool:
        with self._lock:
            return self._subs.pop(cid, None) is not None

    def remove_key(self, key: tuple[Any, ...]) -> bool:
        """Forget the oldest registration made with ``key``; returns whether there was one."""
        with self._lock:
            for cid, sub in self._subs.items():
                if sub.key is not None and sub.key == key:
                    del self._subs[cid]
                    return True
        return False

    def __len__(self) -> int:
        return len(self._subs)

    def dispatch(self, event: dict[str, Any]) -> int:
        """Call every matching callback (on this thread); returns how many ran."""
        with self._lock:
            subs = [s for s in self._subs.values() if s.matches(event)]
        for sub in subs:
            try:
                sub.callback(event)
            except Exception:  # a broken callback must not end the stream for the others
                log.exception(
                    "event callback %r failed on %s event %s", sub.callback, event.get("kind"), event.get("id")
                )
        return len(subs)

    # -- lifecycle ---------------------------------------------------------------
    def start(self, timeout: float) -> None:
        """Start the thread (once) and wait until the stream is subscribed.

        :raises OrbitError: the first connection attempt failed (bridge down, token
            refused); the thread is stopped again in that case
        """
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"orbit-events-{next(self._counter)}", daemon=True
            )
            self._thread.start()
        if self._subscribed.is_set():
            return
        if self.connects:
            # it was subscribed before and is reconnecting: resuming with
            # Last-Event-ID delivers whatever is raised meanwhile
            return
        self._first_attempt_done.wait(timeout)
        if self._subscribed.is_set():
            return
        error = self._first_error or self._http.unavailable(f"no 'hello' event within {timeout:g} s", CONTEXT)
        self.stop()
        raise error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread: wakes a blocked read by shutting the socket down."""
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("event listener thread %s did not stop within %g s", thread.name, timeout)
        self._subscribed.clear()
        self._first_attempt_done.clear()
        self._first_error = None
        self.connects = 0

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0  # failed attempts since the stream was last subscribed
        while not self._stop.is_set():
            try:
                self._stream_once()
                reason = "stream ended"
            except OrbitError as exc:  # transport failures and error answers, mapped by the seam
                reason = exc.message
                self._fail_first(exc)
            except Exception as exc:  # keep listening whatever happens; this is a bug
                log.exception("event stream %s: unexpected failure", self.url)
                reason = f"{type(exc).__name__}: {exc}"
                self._fail_first(self._http.unavailable(reason, CONTEXT))
            finally:
                self._sock = None
                was_subscribed = self._subscribed.is_set()
                self._subscribed.clear()
            if self._stop.is_set():
                break
            if was_subscribed:
                attempt = 0
            wait = RECONNECT.delay(attempt)
            level = logging.INFO if was_subscribed else logging.DEBUG
            log.log(level, "event stream %s: %s; reconnecting in %.2f s", self.url, reason, wait)
            if self._stop.wait(wait):
                break
            attempt += 1
        log.debug("event listener for %s stopped", self.url)

    def _fail_first(self, exc: OrbitError) -> None:
        if not self.connects and not self._first_attempt_done.is_set():
            self._first_error = exc
            self._first_attempt_done.set()

    def _stream_once(self) -> None:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(CONNECT_TIMEOUT, read=STREAM_READ_TIMEOUT)
        with self._http.stream("GET", EVENTS_PATH, context=CONTEXT, headers=headers, timeout=timeout) as response:
            # httpx's public "network_stream" extension: stop() shuts this socket down
            # to wake a read that would otherwise wait for the next keep-alive
            stream = response.extensions.get("network_stream")
            if stream is not None:
                sock = stream.get_extra_info("socket")
                if isinstance(sock, socket.socket):
                    self._sock = sock
            if self._stop.is_set():
                return
            for sse in EventSource(response).iter_sse():
                if self._stop.is_set():
                    return
                self._handle(sse.event, sse.id, sse.data)

    def _handle(self, kind: str, sse_id: str, data: str) -> None:
        try:
            event = json.loads(data) if data else {}
        except ValueError:
            log.warning("event stream %s: undecodable %r event %s skipped", self.url, kind, sse_id)
            return
        if not isinstance(event, dict):
            event = {"payload": event}
        event.setdefault("kind", kind)
        if kind == "hello" or event.get("kind") == "hello":
            # resume point for a first connection; on a reconnect keep our own id,
            # so a replay interrupted half-way is resumed where it stopped
            if self.last_event_id is None:
                hello_id = sse_id or event.get("last_id") or event.get("id")
                self.last_event_id = str(hello_id) if hello_id else None
            self.connects += 1
            self._subscribed.set()
            self._first_attempt_done.set()
            if self.connects > 1:
                log.info("event stream %s: resubscribed (resuming after %s)", self.url, self.last_event_id)
            return
        event_id = sse_id or event.get("id")
        if event_id:
            self.last_event_id = str(event_id)
            if kind != "gap" and self._repeated(str(event_id)):
                self.repeats += 1
                log.debug("event stream %s: event %s was delivered already; skipped", self.url, event_id)
                return
        self.dispatch(event)

    def _repeated(self, event_id: str) -> bool:
        """Whether ``event_id`` (``<boot>-<seq>``) is not newer than the newest one delivered.

        The bridge's ids grow by one per event within one bridge process (``boot``), so
        an id at or below the newest seen of the same boot has been handed out already:
        a replay overlapping what arrived before a reconnect must not call back twice.
        An id of another boot (a new bridge) starts afresh; an id of another shape is
        never taken for a repeat.
        """
        boot, _, seq_text = event_id.rpartition("-")
        if not boot or not (seq_text.isascii() and seq_text.isdigit()) or len(seq_text) > 20:
            return False
        seq = int(seq_text)
        newest = self._newest
        if newest is not None and newest[0] == boot and seq <= newest[1]:
            return True
        self._newest = (boot, seq)
        return False
