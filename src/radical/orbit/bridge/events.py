"""Event fan-out for ``GET /events``: one bounded buffer, paced subscribers, scoped by identity.

Every published event gets the id ``<boot>-<seq>``: ``boot`` is random per bridge
process, ``seq`` counts from 1. An event is serialised to its SSE text once and
shared by the buffer and every subscriber.

Scoping: an event may have an ``owner``, the identity whose session raised it; a
subscriber sees it only if its identity :meth:`~.identity.Identity.sees` that owner
(its own, nobody's, or everything for an admin), live and on replay alike.

Every part is bounded, because one client must not be able to exhaust the bridge:

* the buffer keeps at most ``size`` events and ``max_bytes`` bytes, dropping the
  oldest; a stream resuming (``Last-Event-ID``) from a dropped id first gets a ``gap``;
* a resuming stream reads the buffer through a cursor (no copy per subscriber);
* a live subscriber has a queue of at most ``max_queue`` events and
  ``max_queue_bytes`` bytes; one that falls further behind is cut off (its queue is
  dropped, its stream ends) and resumes with ``Last-Event-ID`` like after any cut;
* an identity has at most ``max_subscribers`` streams open, counted until each has
  really ended, so stuck connections cannot pile up (429 beyond).

Publishing never awaits and starts no task: it appends the event to the queues of
the subscribers that may see it. The writes happen in each stream's own task, and a
write needs a turn: the hub hands out at most ``writers_per_pass`` turns per
event-loop pass, each writing what is queued (up to :data:`BATCH_BYTES`). Thousands
of busy or stuck streams therefore cannot make one pass of the loop long, and relayed
calls on the same loop keep their latency; a stuck socket only fills its own queue.
The hub lives on one event loop, so a new subscriber's replay and its live feed can
neither overlap nor leave a hole.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RateLimitedError
from .identity import Identity

log = logging.getLogger(__name__)

KIND_NOTIFICATION = "notification"
KIND_TOPOLOGY = "topology"
KIND_GAP = "gap"
KIND_HELLO = "hello"

FILTER_KEYS = ("endpoint", "plugin", "topic", "session")

#: the most a stream writes in one turn (what is queued beyond waits for its next turn)
BATCH_BYTES = 64 * 1024
#: buffered events a resuming stream looks at in one turn (most may be filtered out)
SCAN_PER_TURN = 4096
#: seconds a client refused for too many streams is asked to wait
RETRY_AFTER = 1
KEEPALIVE = ": keep-alive\n\n"


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
    #: the identity whose session raised it; None: everyone's (topology, plugin-wide)
    owner: str | None
    chunk: str
    #: the memory ``chunk`` takes, what the byte bounds count
    size: int


@dataclass(slots=True, eq=False)
class Subscriber:
    """One ``/events`` stream: who reads it, its filters, and where it is.

    ``cursor`` is the next buffered ``seq`` to replay while the stream catches up
    (None once it is live); ``queue`` holds the live events not yet written.
    """

    identity: Identity
    filters: dict[str, str]
    initial: list[str] = field(default_factory=list)
    cursor: int | None = None
    queue: deque[StoredEvent] = field(default_factory=deque)
    queued_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: waiting for a turn, or granted one it has not used yet
    scheduled: bool = False
    #: receives live events (False once cut off or unsubscribed)
    attached: bool = False
    #: counts against its identity's stream limit
    counted: bool = False
    closed: bool = False
    cut_off: bool = False

    def matches(self, ev: StoredEvent) -> bool:
        """The stream's own filters (who may see the event is the hub's business)."""
        f = self.filters
        if not f:
            return True
        return all(getattr(ev, key) == value for key, value in f.items())


class EventHub:
    """The buffer, the subscribers by identity, and the turns to write.

    :param size: events kept for replay
    :param max_bytes: bytes of events kept for replay
    :param max_queue: events a live subscriber may fall behind before it is cut off
    :param max_queue_bytes: bytes a live subscriber may fall behind before it is cut off
    :param max_subscribers: streams one identity may have open (429 beyond)
    :param writers_per_pass: turns to write handed out per event-loop pass
    """

    def __init__(
        self,
        size: int = 10_000,
        *,
        max_bytes: int = 64 * 2**20,
        max_queue: int = 1_000,
        max_queue_bytes: int = 8 * 2**20,
        max_subscribers: int = 64,
        writers_per_pass: int = 16,
    ) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        self.buffer: deque[StoredEvent] = deque()
        self.buffer_bytes = 0
        self.max_events = size
        self.max_bytes = max_bytes
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_subscribers = max_subscribers
        self.writers_per_pass = writers_per_pass
        #: subscribers offered an event since the reader last yielded (ws.py paces on it)
        self.visits = 0
        self.cut_offs = 0
        self.closed = False
        self._everyone: set[Subscriber] = set()
        self._admins: set[Subscriber] = set()
        self._by_owner: dict[str, set[Subscriber]] = {}
        self._open: set[Subscriber] = set()
        self._streams: Counter[str] = Counter()
        self._ready: deque[Subscriber] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump: asyncio.Handle | None = None

    @property
    def last_id(self) -> str:
        return f"{self.boot}-{self.seq}"

    @property
    def subscribers(self) -> set[Subscriber]:
        """The subscribers that receive live events."""
        return self._everyone

    def streams(self, identity: Identity) -> int:
        """Streams ``identity`` has open (what its limit counts)."""
        return self._streams[identity.name]

    # -- publishing ----------------------------------------------------------------
    def publish(
        self,
        kind: str,
        *,
        endpoint: str | None,
        plugin: str | None,
        topic: str | None,
        session: str | None,
        payload: dict[str, Any],
        owner: str | None = None,
        ts: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Store one event and queue it for every live subscriber that may see it.

        :param owner: the identity whose session raised it (None: everyone's)
        :returns: how many subscribers were offered the event
        """
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
        chunk = sse_chunk(event_id, kind, data)
        ev = StoredEvent(self.seq, endpoint, plugin, topic, session, owner, chunk, sys.getsizeof(chunk))
        self._store(ev)
        targets: Iterable[Subscriber]
        if owner is None:
            targets = self._everyone
        else:  # owner's own streams and the admins': O(streams that may see it)
            targets = itertools.chain(self._admins, self._by_owner.get(owner, ()))
        visits = 0
        behind: list[Subscriber] = []
        for sub in targets:
            visits += 1
            if sub.cursor is None and sub.matches(ev) and not self._push(sub, ev):
                behind.append(sub)
        for sub in behind:
            self._cut(sub)
        self.visits += visits
        return visits

    def _store(self, ev: StoredEvent) -> None:
        buffer = self.buffer
        buffer.append(ev)
        self.buffer_bytes += ev.size
        while buffer and (self.buffer_bytes > self.max_bytes or len(buffer) > self.max_events):
            self.buffer_bytes -= buffer.popleft().size

    def _push(self, sub: Subscriber, ev: StoredEvent) -> bool:
        """Queue ``ev`` for ``sub``; False if that would put it too far behind."""
        queue = sub.queue
        if queue and (len(queue) >= self.max_queue or sub.queued_bytes + ev.size > self.max_queue_bytes):
            return False
        queue.append(ev)
        sub.queued_bytes += ev.size
        if not sub.scheduled:
            self._schedule(sub)
        return True

    def _cut(self, sub: Subscriber) -> None:
        """A subscriber that fell too far behind: drop its queue and end its stream."""
        self.cut_offs += 1
        log.debug(
            "event stream of %s cut off: %d events (%d bytes) behind", sub.identity.name, len(sub.queue), sub.queued_bytes
        )
        sub.cut_off = True
        sub.closed = True
        sub.queue.clear()
        sub.queued_bytes = 0
        self._detach(sub)
        self._schedule(sub)  # its stream ends on its next turn

    # -- turns -----------------------------------------------------------------------
    def _schedule(self, sub: Subscriber) -> None:
        if sub.scheduled:
            return
        sub.scheduled = True
        self._ready.append(sub)
        if self._pump is None and self._loop is not None:
            self._pump = self._loop.call_soon(self._grant)

    def _grant(self) -> None:
        """Hand out this pass's turns; what is left waits for the next pass."""
        self._pump = None
        ready = self._ready
        for _ in range(min(self.writers_per_pass, len(ready))):
            ready.popleft().wake.set()
        if ready and self._loop is not None:
            self._pump = self._loop.call_soon(self._grant)

    # -- subscribing -------------------------------------------------------------------
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

    def subscribe(
        self, identity: Identity, filters: dict[str, str] | None = None, last_event_id: str | None = None
    ) -> Subscriber:
        """Register a stream: hello, then (on resume) gap and replay, then live events.

        :param identity: who reads the stream (what it may see, whose limit it counts against)
        :param filters: exact-match filters on ``endpoint``, ``plugin``, ``topic``, ``session``
        :param last_event_id: the last id the client saw (``Last-Event-ID``)
        :raises RateLimitedError: ``identity`` has ``max_subscribers`` streams open (429)
        """
        open_now = self._streams[identity.name]
        if open_now >= self.max_subscribers:
            raise RateLimitedError(
                f"'{identity.name}' already has {open_now} event streams open, the most the bridge allows "
                "(max_subscribers_per_identity); close one (one stream can carry every filter) "
                "or raise the bridge's setting",
                setting="max_subscribers_per_identity",
                limit=self.max_subscribers,
                retry_after=RETRY_AFTER,
            )
        sub = Subscriber(identity, {k: v for k, v in (filters or {}).items() if v is not None})
        hello = {"boot": self.boot, "last_id": self.last_id, "filters": sub.filters}
        sub.initial.append(self._special(KIND_HELLO, self.last_id, hello))
        if last_event_id:
            gap, start = self._resume(last_event_id)
            if gap is not None:
                sub.initial.append(gap)
            if start <= self.seq:
                sub.cursor = start
        if self.closed:
            sub.closed = True
            return sub
        sub.counted = True
        self._streams[identity.name] += 1
        self._open.add(sub)
        sub.attached = True
        self._everyone.add(sub)
        if identity.admin:
            self._admins.add(sub)
        else:
            self._by_owner.setdefault(identity.name, set()).add(sub)
        return sub

    def _resume(self, last_event_id: str) -> tuple[str | None, int]:
        """The gap event to send first (or None) and the first ``seq`` to replay."""
        boot, _, seq_text = last_event_id.strip().rpartition("-")
        # ASCII digits only ("²".isdigit() is true, int("²") fails), and no longer than a
        # sequence number can be (int() refuses 4,301 digits and more)
        is_seq = seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 20
        oldest = self._oldest()
        gap: dict[str, Any] | None = None
        start = oldest
        if boot != self.boot or not is_seq:
            reason = "bridge restarted" if boot and is_seq else "unknown event id"
            gap = {"reason": reason, "missed_from": last_event_id}
        else:
            seen = int(seq_text)
            if seen > self.seq:
                gap = {"reason": "unknown event id", "missed_from": last_event_id}
            elif seen + 1 < oldest:
                gap = {"reason": "events no longer buffered", "missed_from": f"{self.boot}-{seen + 1}"}
            else:
                start = seen + 1
        if gap is None:
            return None, start
        log.info("event stream resumes with a gap: %s (client had %s)", gap["reason"], last_event_id)
        return self._gap(gap, last_event_id, oldest), start

    def _gap(self, gap: dict[str, Any], last_event_id: str, oldest: int) -> str:
        gap["last_event_id"] = last_event_id
        gap["resumed_from"] = f"{self.boot}-{oldest}"
        return self._special(KIND_GAP, f"{self.boot}-{oldest - 1}", gap)

    def _oldest(self) -> int:
        return self.buffer[0].seq if self.buffer else self.seq + 1

    def _detach(self, sub: Subscriber) -> None:
        """No more live events for ``sub``."""
        if not sub.attached:
            return
        sub.attached = False
        self._everyone.discard(sub)
        if sub.identity.admin:
            self._admins.discard(sub)
        else:
            mine = self._by_owner.get(sub.identity.name)
            if mine is not None:
                mine.discard(sub)
                if not mine:
                    del self._by_owner[sub.identity.name]

    def unsubscribe(self, sub: Subscriber) -> None:
        """The stream has ended: forget it (idempotent)."""
        sub.closed = True
        self._detach(sub)
        self._open.discard(sub)
        if sub.counted:
            sub.counted = False
            name = sub.identity.name
            self._streams[name] -= 1
            if self._streams[name] <= 0:
                del self._streams[name]

    def close(self) -> None:
        """End every stream (bridge shutdown)."""
        self.closed = True
        for sub in list(self._open):
            sub.closed = True
            self._detach(sub)
            sub.wake.set()
        self._ready.clear()

    # -- writing -----------------------------------------------------------------------
    def next_batch(self, sub: Subscriber) -> str:
        """What ``sub`` writes on its turn: replayed or queued events, at most about
        :data:`BATCH_BYTES` (empty if there is nothing)."""
        if sub.cursor is not None:
            return self._replay(sub)
        parts: list[str] = []
        size = 0
        queue = sub.queue
        while queue and size < BATCH_BYTES:
            ev = queue.popleft()
            parts.append(ev.chunk)
            size += ev.size
        sub.queued_bytes -= size
        return "".join(parts)

    def _replay(self, sub: Subscriber) -> str:
        assert sub.cursor is not None
        parts: list[str] = []
        oldest = self._oldest()
        if sub.cursor < oldest:  # dropped from the buffer while this stream caught up
            gap = {"reason": "events no longer buffered", "missed_from": f"{self.boot}-{sub.cursor}"}
            parts.append(self._gap(gap, f"{self.boot}-{sub.cursor - 1}", oldest))
            sub.cursor = oldest
        size = 0
        sees = sub.identity.sees
        for ev in itertools.islice(self.buffer, sub.cursor - oldest, sub.cursor - oldest + SCAN_PER_TURN):
            sub.cursor = ev.seq + 1
            if sees(ev.owner) and sub.matches(ev):
                parts.append(ev.chunk)
                size += ev.size
                if size >= BATCH_BYTES:
                    break
        if sub.cursor > self.seq:
            sub.cursor = None  # caught up: live events from now on
        return "".join(parts)

    async def stream(self, sub: Subscriber, keepalive: float) -> AsyncIterator[str]:
        """The stream's text: initial chunks, then a batch per turn, with a keep-alive
        comment when idle. Ends when the hub closes or cuts the subscriber off;
        unsubscribes when it ends, however it ends."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the first stream (or a new loop, in tests)
            self._loop = loop
            self._pump = loop.call_soon(self._grant) if self._ready else None
        try:
            for chunk in sub.initial:
                yield chunk
            sub.initial = []
            turn = False
            while not sub.closed:
                if turn:
                    turn = False
                    batch = self.next_batch(sub)
                    if batch:
                        yield batch
                    continue
                if sub.queue or sub.cursor is not None:
                    self._schedule(sub)
                try:
                    async with asyncio.timeout(keepalive):
                        await sub.wake.wait()
                except TimeoutError:
                    yield KEEPALIVE
                    continue
                sub.wake.clear()
                sub.scheduled = False
                turn = True
        finally:
            self.unsubscribe(sub)
