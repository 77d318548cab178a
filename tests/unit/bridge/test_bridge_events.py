"""EventHub: ids, filters, scoping by identity, Last-Event-ID replay, gap events,
byte bounds, slow and stuck subscribers, the stream limit, paced writes."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tracemalloc
from typing import Any

import pytest

from radical.orbit.bridge.events import BATCH_BYTES, KEEPALIVE, EventHub, Subscriber
from radical.orbit.bridge.identity import Identity
from radical.orbit.errors import RateLimitedError

ADMIN = Identity("admin", admin=True)
ALICE = Identity("alice")
BOB = Identity("bob")
MIB = 2**20


def parse(chunk: str) -> list[dict[str, Any]]:
    """The events in one written chunk (a batch may hold several)."""
    out = []
    for message in chunk.split("\n\n"):
        if not message.strip() or message.startswith(":"):
            continue
        fields: dict[str, str] = {}
        for line in message.splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        data = json.loads(fields["data"])
        assert data["id"] == fields["id"] and data["kind"] == fields["event"]
        out.append(data)
    return out


def publish(hub: EventHub, n: int, **kw: Any) -> None:
    for i in range(n):
        args: dict[str, Any] = {"endpoint": "ep1", "plugin": "sysinfo", "topic": "tick", "session": None}
        args.update(kw)
        hub.publish("notification", payload={"i": i}, **args)


def drain(hub: EventHub, sub: Subscriber) -> list[dict[str, Any]]:
    """Everything ``sub`` would write now: initial chunks, replay, queued events."""
    out = [e for c in sub.initial for e in parse(c)]
    sub.initial = []
    while batch := hub.next_batch(sub):
        out += parse(batch)
    return out


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


class TestEventHub:
    def test_ids_and_hello(self) -> None:
        hub = EventHub(10)
        sub = hub.subscribe(ADMIN)
        publish(hub, 2)
        events = drain(hub, sub)
        assert kinds(events) == ["hello", "notification", "notification"]
        assert events[0]["id"] == f"{hub.boot}-0" and events[0]["payload"]["boot"] == hub.boot
        assert [e["id"] for e in events[1:]] == [f"{hub.boot}-1", f"{hub.boot}-2"]
        assert events[2]["payload"] == {"i": 1} and events[2]["endpoint"] == "ep1" and events[2]["ts"] > 0

    def test_filters_exact_match(self) -> None:
        hub = EventHub(100)
        by_topic = hub.subscribe(ADMIN, {"topic": "b"})
        by_plugin = hub.subscribe(ADMIN, {"plugin": "sysinfo", "endpoint": "ep2"})
        by_session = hub.subscribe(ADMIN, {"session": "tag1"})
        publish(hub, 1, topic="a")
        publish(hub, 1, topic="b")
        publish(hub, 1, endpoint="ep2")
        publish(hub, 1, session="tag1")
        hub.publish("topology", endpoint="ep2", plugin=None, topic="endpoint_connected", session=None, payload={})
        assert [e["topic"] for e in drain(hub, by_topic)[1:]] == ["b"]
        assert [e["endpoint"] for e in drain(hub, by_plugin)[1:]] == ["ep2"]
        assert [e["session"] for e in drain(hub, by_session)[1:]] == ["tag1"]

    def test_resume_replays_what_was_missed(self) -> None:
        hub = EventHub(100)
        publish(hub, 5)
        sub = hub.subscribe(ADMIN, {"topic": "tick"}, last_event_id=f"{hub.boot}-3")
        publish(hub, 1)  # published while the stream catches up: read from the buffer
        events = drain(hub, sub)
        assert kinds(events) == ["hello", "notification", "notification", "notification"]
        assert [e["id"] for e in events[1:]] == [f"{hub.boot}-{i}" for i in (4, 5, 6)]
        assert sub.cursor is None  # caught up: live from now on
        publish(hub, 1)
        assert [e["id"] for e in drain(hub, sub)] == [f"{hub.boot}-7"]
        up_to_date = hub.subscribe(ADMIN, last_event_id=hub.last_id)
        assert kinds(drain(hub, up_to_date)) == ["hello"]

    def test_gap_when_evicted(self) -> None:
        hub = EventHub(3)
        publish(hub, 10)  # buffer holds 8..10
        sub = hub.subscribe(ADMIN, last_event_id=f"{hub.boot}-2")
        events = drain(hub, sub)
        assert kinds(events) == ["hello", "gap", "notification", "notification", "notification"]
        gap = events[1]
        assert gap["payload"]["missed_from"] == f"{hub.boot}-3" and gap["payload"]["reason"]
        assert gap["id"] == f"{hub.boot}-7"
        assert [e["id"] for e in events[2:]] == [f"{hub.boot}-{i}" for i in (8, 9, 10)]

    def test_gap_when_other_boot_or_garbage(self) -> None:
        hub = EventHub(100)
        publish(hub, 2)
        odd = [f"{hub.boot}-\u00b2", f"{hub.boot}-\u2460", f"{hub.boot}-" + "1" * 5000, f"{hub.boot}-1" + "0" * 20]
        for bad in ["deadbeef-5", "garbage", f"{hub.boot}-999", *odd]:  # odd: isdigit() but not a sequence number
            events = drain(hub, hub.subscribe(ADMIN, last_event_id=bad))
            assert kinds(events) == ["hello", "gap", "notification", "notification"], bad
            assert events[1]["payload"]["missed_from"] == (bad if len(bad) <= 64 else bad[:64] + "...")

    def test_a_resume_id_cannot_forge_log_lines_or_be_echoed_whole(self, caplog: pytest.LogCaptureFixture) -> None:
        hub = EventHub(100)
        forged = "x\n2026-12-05 18:00:00,000 CRITICAL radical.orbit.bridge.auth: FORGED LINE" + "y" * 60_000
        with caplog.at_level(logging.INFO, logger="radical.orbit.bridge.events"):
            events = drain(hub, hub.subscribe(ADMIN, last_event_id=forged))
        assert kinds(events) == ["hello", "gap"]
        assert len(json.dumps(events[1])) < 1_000  # not the 60,000 characters sent
        lines = "\n".join(r.getMessage() for r in caplog.records)
        assert "FORGED" not in lines or "\\n2026" in lines  # quoted: the newline stays an escape
        assert all("\n" not in r.getMessage() for r in caplog.records)


class TestBounds:
    def test_buffer_is_bounded_in_bytes_oldest_first(self) -> None:
        """40 notifications of 16 MiB kept about 750 MiB in the bridge (the issue)."""
        hub = EventHub(10_000, max_bytes=64 * MIB)
        publish(hub, 1)
        replaying = hub.subscribe(ADMIN, last_event_id=f"{hub.boot}-0")
        live = hub.subscribe(ADMIN)
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            for i in range(1, 41):
                hub.publish("notification", endpoint="ep1", plugin="p", topic="big", session=None, payload={"blob": str(i % 10) * (16 * MIB)})
                assert hub.buffer_bytes <= hub.max_bytes
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert held - base <= 64 * MIB + 4 * MIB, (held - base) / MIB  # what the buffer may hold, plus small change
        seqs = [ev.seq for ev in hub.buffer]
        assert seqs == list(range(42 - len(seqs), 42)) and 1 <= len(seqs) <= 4  # the newest; the oldest went first
        # the live stream that read nothing holds nothing, and is cut off on its turn ...
        assert hub.next_batch(live) == "" and live.cut_off
        # ... and the one still replaying from the start is told what it lost
        replaying.initial = []
        events = []
        while batch := hub.next_batch(replaying):
            events += parse(batch)
        assert events[0]["kind"] == "gap" and events[0]["payload"]["reason"] == "events no longer buffered"
        assert [e["payload"]["blob"][0] for e in events[1:]] == [str((s - 1) % 10) for s in seqs]

    def test_an_event_larger_than_the_buffer_is_not_kept(self) -> None:
        hub = EventHub(100, max_bytes=10_000)
        publish(hub, 3)
        first = hub.last_id
        hub.publish("notification", endpoint="ep1", plugin="p", topic="big", session=None, payload={"blob": "x" * 20_000})
        assert hub.buffer_bytes <= 10_000 and len(hub.buffer) == 0
        events = drain(hub, hub.subscribe(ADMIN, last_event_id=first))
        assert kinds(events) == ["hello", "gap"] and events[1]["payload"]["reason"] == "events no longer buffered"

    def test_gap_when_dropped_while_catching_up(self) -> None:
        hub = EventHub(5)
        publish(hub, 5)
        sub = hub.subscribe(ADMIN, last_event_id=f"{hub.boot}-1")
        publish(hub, 10)  # 2..5 are gone before the stream reads them
        events = drain(hub, sub)
        assert kinds(events)[:2] == ["hello", "gap"]
        assert events[1]["payload"]["missed_from"] == f"{hub.boot}-2"
        assert [e["id"] for e in events[2:]] == [f"{hub.boot}-{i}" for i in range(11, 16)]

    def test_slow_subscriber_is_cut_off_and_others_keep_flowing(self) -> None:
        hub = EventHub(100, max_queue=5)
        stuck = hub.subscribe(ADMIN)
        reader = hub.subscribe(ADMIN)
        reader.initial = stuck.initial = []
        assert hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session=None, payload={}) == 2
        for _ in range(19):
            assert len(drain(hub, reader)) == 1  # one event per round, as it comes
            # a stream that has not written what it owes is not looked at again
            assert hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session=None, payload={}) == 1
        assert not stuck.cut_off and hub.visits == 2 + 19
        # its turn comes (its write returned): 20 events behind, more than 5
        assert hub.next_batch(stuck) == "" and stuck.closed and stuck.cut_off and hub.cut_offs == 1
        assert stuck not in hub.subscribers and reader in hub.subscribers and not reader.closed
        # it counts against its identity until its stream has really ended
        assert hub.streams(ADMIN) == 2
        hub.unsubscribe(stuck)
        assert hub.streams(ADMIN) == 1
        # and resumes where it was: nothing lost that the buffer still holds, even though
        # that is more than it may fall behind live
        resumed = drain(hub, hub.subscribe(ADMIN, last_event_id=f"{hub.boot}-0"))
        assert [e["id"] for e in resumed[1:]] == [f"{hub.boot}-{i}" for i in range(1, 21)]

    def test_lag_bound_in_bytes(self) -> None:
        hub = EventHub(100, max_queue=1000, max_queue_bytes=20_000)
        sub = hub.subscribe(ADMIN)
        for _ in range(5):
            hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session=None, payload={"x": "y" * 6000})
        assert hub.next_batch(sub) == "" and sub.cut_off

    def test_one_event_larger_than_the_lag_bound_still_goes_out(self) -> None:
        hub = EventHub(100, max_queue_bytes=1000)
        sub = hub.subscribe(ADMIN)
        hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session=None, payload={"x": "y" * 5000})
        assert len(drain(hub, sub)) == 2 and not sub.cut_off

    def test_filtered_streams_are_not_behind_for_events_they_do_not_want(self) -> None:
        hub = EventHub(10_000, max_queue=5)
        sub = hub.subscribe(ADMIN, {"topic": "rare"})
        publish(hub, 50, topic="common")
        publish(hub, 1, topic="rare")
        events = drain(hub, sub)
        assert kinds(events) == ["hello", "notification"] and events[1]["topic"] == "rare" and not sub.cut_off

    def test_stream_limit_per_identity(self) -> None:
        hub = EventHub(100, max_subscribers=2)
        a1, _a2 = hub.subscribe(ALICE), hub.subscribe(ALICE)
        with pytest.raises(RateLimitedError) as info:
            hub.subscribe(ALICE)
        err = info.value
        assert err.status_code == 429 and err.details["retry_after"] >= 1
        assert err.details["setting"] == "max_subscribers_per_identity" and "max_subscribers_per_identity" in err.message
        assert "'alice' already has 2 event streams open" in err.message
        hub.subscribe(BOB)  # others are not affected
        hub.unsubscribe(a1)
        hub.unsubscribe(a1)  # idempotent
        assert hub.streams(ALICE) == 1
        hub.subscribe(ALICE)


class TestScoping:
    def setup_hub(self) -> EventHub:
        hub = EventHub(100)
        hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session="sa", payload={"who": "alice"}, owner="alice")
        hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session="sb", payload={"who": "bob"}, owner="bob")
        hub.publish("topology", endpoint="ep1", plugin=None, topic="endpoint_connected", session=None, payload={"who": None})
        return hub

    @staticmethod
    def seen(events: list[dict[str, Any]]) -> list[str | None]:
        return [e["payload"]["who"] for e in events if e["kind"] in ("notification", "topology")]

    def test_live(self) -> None:
        hub = EventHub(100)
        subs = {ident.name: hub.subscribe(ident) for ident in (ALICE, BOB, ADMIN)}
        hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session="sa", payload={"who": "alice"}, owner="alice")
        hub.publish("notification", endpoint="ep1", plugin="p", topic="t", session="sb", payload={"who": "bob"}, owner="bob")
        hub.publish("topology", endpoint="ep1", plugin=None, topic="endpoint_connected", session=None, payload={"who": None})
        assert self.seen(drain(hub, subs["alice"])) == ["alice", None]
        assert self.seen(drain(hub, subs["bob"])) == ["bob", None]
        assert self.seen(drain(hub, subs["admin"])) == ["alice", "bob", None]

    def test_replay(self) -> None:
        hub = self.setup_hub()
        start = f"{hub.boot}-0"
        assert self.seen(drain(hub, hub.subscribe(ALICE, last_event_id=start))) == ["alice", None]
        assert self.seen(drain(hub, hub.subscribe(BOB, last_event_id=start))) == ["bob", None]
        assert self.seen(drain(hub, hub.subscribe(ADMIN, last_event_id=start))) == ["alice", "bob", None]
        # a filter cannot widen what an identity sees
        assert self.seen(drain(hub, hub.subscribe(ALICE, {"session": "sb"}, last_event_id=start))) == []

    def test_publishing_visits_only_who_may_see_it(self) -> None:
        hub = EventHub(100)
        for _ in range(50):
            hub.subscribe(ALICE)
        admin = hub.subscribe(ADMIN)
        assert hub.publish("notification", endpoint="e", plugin="p", topic="t", session="s", payload={}, owner="bob") == 1
        assert hub.publish("notification", endpoint="e", plugin="p", topic="t", session="s", payload={}, owner="alice") == 50
        drain(hub, admin)  # the admin's stream had an event to write: now it is idle again
        assert hub.publish("notification", endpoint="e", plugin="p", topic="t", session="s", payload={}, owner="carol") == 1


class TestStreams:
    def test_stream_keepalive_and_close(self) -> None:
        async def run() -> list[str]:
            hub = EventHub(10)
            sub = hub.subscribe(ADMIN)
            out: list[str] = []

            async def consume() -> None:
                async for chunk in hub.stream(sub, keepalive=0.05):
                    out.append(chunk)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.12)
            publish(hub, 1)
            await asyncio.sleep(0.01)
            hub.close()
            await asyncio.wait_for(task, 2)
            assert hub.streams(ADMIN) == 0  # the stream unsubscribed as it ended
            return out

        out = asyncio.run(run())
        assert out[0].startswith("id: ") and "event: hello" in out[0]
        assert KEEPALIVE in out
        assert any("event: notification" in c for c in out)

    def test_writes_are_paced_and_batched(self) -> None:
        """Many streams woken by one event: at most ``writers_per_pass`` write per loop pass,
        and a stream writes everything queued in one turn."""

        async def run() -> None:
            hub = EventHub(1000, writers_per_pass=4)
            got: dict[int, list[str]] = {i: [] for i in range(20)}

            async def consume(i: int, sub: Subscriber) -> None:
                async for chunk in hub.stream(sub, keepalive=30):
                    got[i].append(chunk)

            tasks = [asyncio.create_task(consume(i, hub.subscribe(ADMIN))) for i in range(20)]
            for _ in range(3):
                await asyncio.sleep(0)
            assert all(len(chunks) == 1 for chunks in got.values())  # hello
            publish(hub, 3)  # three events, one wake-up each
            done = []
            for _ in range(12):
                await asyncio.sleep(0)
                done.append(sum(len(chunks) == 2 for chunks in got.values()))
            steps = [b - a for a, b in zip([0, *done], done, strict=False)]
            assert max(steps) <= 4 and done[-1] == 20, done
            assert all(len(parse(chunks[1])) == 3 for chunks in got.values())  # one write each
            hub.close()
            await asyncio.gather(*tasks)

        asyncio.run(run())

    def test_stuck_stream_does_not_hold_the_others(self) -> None:
        """A stream whose writes never complete is cut off; the others keep flowing."""

        async def run() -> None:
            hub = EventHub(1000, max_queue=10)
            blocked = asyncio.Event()
            received: list[str] = []

            async def stuck(sub: Subscriber) -> None:
                async for _chunk in hub.stream(sub, keepalive=30):
                    await blocked.wait()  # a socket nobody reads: the write never returns

            async def reader(sub: Subscriber) -> None:
                async for chunk in hub.stream(sub, keepalive=30):
                    received.extend(e["id"] for e in parse(chunk))

            stuck_sub = hub.subscribe(ADMIN)
            tasks = [asyncio.create_task(stuck(stuck_sub)), asyncio.create_task(reader(hub.subscribe(ADMIN)))]
            for _ in range(50):
                publish(hub, 1)
                await asyncio.sleep(0.001)
            for _ in range(20):
                await asyncio.sleep(0)
            assert received[-1] == hub.last_id and len(received) == 51  # hello + 50
            assert stuck_sub.cursor is not None and not stuck_sub.cut_off  # still in its first write
            blocked.set()
            await asyncio.wait_for(tasks[0], 2)  # its write returned: 49 behind, it is cut off
            assert stuck_sub.cut_off and stuck_sub not in hub.subscribers
            assert hub.streams(ADMIN) == 1
            hub.close()
            await asyncio.gather(*tasks)

        asyncio.run(run())

    def test_a_long_replay_is_written_in_batches(self) -> None:
        hub = EventHub(10_000)
        for i in range(300):
            hub.publish("notification", endpoint="e", plugin="p", topic="t", session=None, payload={"i": i, "pad": "x" * 1000})
        sub = hub.subscribe(ADMIN, last_event_id=f"{hub.boot}-0")
        sub.initial = []
        sizes = []
        ids = []
        while batch := hub.next_batch(sub):
            sizes.append(len(batch))
            ids += [e["payload"]["i"] for e in parse(batch)]
        assert ids == list(range(300)) and len(sizes) > 2
        assert max(sizes) <= BATCH_BYTES + 2000
