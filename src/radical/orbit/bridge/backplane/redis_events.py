"""Events through one Redis Stream, ``orbit:events``: every replica writes and reads it.

Writing: an event an endpoint raises goes into this replica's *outbox* (publishing
never awaits: the endpoint socket's reader must not wait for Redis), and one task
appends the outbox to the stream in batches, in order, with
:data:`~.redis_scripts.XADD_BOUNDED`, which also keeps the stream within its bounds
(``event_buffer_bytes`` of data, ``event_buffer`` entries) and records the newest id
it trimmed (the floor). While Redis is unreachable the outbox keeps what comes (the
oldest go beyond ``event_buffer_bytes``, with a warning), and is written when Redis
returns: clients then get those events late, but get them. A numbered notification's
``stored`` callback runs once the script has appended it (or found it there already:
the script drops resends), so its endpoint is told it is stored only then; one
dropped from a full outbox is never acknowledged, and its endpoint sends it again on
its next connection.

Reading: one ``XREAD BLOCK`` loop per replica feeds every entry, this replica's own
included, to the local :class:`~..stream_hub.StreamEventHub`, which serves the
``/events`` streams (scoping by identity as in one bridge). A new session first reads
what it missed (``XRANGE`` from the last id read), and tells the hub what can no
longer be replayed: ids the stream trimmed before this replica read them, and the
hole a restarted Redis (a new ``epoch``) leaves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..stream_hub import StreamEventHub
from ..stream_ids import just_after, parse_stream_id
from .base import Numbered
from .cancelled import raise_if_cancelled
from .redis_scripts import (
    EPOCH_KEY,
    EVENTS_BYTES_KEY,
    EVENTS_FLOOR_KEY,
    EVENTS_KEY,
    NUMBERS_KEY,
    XADD_BOUNDED,
)

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

__all__ = ["EventPump"]

log = logging.getLogger(__name__)

#: events appended per script call, entries read per XREAD/XRANGE
BATCH = 256
#: milliseconds an XREAD waits for new entries (then it asks again)
BLOCK_MS = 1000
#: idle streams the reader may offer events to before it lets the loop run others
FANOUT_SLICE = 256

#: stream entries as redis-py returns them with decode_responses: [(id, {field: value})]
Entries = list[tuple[str, dict[str, str]]]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class EventPump:
    """The outbox into the stream and the reader out of it, for one replica.

    :param max_bytes: bytes of event data the stream (and the outbox) keeps
    :param max_entries: entries the stream keeps
    """

    def __init__(self, core: RedisBackplane, hub: StreamEventHub, *, max_bytes: int, max_entries: int) -> None:
        self.core = core
        self.hub = hub
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._xadd = core.redis.register_script(XADD_BOUNDED)
        #: events to append: the script's 10 values each, and what to call once appended
        self.outbox: deque[tuple[tuple[str, ...], Callable[[], None] | None]] = deque()
        self.outbox_bytes = 0
        self.dropped = 0
        self._wake = asyncio.Event()
        #: the id of the last entry read from the stream
        self.last_read = "0-0"
        self.epoch: str | None = None

    # -- writing -------------------------------------------------------------------------------
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
        numbered: Numbered | None = None,
        stored: Callable[[], None] | None = None,
    ) -> int:
        """:class:`~.base.Publish`: put the event in the outbox (never awaits)."""
        data: dict[str, Any] = {
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
        body = _dumps(data)
        number = ("", "", "") if numbered is None else (numbered[0], numbered[1], str(numbered[2]))
        self.outbox.append(((kind, endpoint or "", plugin or "", topic or "", session or "", owner or "", body, *number), stored))
        self.outbox_bytes += len(body)
        while self.outbox_bytes > self.max_bytes and len(self.outbox) > 1:
            self.outbox_bytes -= len(self.outbox.popleft()[0][6])
            if not self.dropped:
                log.warning("event outbox full while Redis is unreachable: the oldest events are dropped")
            self.dropped += 1
        self._wake.set()
        return 0

    async def flush(self) -> None:
        """Append the outbox to the stream, in order, for as long as the session lasts."""
        while True:
            raise_if_cancelled()
            if not self.outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = [self.outbox[i] for i in range(min(BATCH, len(self.outbox)))]
            args: list[Any] = [self.max_bytes, self.max_entries]
            for event, _stored in batch:
                args.extend(event)
            await self._xadd(keys=[EVENTS_KEY, EVENTS_BYTES_KEY, EVENTS_FLOOR_KEY, NUMBERS_KEY], args=args)
            for _ in batch:  # only once they are in: a failed call leaves them for the next session
                self.outbox_bytes -= len(self.outbox.popleft()[0][6])
            for _event, stored in batch:
                if stored is not None:
                    stored()
            raise_if_cancelled()
            if self.dropped:
                log.warning("event outbox: %d events were dropped while Redis was unreachable", self.dropped)
                self.dropped = 0

    # -- reading ---------------------------------------------------------------------------------
    def _feed(self, entries: Entries) -> bool:
        """Hand entries to the hub; True when the loop should let others run."""
        hub = self.hub
        for event_id, fields in entries:
            hub.ingest(
                event_id,
                fields.get("k", ""),
                endpoint=fields.get("e") or None,
                plugin=fields.get("p") or None,
                topic=fields.get("t") or None,
                session=fields.get("s") or None,
                owner=fields.get("o") or None,
                body=fields.get("d", ""),
            )
            self.last_read = event_id
        if hub.visits >= FANOUT_SLICE:
            hub.visits = 0
            return True
        return False

    async def resync(self) -> None:
        """At the start of a session: notice a lost stream or trimmed ids, read what was missed.

        :raises redis.RedisError: Redis is unreachable
        """
        redis = self.core.redis
        await redis.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
        epoch, floor = (str(value) if value is not None else None for value in await redis.mget([EPOCH_KEY, EVENTS_FLOOR_KEY]))
        read = parse_stream_id(self.last_read) or (0, 0)
        if self.epoch is not None and epoch != self.epoch:
            log.warning("the event stream in Redis is new (Redis restarted?): resuming from before now is a gap")
            self.hub.raise_floor(just_after(read))
        self.epoch = epoch
        trimmed = parse_stream_id(floor) if floor else None
        if trimmed is not None and trimmed > read:  # entries went before this replica read them
            self.hub.raise_floor(trimmed)
        await self.catch_up()

    async def catch_up(self) -> None:
        """Read the stream from the last id the hub has up to its end."""
        while True:
            start = max(self.last_read, self.hub.last_id, key=lambda text: parse_stream_id(text) or (0, 0))
            entries: Entries = await self.core.redis.xrange(EVENTS_KEY, min=f"({start}", max="+", count=BATCH * 4)  # type: ignore[assignment]
            if not entries:
                return
            self._feed(entries)
            if len(entries) < BATCH * 4:
                return
            await asyncio.sleep(0)

    async def read(self) -> None:
        """Follow the stream for as long as the session lasts."""
        redis = self.core.redis
        while True:
            raise_if_cancelled()
            answer: list[tuple[str, Entries]] = await redis.xread({EVENTS_KEY: self.last_read}, count=BATCH, block=BLOCK_MS)  # type: ignore[assignment]
            for _stream, entries in answer or ():
                if self._feed(entries):
                    await asyncio.sleep(0)
