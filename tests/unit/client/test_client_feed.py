"""SessionFeed: events of a session being opened are held, not lost; order kept; gaps told."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from radical.orbit.client import feed as feed_mod
from radical.orbit.client.feed import SessionFeed
from radical.orbit.models.messages import session_tag


def note(n: int, sid: str | None = "new", *, endpoint: str = "ep1", plugin: str = "globus", topic: str = "transfer_status", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"b-{n}", "kind": "notification", "endpoint": endpoint, "plugin": plugin, "topic": topic,
        "session": session_tag(sid) if sid else None, "payload": {"n": n}, **extra,
    }


class Calls:
    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.items.append(args)

    def ns(self) -> list[int]:
        return [a[-1]["n"] for a in self.items if "n" in a[-1]]


def test_events_raised_before_the_reply_are_held_and_handed_on_in_order() -> None:
    feed = SessionFeed("ep1", "globus")
    got = Calls()
    feed.add(got, None, original=False)
    with feed.opening():
        feed.on_event(note(1))
        feed.on_event(note(2, sid="someone-else"))  # another client's session: dropped at the reply
        feed.on_event(note(3))
        assert got.items == []  # nothing delivered before the sid is known
        feed.opened("new")
        feed.on_event(note(4))
    assert got.ns() == [1, 3, 4]
    assert feed.delivered == 3 and feed.dropped == 1


def test_without_a_registration_in_flight_unknown_sessions_are_dropped() -> None:
    feed = SessionFeed("ep1", "globus")
    got = Calls()
    feed.add(got, None, original=False)
    feed.on_event(note(1))
    with feed.opening():
        feed.opened("new")
    feed.on_event(note(2))
    feed.on_event(note(3, plugin="sysinfo"))  # another plugin of the endpoint
    feed.on_event(note(4, endpoint="ep2"))  # another endpoint
    assert got.ns() == [2]


def test_a_replaced_session_late_events_still_arrive_until_close() -> None:
    feed = SessionFeed("ep1", "globus")
    got = Calls()
    feed.add(got, None, original=False)
    for sid in ("old", "new"):
        with feed.opening():
            feed.opened(sid)
    feed.on_event(note(1, sid="old"))
    feed.on_event(note(2, sid="new"))
    feed.forget()
    feed.on_event(note(3, sid="new"))
    assert got.ns() == [1, 2]


def test_topics_styles_and_removal() -> None:
    feed = SessionFeed("ep1", "globus")
    ours, original, only = Calls(), Calls(), Calls()
    feed.add(ours, None, original=False)
    feed.add(original, None, original=True)
    rid = feed.add(only, "transfer_*", original=False)
    with feed.opening():
        feed.opened("new")
    feed.on_event(note(1))
    feed.on_event(note(2, topic="auth_error"))
    assert ours.items == [("transfer_status", {"n": 1}), ("auth_error", {"n": 2})]
    assert original.items == [("ep1", "globus", "transfer_status", {"n": 1}), ("ep1", "globus", "auth_error", {"n": 2})]
    assert only.ns() == [1]
    assert feed.remove(rid) and not feed.remove(rid)
    assert feed.remove_callback(original, None) and not feed.remove_callback(ours, "x")
    assert len(feed) == 1


def test_a_gap_reaches_callbacks_whose_topic_matches_and_the_hook() -> None:
    hooked: list[dict[str, Any]] = []
    feed = SessionFeed("ep1", "globus", gap_hook=lambda: hooked.append)
    ours, original, status_only = Calls(), Calls(), Calls()
    feed.add(ours, None, original=False)
    feed.add(original, None, original=True)
    feed.add(status_only, "transfer_status", original=False)
    gap = {"id": "b-9", "kind": "gap", "endpoint": None, "plugin": None, "topic": None, "session": None,
           "payload": {"reason": "bridge restarted", "missed_from": "a-3"}}
    feed.on_event(gap)
    assert ours.items == [("gap", {"reason": "bridge restarted", "missed_from": "a-3"})]
    assert original.items == [("ep1", "globus", "gap", {"reason": "bridge restarted", "missed_from": "a-3"})]
    assert status_only.items == [] and hooked == [{"reason": "bridge restarted", "missed_from": "a-3"}]
    ours.items[0][1]["mine"] = 1  # each gets a copy of its own
    assert "mine" not in original.items[0][3]


def test_notifications_the_endpoint_dropped_are_a_gap_first() -> None:
    feed = SessionFeed("ep1", "globus")
    got = Calls()
    feed.add(got, None, original=False)
    with feed.opening():
        feed.opened("new")
    feed.on_event(note(1, dropped=7))
    assert got.items[0][0] == "gap" and got.items[0][1]["dropped"] == 7 and "ep1" in got.items[0][1]["reason"]
    assert got.items[1] == ("transfer_status", {"n": 1})


def test_the_endpoint_connecting_again_is_told() -> None:
    back: list[int] = []
    feed = SessionFeed("ep1", "globus", endpoint_back=lambda: back.append(1))
    topo = {"kind": "topology", "endpoint": "ep1", "plugin": None, "topic": "endpoint_connected", "payload": {}}
    feed.on_event(topo)
    feed.on_event({**topo, "endpoint": "ep2"})
    feed.on_event({**topo, "topic": "endpoint_disconnected"})
    assert back == [1]


def test_observe_sees_notifications_before_callbacks_and_a_broken_one_harms_nobody(caplog: pytest.LogCaptureFixture) -> None:
    order: list[str] = []

    def observe(topic: str, payload: dict[str, Any]) -> None:
        order.append("observe")
        raise RuntimeError("bookkeeping bug")

    def broken(topic: str, payload: dict[str, Any]) -> None:
        order.append("broken")
        raise RuntimeError("callback bug")

    feed = SessionFeed("ep1", "globus", observe=observe)
    feed.add(broken, None, original=False)
    feed.add(lambda t, p: order.append("good"), None, original=False)
    with feed.opening():
        feed.opened("new")
    feed.on_event(note(1))
    assert order == ["observe", "broken", "good"]
    assert "callback bug" in caplog.text and "bookkeeping bug" in caplog.text


def test_too_many_held_events_end_in_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_mod, "HELD_MAX", 3)
    feed = SessionFeed("ep1", "globus")
    got = Calls()
    feed.add(got, None, original=False)
    with feed.opening():
        for n in range(5):
            feed.on_event(note(n))
        feed.opened("new")
    assert got.items[0][0] == "gap" and "2 notifications" in got.items[0][1]["reason"]
    assert got.ns() == [2, 3, 4]


def test_order_holds_when_the_reply_and_the_stream_race() -> None:
    """The listener keeps delivering while another thread hands the held events on:
    callbacks still see every event once, in the order the stream had them."""
    for _ in range(50):
        feed = SessionFeed("ep1", "globus")
        got = Calls()
        feed.add(got, None, original=False)
        halfway = threading.Event()

        def listener(feed: SessionFeed = feed, halfway: threading.Event = halfway) -> None:
            for n in range(400):
                feed.on_event(note(n))
                if n == 100:
                    halfway.set()

        with feed.opening():
            thread = threading.Thread(target=listener)
            thread.start()
            halfway.wait(5)
            feed.opened("new")
            thread.join(5)
        assert got.ns() == list(range(400))


def test_a_callback_may_open_a_session_itself() -> None:
    """A callback re-registering (on auth_error) runs the delivery it starts on its own thread."""
    feed = SessionFeed("ep1", "globus")
    got = Calls()

    def reregister(topic: str, payload: dict[str, Any]) -> None:
        got(topic, payload)
        if payload["n"] == 1:
            with feed.opening():
                feed.on_event(note(2, sid="newer"))
                feed.opened("newer")

    feed.add(reregister, None, original=False)
    with feed.opening():
        feed.opened("new")
    feed.on_event(note(1))
    assert got.ns() == [1, 2]
