"""Event fan-out for ``GET /events``: a bounded ring buffer plus live subscribers.

Every published event gets the id ``<boot>-<seq>``: ``boot`` is random per bridge
process, ``seq`` counts from 1. An event is serialised to its SSE text once and
shared by the buffer and all subscribers. A subscriber that resumes with
``Last-Event-ID`` gets the buffered events after that id; if the id is older than
the buffer or from another boot it first gets a ``gap`` event. Publishing is
synchronous and the hub lives on one event loop, so a new subscriber's replay and
its live feed can neither overlap nor leave a hole.

A subscriber that falls more than ``max_queue`` events behind is disconnected
instead of growing without bound; it reconnects and resumes from the buffer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

KIND_NOTIFICATION = "notification"
KIND_TOPOLOGY = "topology"
KIND_GAP = "gap"
KIND_HELLO = "hello"

FILTER_KEYS = ("endpoint", "plugin", "topic", "session")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def sse_chunk(event_id: str, kind: str, data: dict[str, Any]) -> str:
    """One SSE message; ``json.dumps`` escapes newlines, so ``data`` is one line."""
    return f"id: {event_id}\nevent: {kind}\ndata: {_dumps(data)}\n\n"


@dataclass(slots=True)
class StoredEvent:
    seq: int
    endpoint: str | None
    plugin: str | None
    topic: str | None
    session: str | None
    chunk: str


@dataclass(slots=True, eq=False)
class Subscriber:
    """One ``/events`` stream: its filters, pending chunks and a wake-up event."""

    filters: dict[str, str]
    max_queue: int
    initial: list[str] = field(default_factory=list)
    queue: deque[str] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    overflowed: bool = False

    def matches(self, ev: StoredEvent) -> bool:
        f = self.filters
        if not f:
            return True
        return all(getattr(ev, key) == value for key, value in f.items())

    def push(self, chunk: str) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.max_queue:
            self.overflowed = True
            self.close()
            return
        self.queue.append(chunk)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    async def chunks(self, keepalive: float) -> AsyncIterator[str]:
        """The initial chunks, then live ones, with a keep-alive comment when idle."""
        for chunk in self.initial:
            yield chunk
        self.initial = []
        while True:
            while self.queue:
                yield self.queue.popleft()
            if self.closed:
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"


class EventHub:
    """Ring buffer + subscribers.

    :param size: events kept for replay
    :param max_queue: events a slow subscriber may fall behind before it is cut off
    """

    def __init__(self, size: int = 10_000, *, max_queue: int = 10_000) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        self.buffer: deque[StoredEvent] = deque(maxlen=size)
        self.subscribers: set[Subscriber] = set()
        self.max_queue = max_queue
        self.closed = False

    @property
    def last_id(self) -> str:
        return f"{self.boot}-{self.seq}"

    def publish(
        self,
        kind: str,
        *,
        endpoint: str | None,
        plugin: str | None,
        topic: str | None,
        session: str | None,
        payload: dict[str, Any],
        ts: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store one event and hand it to every matching subscriber; returns the event."""
        self.seq += 1
        event_id = f"{self.boot}-{self.seq}"
        data: dict[str, Any] = {
            "id": event_id,
            "kind": kind,
            "endpoint": endpoint,
            "plugin": plugin,
            "session": session,
            "topic": topic,
            "payload": payload,
            "ts": time.time() if ts is None else ts,
        }
        if extra:
            data.update(extra)
        ev = StoredEvent(self.seq, endpoint, plugin, topic, session, sse_chunk(event_id, kind, data))
        self.buffer.append(ev)
        for sub in self.subscribers:
            if sub.matches(ev):
                sub.push(ev.chunk)
        return data

    def _special(self, kind: str, event_id: str, payload: dict[str, Any]) -> str:
        data = {
            "id": event_id,
            "kind": kind,
            "endpoint": None,
            "plugin": None,
            "session": None,
            "topic": None,
            "payload": payload,
            "ts": time.time(),
        }
        return sse_chunk(event_id, kind, data)

    def subscribe(self, filters: dict[str, str] | None = None, last_event_id: str | None = None) -> Subscriber:
        """Register a stream: hello, then (on resume) gap and replay, then live events.

        :param filters: exact-match filters on ``endpoint``, ``plugin``, ``topic``, ``session``
        :param last_event_id: the last id the client saw (``Last-Event-ID``)
        """
        sub = Subscriber({k: v for k, v in (filters or {}).items() if v is not None}, self.max_queue)
        hello = {"boot": self.boot, "last_id": self.last_id, "filters": sub.filters}
        sub.initial.append(self._special(KIND_HELLO, self.last_id, hello))
        if last_event_id:
            sub.initial.extend(c for c in self._resume(last_event_id, sub))
        if self.closed:
            sub.close()
        else:
            self.subscribers.add(sub)
        return sub

    def _resume(self, last_event_id: str, sub: Subscriber) -> Iterable[str]:
        boot, _, seq_text = last_event_id.strip().rpartition("-")
        # ASCII digits only ("²".isdigit() is true, int("²") fails), and no longer than a
        # sequence number can be (int() refuses 4,301 digits and more)
        is_seq = seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 20
        oldest = self.buffer[0].seq if self.buffer else self.seq + 1
        gap: dict[str, Any] | None = None
        start = oldest  # first seq to replay
        if boot != self.boot or not is_seq:
            reason = "bridge restarted" if boot and is_seq else "unknown event id"
            gap = {"reason": reason, "missed_from": last_event_id, "last_event_id": last_event_id}
        else:
            seen = int(seq_text)
            if seen > self.seq:
                gap = {"reason": "unknown event id", "missed_from": last_event_id, "last_event_id": last_event_id}
            elif seen + 1 < oldest:
                gap = {
                    "reason": "events no longer buffered",
                    "missed_from": f"{self.boot}-{seen + 1}",
                    "last_event_id": last_event_id,
                }
            else:
                start = seen + 1
        if gap is not None:
            gap["resumed_from"] = f"{self.boot}-{oldest}"
            log.info("event stream resumes with a gap: %s (client had %s)", gap["reason"], last_event_id)
            yield self._special(KIND_GAP, f"{self.boot}-{oldest - 1}", gap)
        for ev in itertools.islice(self.buffer, max(0, start - oldest), None):
            if sub.matches(ev):
                yield ev.chunk

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        self.subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (bridge shutdown)."""
        self.closed = True
        for sub in list(self.subscribers):
            sub.close()
        self.subscribers.clear()
