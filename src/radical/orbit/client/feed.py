"""``SessionFeed``: one plugin client's notifications, in order, none lost when its session changes.

A plugin may notify in the very request that opens a session: ``globus`` re-attaching
tasks tells their state at once, before the reply naming the new sid has left the
endpoint. The reply and the event stream travel on different connections, so those
events can reach the client before it knows the sid they belong to. The feed
therefore holds events of sessions it does not know while a ``register_session`` is
in flight and, when the reply names the sid, hands on the ones of that session in
the order they came (the rest are dropped: another client's sessions). Nothing is
lost, whichever connection wins.

It also accepts the last few sessions the client held, so an event a replaced
session sent just before the hand-over still arrives; delivers ``gap`` notifications
(events may be missing: re-read state) when the bridge reports one or the endpoint
says it dropped notifications; and tells its owner when its endpoint connects again
(it may have restarted and lost the session).

Delivery is serial: whichever thread finds events queued and nobody delivering
delivers them all, so callbacks never run concurrently and never out of order, and
no callback runs while the feed's lock is held.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ..models.messages import session_tag
from .events import match_pattern

__all__ = ["GAP", "SessionFeed"]

log = logging.getLogger(__name__)

#: the topic of the notification that says events may be missing
GAP: Final = "gap"
#: events of unknown sessions held while a registration is in flight (the oldest go beyond)
HELD_MAX = 50_000
#: sessions of this client whose late events are still accepted
SESSIONS_KEPT = 8


@dataclass(frozen=True)
class Route:
    """One notification callback: what it wants and how it is called."""

    rid: str
    callback: Callable[..., object]
    topic: str | None
    original: bool


class SessionFeed:
    """Routes the notifications of one ``(endpoint, plugin)`` client to its callbacks.

    :param observe: ``observe(topic, payload)`` for every notification of the client's
        sessions, before its callbacks (the client keeps what it learns, e.g. task states)
    :param endpoint_back: called (on the listener thread) when the endpoint connects again
    :param gap_hook: returns the client's ``on_gap`` hook (or None) at the time of a gap
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        endpoint: str,
        plugin: str,
        *,
        observe: Callable[[str, dict[str, Any]], None] | None = None,
        endpoint_back: Callable[[], None] | None = None,
        gap_hook: Callable[[], Callable[[dict[str, Any]], object] | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.plugin = plugin
        self._observe = observe
        self._endpoint_back = endpoint_back
        self._gap_hook = gap_hook
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        self._tags: OrderedDict[str, None] = OrderedDict()
        self._opening = 0
        self._held: deque[dict[str, Any]] = deque()
        self._held_dropped = 0
        self._queue: deque[tuple[str, dict[str, Any], bool]] = deque()
        self._delivering = False
        #: notifications handed to callbacks, and events of unknown sessions dropped
        self.delivered = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"SessionFeed({self.endpoint}/{self.plugin}, callbacks={len(self._routes)}, sessions={len(self._tags)})"

    def __len__(self) -> int:
        return len(self._routes)

    # -- callbacks ---------------------------------------------------------------------
    def add(self, callback: Callable[..., object], topic: str | None, *, original: bool) -> str:
        rid = f"pn-{next(self._ids)}"
        with self._lock:
            self._routes.append(Route(rid, callback, topic, original))
        return rid

    def remove(self, rid: str) -> bool:
        with self._lock:
            for index, route in enumerate(self._routes):
                if route.rid == rid:
                    del self._routes[index]
                    return True
        return False

    def remove_callback(self, callback: Callable[..., object], topic: str | None) -> bool:
        """Forget the oldest registration of ``callback`` with ``topic`` (the original Orbit's form)."""
        with self._lock:
            for index, route in enumerate(self._routes):
                if route.callback == callback and route.topic == topic:
                    del self._routes[index]
                    return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()

    # -- sessions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """While a ``register_session`` is in flight: hold events of sessions not known yet."""
        with self._lock:
            self._opening += 1
        try:
            yield
        finally:
            with self._lock:
                self._opening -= 1
                if not self._opening:
                    self.dropped += len(self._held)
                    self._held.clear()

    def opened(self, sid: str) -> None:
        """The reply named ``sid``: its events held so far go out first, in order, then live ones."""
        tag = session_tag(sid)
        with self._lock:
            self._tags[tag] = None
            self._tags.move_to_end(tag)
            while len(self._tags) > SESSIONS_KEPT:
                self._tags.popitem(last=False)
            mine = [event for event in self._held if event.get("session") == tag]
            if mine:
                self._held = deque(event for event in self._held if event.get("session") != tag)
            if self._held_dropped:
                info = {"reason": f"{self._held_dropped} notifications came while register_session was in flight, "
                        f"more than the client holds ({HELD_MAX}); the oldest were dropped"}
                self._queue.append((GAP, info, False))
                self._held_dropped = 0
            for event in mine:
                self._queue.append(self._item(event))
        self._drain()

    def forget(self) -> None:
        """The client closed: no session's events are its any more."""
        with self._lock:
            self._tags.clear()
            self._held.clear()

    # -- events (the listener thread) ----------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        """Take one event of the bridge's stream (every kind, every endpoint)."""
        kind = event.get("kind")
        if kind == GAP:
            payload = event.get("payload")
            self._push((GAP, dict(payload) if isinstance(payload, dict) else {}, False))
            return
        if event.get("endpoint") != self.endpoint:
            return
        if kind == "topology":
            if event.get("topic") == "endpoint_connected" and self._endpoint_back is not None:
                self._endpoint_back()
            return
        if kind != "notification":
            return
        dropped = event.get("dropped")
        if isinstance(dropped, int) and dropped > 0:
            reason = f"endpoint '{self.endpoint}' dropped {dropped} notifications while it could not reach the bridge"
            self._push((GAP, {"reason": reason, "dropped": dropped}, False))
        if event.get("plugin") != self.plugin:
            return
        tag = event.get("session")
        with self._lock:
            if tag in self._tags:
                self._queue.append(self._item(event))
            elif self._opening and isinstance(tag, str):
                self._held.append(event)
                if len(self._held) > HELD_MAX:
                    self._held.popleft()
                    self._held_dropped += 1
                return
            else:
                self.dropped += 1
                return
        self._drain()

    @staticmethod
    def _item(event: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
        payload = event.get("payload")
        return str(event.get("topic")), payload if isinstance(payload, dict) else {}, True

    # -- delivery --------------------------------------------------------------------------
    def _push(self, item: tuple[str, dict[str, Any], bool]) -> None:
        with self._lock:
            self._queue.append(item)
        self._drain()

    def _drain(self) -> None:
        """Deliver what is queued unless another thread is at it (it will deliver ours too)."""
        with self._lock:
            if self._delivering:
                return
            self._delivering = True
        while True:
            with self._lock:
                if not self._queue:
                    self._delivering = False
                    return
                topic, payload, notification = self._queue.popleft()
                routes = [r for r in self._routes if r.topic is None or match_pattern(r.topic, topic)]
            try:
                self._deliver(topic, payload, notification, routes)
            except BaseException:
                with self._lock:
                    self._delivering = False
                raise

    def _deliver(self, topic: str, payload: dict[str, Any], notification: bool, routes: list[Route]) -> None:
        if notification and self._observe is not None:
            try:
                self._observe(topic, payload)
            except Exception:  # the client's own bookkeeping must not cost the callbacks their events
                log.exception("%s/%s: observing a %s notification failed", self.endpoint, self.plugin, topic)
        if not notification:
            log.info("%s/%s: notifications may be missing (%s); callbacks get a '%s' notification",
                     self.endpoint, self.plugin, payload.get("reason", "gap"), GAP)
            hook = self._gap_hook() if self._gap_hook is not None else None
            if hook is not None:
                self._call(hook, (dict(payload),))
        for route in routes:
            data = dict(payload) if not notification else payload
            args = (self.endpoint, self.plugin, topic, data) if route.original else (topic, data)
            self._call(route.callback, args)
        if notification:
            self.delivered += 1

    def _call(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:  # one broken callback must not starve the others
            log.exception("%s/%s: notification callback %r failed", self.endpoint, self.plugin, fn)
