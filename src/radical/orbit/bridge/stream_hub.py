"""The event hub of a replica on the Redis backplane: the stream's ids are the SSE ids.

Every replica reads the one Redis Stream of events (``redis_events.py``) and feeds
each entry to its :class:`StreamEventHub` with :meth:`~StreamEventHub.ingest`; the
hub keeps the stream's tail in its bounded buffer and fans it out to its own
``/events`` streams exactly as :class:`~.events.EventHub` does (cursors, turns,
scoping by identity). Because an event has the same id on every replica, a client
cut off from one replica resumes on another with ``Last-Event-ID``.

A resume is a ``gap`` only when events after the client's id may be missing: the
*floor* is the newest id known to be gone (trimmed from the stream or from this
buffer, or a hole left when Redis lost the stream), and a client whose id is below
it gets a gap; one whose id this replica has not seen yet (an id from the future,
or a stream that was lost) gets one too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .events import KIND_GAP, EventHub, StoredEvent
from .stream_ids import StreamKey, format_key, parse_stream_id

__all__ = ["StreamEventHub"]

log = logging.getLogger(__name__)


class StreamEventHub(EventHub):
    """:class:`~.events.EventHub` fed from the Redis Stream; ids are stream ids."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the newest stream id ingested
        self.newest: StreamKey = (0, 0)
        #: the newest id known to be gone (None: nothing is)
        self.floor: StreamKey | None = None

    @property
    def last_id(self) -> str:
        return format_key(self.newest)

    def ingest(
        self,
        event_id: str,
        kind: str,
        *,
        endpoint: str | None,
        plugin: str | None,
        topic: str | None,
        session: str | None,
        owner: str | None,
        body: str,
    ) -> int:
        """Store one stream entry and wake the idle streams that may see it.

        An id not newer than the newest one is a repeat (a re-read after a reconnect)
        and is ignored.

        :param body: the event's JSON object without its ``id`` (the stream gave it one)
        :returns: how many idle streams were looked at
        """
        key = parse_stream_id(event_id)
        if key is None or key <= self.newest or not body.startswith("{") or len(body) < 3:
            return 0
        self.newest = key
        self.seq += 1
        # the id is digits and a dash (parsed above): safe inside the JSON as it is
        chunk = f'id: {event_id}\nevent: {kind}\ndata: {{"id":"{event_id}",{body[1:]}\n\n'
        size = sys.getsizeof(chunk)
        ev = StoredEvent(self.seq, endpoint, plugin, topic, session, owner, chunk, size, self.published_bytes, key)
        return self._add(ev)

    def raise_floor(self, key: StreamKey) -> None:
        """Events up to ``key`` may be missing: a resume from below it is a gap."""
        if self.floor is None or key > self.floor:
            self.floor = key

    def _dropped(self, ev: StoredEvent) -> None:
        self.raise_floor(ev.key)

    def _resume(self, last_event_id: str) -> tuple[str | None, int]:
        key = parse_stream_id(last_event_id)
        oldest = self._oldest()
        if key is None or key > self.newest:
            gap = {"reason": "unknown event id", "missed_from": last_event_id}
        elif self.floor is not None and key < self.floor:
            gap = {"reason": "events no longer buffered", "missed_from": last_event_id}
        else:  # the first buffered event after the id (keys ascend with seq)
            low, high = oldest, self.seq + 1
            while low < high:
                mid = (low + high) // 2
                if self.buffer[mid - oldest].key <= key:
                    low = mid + 1
                else:
                    high = mid
            return None, low
        log.info("event stream resumes with a gap: %s (client had %s)", gap["reason"], last_event_id)
        return self._gap(gap, last_event_id, oldest), oldest

    def _gap_in_replay(self, cursor: int, oldest: int) -> str:
        floor = format_key(self.floor or (0, 0))
        return self._gap({"reason": "events no longer buffered", "missed_from": None}, floor, oldest)

    def _gap(self, gap: dict[str, Any], last_event_id: str, oldest: int) -> str:
        """A gap whose id is the floor: resuming from it replays what is buffered, no new gap."""
        gap["last_event_id"] = last_event_id
        gap["resumed_from"] = format_key(self.buffer[0].key) if self.buffer else None
        return self._special(KIND_GAP, format_key(self.floor or (0, 0)), gap)
