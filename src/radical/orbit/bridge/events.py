"""Event fan-out for ``GET /events``: one bounded buffer, paced streams, scoped by identity.

Every published event gets the id ``<boot>-<seq>``: ``boot`` is random per bridge
process, ``seq`` counts from 1 (replicas use the Redis Stream's: :mod:`.stream_hub`).
An event is serialised to its SSE text once and kept in one shared buffer; no stream holds a copy.

Scoping: an event may have an ``owner``, the identity whose session raised it; a
stream sees it only if its identity :meth:`~.identity.Identity.sees` that owner (its
own, nobody's, or everything for an admin), live and on replay alike.

A stream is *idle* (it has written everything it may see) or *behind*: it has a
cursor, the next ``seq`` it must look at, and reads the buffer from there. Publishing
never awaits and starts no task: it only looks at the idle streams that may see the
event, and a matching one gets its cursor and asks for a turn. A stream that is behind
costs nothing per event, so publishing is O(idle streams that may see it) however many
streams lag or are stuck. The writes happen in each stream's own task and need a turn:
the hub hands out at most ``writers_per_pass`` turns per event-loop pass, each writing
at most :data:`BATCH_BYTES`. Thousands of busy or stuck streams therefore cannot make
one pass of the loop long, and relayed calls on the same loop keep their latency.

Every part is bounded, because one client must not be able to exhaust the bridge:

* the buffer keeps at most ``size`` events and ``max_bytes`` bytes, dropping the
  oldest; a stream resuming (``Last-Event-ID``) from a dropped id first gets a ``gap``;
* a live stream (one that has caught up since it opened) may fall at most
  ``max_queue`` events or ``max_queue_bytes`` bytes behind the newest event: beyond
  that it is cut off on its next turn (its stream ends) and resumes with
  ``Last-Event-ID`` like after any cut (a stream stuck in a write is cut off when the
  write returns, and holds nothing of the hub's meanwhile);
* an identity has at most ``max_subscribers`` streams open, counted until each has
  really ended, so stuck connections cannot pile up (429 beyond).

The hub lives on one event loop, so a new stream's replay and its live feed can
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

#: the most a stream writes in one turn (the rest waits for its next turn)
BATCH_BYTES = 32 * 1024
#: buffered events a stream looks at in one turn (most may be filtered out)
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
    #: bytes published before this event (how far behind a stream is, in bytes)
    offset: int = 0
    #: the Redis Stream id as a pair (:class:`~.stream_hub.StreamEventHub` only)
    key: tuple[int, int] = (0, 0)


@dataclass(slots=True, eq=False)
class Subscriber:
    """One ``/events`` stream: who reads it, its filters, and where it is.

    ``cursor`` is the next ``seq`` the stream must look at while it is behind, None
    while it is idle (everything it may see is written).
    """

    identity: Identity
    filters: dict[str, str]
    initial: list[str] = field(default_factory=list)
    cursor: int | None = None
    #: caught up at least once (a resuming stream is not cut off while it replays)
    live: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: waiting for a turn, or granted one it has not used yet
    scheduled: bool = False
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
    """The buffer, the streams by identity, and the turns to write.

    :param size: events kept for replay
    :param max_bytes: bytes of events kept for replay
    :param max_queue: events a live stream may fall behind before it is cut off
    :param max_queue_bytes: bytes a live stream may fall behind before it is cut off
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
        writers_per_pass: int = 2,
    ) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        #: bytes of every event published so far
        self.published_bytes = 0
        self.buffer: deque[StoredEvent] = deque()
        self.buffer_bytes = 0
        self.max_events = size
        self.max_bytes = max_bytes
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_subscribers = max_subscribers
        self.writers_per_pass = writers_per_pass
        #: idle streams looked at since the reader last yielded (ws.py paces on it)
        self.visits = 0
        self.cut_offs = 0
        self.closed = False
        # idle streams, by who may see what: O(streams that may see an event) to publish it
        self._idle: set[Subscriber] = set()
        self._idle_admins: set[Subscriber] = set()
        self._idle_by_owner: dict[str, set[Subscriber]] = {}
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
        """The streams still served (not cut off, not ended)."""
        return {sub for sub in self._open if not sub.closed}

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
        """Store one event and wake the idle streams that may see it.

        :param owner: the identity whose session raised it (None: everyone's)
        :returns: how many idle streams were looked at
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
        size = sys.getsizeof(chunk)
        ev = StoredEvent(self.seq, endpoint, plugin, topic, session, owner, chunk, size, self.published_bytes)
        return self._add(ev)

    def _add(self, ev: StoredEvent) -> int:
        """Buffer ``ev`` and wake the idle streams that may see it; how many were looked at."""
        self.published_bytes += ev.size
        self._store(ev)
        owner = ev.owner
        targets: Iterable[Subscriber]
        if owner is None:
            targets = self._idle
        else:  # owner's own streams and the admins'
            targets = itertools.chain(self._idle_admins, self._idle_by_owner.get(owner, ()))
        visits = 0
        woken: list[Subscriber] = []
        for sub in targets:
            visits += 1
            if sub.matches(ev):
                woken.append(sub)
        for sub in woken:  # (not while iterating over the idle sets)
            self._behind(sub, ev.seq)
        self.visits += visits
        return visits

    def _store(self, ev: StoredEvent) -> None:
        buffer = self.buffer
        buffer.append(ev)
        self.buffer_bytes += ev.size
        while buffer and (self.buffer_bytes > self.max_bytes or len(buffer) > self.max_events):
            gone = buffer.popleft()
            self.buffer_bytes -= gone.size
            self._dropped(gone)

    def _dropped(self, ev: StoredEvent) -> None:
        """``ev`` left the buffer (a hook for :class:`~.stream_hub.StreamEventHub`)."""

    def _oldest(self) -> int:
        return self.buffer[0].seq if self.buffer else self.seq + 1

    # -- idle and behind -----------------------------------------------------------
    def _idle_set(self, sub: Subscriber) -> set[Subscriber]:
        if sub.identity.admin:
            return self._idle_admins
        return self._idle_by_owner.setdefault(sub.identity.name, set())

    def _to_idle(self, sub: Subscriber) -> None:
        sub.cursor = None
        self._idle.add(sub)
        self._idle_set(sub).add(sub)

    def _behind(self, sub: Subscriber, cursor: int) -> None:
        """``sub`` has events to write from ``cursor`` on: out of the idle sets, ask for a turn."""
        self._drop_idle(sub)
        sub.cursor = cursor
        self._schedule(sub)

    def _drop_idle(self, sub: Subscriber) -> None:
        if sub not in self._idle:
            return
        self._idle.discard(sub)
        mine = self._idle_set(sub)
        mine.discard(sub)
        if not mine and not sub.identity.admin:
            del self._idle_by_owner[sub.identity.name]

    def _too_far_behind(self, sub: Subscriber) -> bool:
        """Whether a live stream lags more than ``max_queue`` events or ``max_queue_bytes``
        bytes behind the newest event (one event alone is never too much)."""
        assert sub.cursor is not None
        oldest = self._oldest()
        if sub.cursor < oldest:
            return True
        events = self.seq - sub.cursor + 1
        lag = self.published_bytes - self.buffer[sub.cursor - oldest].offset
        return events > self.max_queue or (events > 1 and lag > self.max_queue_bytes)

    def _cut(self, sub: Subscriber) -> None:
        """A live stream that fell too far behind: end it (the client resumes)."""
        self.cut_offs += 1
        assert sub.cursor is not None
        log.debug("event stream of %s cut off: %d events behind", sub.identity.name, self.seq - sub.cursor + 1)
        sub.cut_off = True
        sub.closed = True
        self._drop_idle(sub)

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
        start = self.seq + 1
        if last_event_id:
            gap, start = self._resume(last_event_id)
            if gap is not None:
                sub.initial.append(gap)
        if self.closed:
            sub.closed = True
            return sub
        sub.counted = True
        self._streams[identity.name] += 1
        self._open.add(sub)
        if start <= self.seq:
            self._behind(sub, start)  # replay first
        else:
            sub.live = True
            self._to_idle(sub)
        return sub

    def _resume(self, last_event_id: str) -> tuple[str | None, int]:
        """The gap event to send first (or None) and the first ``seq`` to replay."""
        boot, _, seq_text = last_event_id.strip().rpartition("-")
        # the id is the client's text: echoed and logged cut short (ours are far shorter)
        # and logged quoted, so it can neither fill the log nor forge lines in it
        shown = last_event_id if len(last_event_id) <= 64 else last_event_id[:64] + "..."
        # ASCII digits only ("²".isdigit() is true, int("²") fails), and no longer than a
        # sequence number can be (int() refuses 4,301 digits and more)
        is_seq = seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 20
        oldest = self._oldest()
        gap: dict[str, Any] | None = None
        start = oldest
        if boot != self.boot or not is_seq:
            reason = "bridge restarted" if boot and is_seq else "unknown event id"
            gap = {"reason": reason, "missed_from": shown}
        else:
            seen = int(seq_text)
            if seen > self.seq:
                gap = {"reason": "unknown event id", "missed_from": shown}
            elif seen + 1 < oldest:
                gap = {"reason": "events no longer buffered", "missed_from": f"{self.boot}-{seen + 1}"}
            else:
                start = seen + 1
        if gap is None:
            return None, start
        log.info("event stream resumes with a gap: %s (client had %r)", gap["reason"], shown)
        return self._gap(gap, shown, oldest), start

    def _gap_in_replay(self, cursor: int, oldest: int) -> str:
        """The gap for a stream whose next event left the buffer while it replayed."""
        gap = {"reason": "events no longer buffered", "missed_from": f"{self.boot}-{cursor}"}
        return self._gap(gap, f"{self.boot}-{cursor - 1}", oldest)

    def _gap(self, gap: dict[str, Any], last_event_id: str, oldest: int) -> str:
        gap["last_event_id"] = last_event_id
        gap["resumed_from"] = f"{self.boot}-{oldest}"
        return self._special(KIND_GAP, f"{self.boot}-{oldest - 1}", gap)

    def unsubscribe(self, sub: Subscriber) -> None:
        """The stream has ended: forget it (idempotent)."""
        sub.closed = True
        self._drop_idle(sub)
        self._open.discard(sub)
        if sub.counted:
            sub.counted = False
            name = sub.identity.name
            self._streams[name] -= 1
            if self._streams[name] <= 0:
                del self._streams[name]

    def keep_identities(self, names: frozenset[str]) -> int:
        """End the streams of every identity not in ``names`` (its token was revoked:
        an open stream must not go on showing it events); how many ended."""
        gone = [sub for sub in self._open if not sub.closed and sub.identity.name not in names]
        for sub in gone:
            sub.closed = True
            self._drop_idle(sub)
            sub.wake.set()
        return len(gone)

    def close(self) -> None:
        """End every stream (bridge shutdown)."""
        self.closed = True
        for sub in list(self._open):
            sub.closed = True
            self._drop_idle(sub)
            sub.wake.set()
        self._ready.clear()

    # -- writing -----------------------------------------------------------------------
    def next_batch(self, sub: Subscriber) -> str:
        """What ``sub`` writes on its turn (empty if nothing): the events it may see from
        its cursor on, at most about :data:`BATCH_BYTES`. A live stream too far behind is
        cut off instead; a stream that caught up becomes idle."""
        if sub.cursor is None or sub.closed:
            return ""
        if sub.live and self._too_far_behind(sub):
            self._cut(sub)
            return ""
        parts: list[str] = []
        oldest = self._oldest()
        if sub.cursor < oldest:  # dropped from the buffer while this stream replayed
            parts.append(self._gap_in_replay(sub.cursor, oldest))
            sub.cursor = oldest
        size = 0
        sees = sub.identity.sees
        first = sub.cursor - oldest
        for ev in itertools.islice(self.buffer, first, first + SCAN_PER_TURN):
            sub.cursor = ev.seq + 1
            if sees(ev.owner) and sub.matches(ev):
                parts.append(ev.chunk)
                size += ev.size
                if size >= BATCH_BYTES:
                    break
        if sub.cursor > self.seq:  # caught up: idle until an event it may see arrives
            sub.live = True
            self._to_idle(sub)
        return "".join(parts)

    async def stream(self, sub: Subscriber, keepalive: float) -> AsyncIterator[str]:
        """The stream's text: initial chunks, then a batch per turn, with a keep-alive
        comment when idle. Ends when the hub closes or cuts the stream off; unsubscribes
        when it ends, however it ends."""
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
                if sub.cursor is not None:
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
