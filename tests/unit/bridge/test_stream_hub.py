"""StreamEventHub: events fed from the Redis Stream keep the stream's ids; resume, floor and gaps."""

from __future__ import annotations

import json
from typing import Any

from test_bridge_events import ADMIN, ALICE, BOB, drain, kinds

from radical.orbit.bridge.stream_hub import StreamEventHub
from radical.orbit.bridge.stream_ids import format_key, just_after, parse_stream_id


def body(i: int, **extra: Any) -> str:
    data = {"kind": "notification", "endpoint": "ep1", "plugin": "p", "session": None, "topic": "t", "payload": {"i": i}, "ts": 1.0}
    data.update(extra)
    return json.dumps(data)


def feed(hub: StreamEventHub, ids: list[str], owner: str | None = None) -> None:
    for n, event_id in enumerate(ids):
        hub.ingest(event_id, "notification", endpoint="ep1", plugin="p", topic="t", session=None, owner=owner, body=body(n))


IDS = [f"1700000000000-{n}" for n in range(5)] + ["1700000000001-0", "1700000000005-0"]


def test_parse_stream_ids_refuses_what_is_not_one() -> None:
    assert parse_stream_id(" 1700000000000-3 ") == (1700000000000, 3)
    for bad in ["", "17", "a-1", "1-b", "1-\u00b2", "-1", "1-", "1" * 21 + "-0", "deadbeef-5"]:
        assert parse_stream_id(bad) is None, bad
    assert format_key((5, 2)) == "5-2" and just_after((5, 2)) == (5, 3)


def test_ids_are_the_stream_ids_and_repeats_are_ignored() -> None:
    hub = StreamEventHub(100)
    sub = hub.subscribe(ADMIN)
    feed(hub, IDS)
    feed(hub, IDS[:3])  # a re-read after a reconnect
    events = drain(hub, sub)
    assert kinds(events) == ["hello"] + ["notification"] * len(IDS)
    assert events[0]["id"] == "0-0"
    assert [e["id"] for e in events[1:]] == IDS
    assert [e["payload"]["i"] for e in events[1:]] == list(range(len(IDS)))
    assert hub.last_id == IDS[-1]


def test_resume_from_any_id_replays_what_follows() -> None:
    hub = StreamEventHub(100)
    feed(hub, IDS)
    for n, seen in enumerate(IDS):
        events = drain(hub, hub.subscribe(ADMIN, last_event_id=seen))
        assert kinds(events)[0] == "hello" and "gap" not in kinds(events)
        assert [e["id"] for e in events[1:]] == IDS[n + 1:]
    # an id between two entries (the client saw one that this replica's filter skipped) is fine too
    events = drain(hub, hub.subscribe(ADMIN, last_event_id="1700000000002-0"))
    assert [e["id"] for e in events[1:]] == IDS[-1:]


def test_below_the_floor_is_a_gap_whose_id_resumes_cleanly() -> None:
    hub = StreamEventHub(4)  # keeps 4: the first 3 are dropped, the floor is the third
    feed(hub, IDS)
    assert hub.floor == parse_stream_id(IDS[2])
    events = drain(hub, hub.subscribe(ADMIN, last_event_id=IDS[0]))
    assert kinds(events) == ["hello", "gap"] + ["notification"] * 4
    gap = events[1]
    assert gap["id"] == IDS[2] and gap["payload"]["reason"] == "events no longer buffered"
    assert gap["payload"]["resumed_from"] == IDS[3]
    # resuming from the gap's id (or from the floor itself) replays, with no new gap
    again = drain(hub, hub.subscribe(ADMIN, last_event_id=gap["id"]))
    assert kinds(again) == ["hello"] + ["notification"] * 4


def test_unknown_or_future_ids_are_gaps() -> None:
    hub = StreamEventHub(100)
    feed(hub, IDS[:3])
    for bad in ["garbage", "1800000000000-0", "abcd-12"]:
        events = drain(hub, hub.subscribe(ADMIN, last_event_id=bad))
        assert kinds(events) == ["hello", "gap", "notification", "notification", "notification"], bad
        assert events[1]["payload"]["reason"] == "unknown event id"


def test_a_hole_after_a_lost_stream_makes_older_ids_gaps() -> None:
    hub = StreamEventHub(100)
    feed(hub, IDS[:3])
    hub.raise_floor(just_after(parse_stream_id(IDS[2]) or (0, 0)))  # Redis restarted empty
    feed(hub, IDS[3:])
    events = drain(hub, hub.subscribe(ADMIN, last_event_id=IDS[2]))
    assert kinds(events)[:2] == ["hello", "gap"]
    assert not any(k == "gap" for k in kinds(drain(hub, hub.subscribe(ADMIN, last_event_id=IDS[3]))))


def test_scoping_by_owner_holds_for_stream_events() -> None:
    hub = StreamEventHub(100)
    alice, bob, admin = hub.subscribe(ALICE), hub.subscribe(BOB), hub.subscribe(ADMIN)
    feed(hub, IDS[:2], owner="alice")
    hub.ingest(IDS[2], "topology", endpoint="ep1", plugin=None, topic="endpoint_connected", session=None, owner=None, body=body(9, kind="topology"))
    assert kinds(drain(hub, alice)) == ["hello", "notification", "notification", "topology"]
    assert kinds(drain(hub, bob)) == ["hello", "topology"]
    assert len(drain(hub, admin)) == 4
    # replay is scoped the same way
    assert kinds(drain(hub, hub.subscribe(BOB, last_event_id="0-0"))) == ["hello", "topology"]


def test_malformed_entries_are_ignored() -> None:
    hub = StreamEventHub(100)
    assert hub.ingest("not-an-id", "notification", endpoint=None, plugin=None, topic=None, session=None, owner=None, body=body(0)) == 0
    assert hub.ingest("5-0", "notification", endpoint=None, plugin=None, topic=None, session=None, owner=None, body="{}") == 0
    assert hub.seq == 0 and not hub.buffer
