"""EventHub: ids, filters, Last-Event-ID replay, gap events, slow subscribers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from radical.orbit.bridge.events import EventHub, Subscriber


def parse(chunk: str) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for line in chunk.strip().splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    data = json.loads(fields["data"])
    assert data["id"] == fields["id"] and data["kind"] == fields["event"]
    return data


def publish(hub: EventHub, n: int, **kw: Any) -> None:
    for i in range(n):
        args: dict[str, Any] = {"endpoint": "ep1", "plugin": "sysinfo", "topic": "tick", "session": None}
        args.update(kw)
        hub.publish("notification", payload={"i": i}, **args)


def drain(sub: Subscriber) -> list[dict[str, Any]]:
    out = [parse(c) for c in sub.initial]
    sub.initial = []
    out += [parse(c) for c in sub.queue]
    sub.queue.clear()
    return out


class TestEventHub:
    def test_ids_and_hello(self) -> None:
        hub = EventHub(10)
        sub = hub.subscribe()
        publish(hub, 2)
        events = drain(sub)
        assert [e["kind"] for e in events] == ["hello", "notification", "notification"]
        assert events[0]["id"] == f"{hub.boot}-0" and events[0]["payload"]["boot"] == hub.boot
        assert [e["id"] for e in events[1:]] == [f"{hub.boot}-1", f"{hub.boot}-2"]
        assert events[2]["payload"] == {"i": 1} and events[2]["endpoint"] == "ep1" and events[2]["ts"] > 0

    def test_filters_exact_match(self) -> None:
        hub = EventHub(100)
        by_topic = hub.subscribe({"topic": "b"})
        by_plugin = hub.subscribe({"plugin": "sysinfo", "endpoint": "ep2"})
        by_session = hub.subscribe({"session": "tag1"})
        publish(hub, 1, topic="a")
        publish(hub, 1, topic="b")
        publish(hub, 1, endpoint="ep2")
        publish(hub, 1, session="tag1")
        hub.publish("topology", endpoint="ep2", plugin=None, topic="endpoint_connected", session=None, payload={})
        assert [e["topic"] for e in drain(by_topic)[1:]] == ["b"]
        assert [e["endpoint"] for e in drain(by_plugin)[1:]] == ["ep2"]
        assert [e["session"] for e in drain(by_session)[1:]] == ["tag1"]

    def test_resume_replays_what_was_missed(self) -> None:
        hub = EventHub(100)
        publish(hub, 5)
        sub = hub.subscribe({"topic": "tick"}, last_event_id=f"{hub.boot}-3")
        publish(hub, 1)
        events = drain(sub)
        assert [e["kind"] for e in events] == ["hello", "notification", "notification", "notification"]
        assert [e["id"] for e in events[1:]] == [f"{hub.boot}-{i}" for i in (4, 5, 6)]
        up_to_date = hub.subscribe(last_event_id=hub.last_id)
        assert [e["kind"] for e in drain(up_to_date)] == ["hello"]

    def test_gap_when_evicted(self) -> None:
        hub = EventHub(3)
        publish(hub, 10)  # buffer holds 8..10
        sub = hub.subscribe(last_event_id=f"{hub.boot}-2")
        events = drain(sub)
        assert [e["kind"] for e in events] == ["hello", "gap", "notification", "notification", "notification"]
        gap = events[1]
        assert gap["payload"]["missed_from"] == f"{hub.boot}-3" and gap["payload"]["reason"]
        assert gap["id"] == f"{hub.boot}-7"
        assert [e["id"] for e in events[2:]] == [f"{hub.boot}-{i}" for i in (8, 9, 10)]

    def test_gap_when_other_boot_or_garbage(self) -> None:
        hub = EventHub(100)
        publish(hub, 2)
        odd = [f"{hub.boot}-\u00b2", f"{hub.boot}-\u2460", f"{hub.boot}-" + "1" * 5000, f"{hub.boot}-1" + "0" * 20]
        for bad in ["deadbeef-5", "garbage", f"{hub.boot}-999", *odd]:  # odd: isdigit() but not a sequence number
            events = drain(hub.subscribe(last_event_id=bad))
            assert [e["kind"] for e in events] == ["hello", "gap", "notification", "notification"], bad
            assert events[1]["payload"]["missed_from"] == bad

    def test_slow_subscriber_is_cut_off(self) -> None:
        hub = EventHub(100, max_queue=5)
        sub = hub.subscribe()
        publish(hub, 6)
        assert sub.closed and sub.overflowed
        assert sub not in hub.subscribers or sub.closed

    def test_stream_keepalive_and_close(self) -> None:
        async def run() -> list[str]:
            hub = EventHub(10)
            sub = hub.subscribe()
            out: list[str] = []

            async def consume() -> None:
                async for chunk in sub.chunks(keepalive=0.05):
                    out.append(chunk)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.12)
            publish(hub, 1)
            await asyncio.sleep(0.01)
            hub.close()
            await asyncio.wait_for(task, 2)
            return out

        out = asyncio.run(run())
        assert out[0].startswith("id: ") and "event: hello" in out[0]
        assert ": keep-alive\n\n" in out
        assert any("event: notification" in c for c in out)
