"""``GET /events``: notifications, filters, hello, Last-Event-ID replay and gaps (real processes)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from radical.orbit.client.endpoint import EndpointClient
from radical.orbit.models.messages import session_tag

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Stack = Any  # tests/integration/conftest.py: OrbitStack


def read_events(
    stack: Stack, *, last_event_id: str | None = None, idle: float = 1.0, limit: int = 1000, **filters: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(sse id, sse event, data)`` of a raw ``/events`` stream until ``idle`` s of silence."""
    headers = dict(stack.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    if "last_event_id_param" in filters:
        filters["last_event_id"] = filters.pop("last_event_id_param")
    out: list[tuple[str, str, dict[str, Any]]] = []
    with httpx.Client(timeout=httpx.Timeout(10.0, read=idle)) as client:
        try:
            with connect_sse(client, "GET", f"{stack.url}/events", params=filters, headers=headers) as source:
                assert source.response.status_code == 200
                for sse in source.iter_sse():
                    out.append((sse.id, sse.event, json.loads(sse.data)))
                    if len(out) >= limit:
                        break
        except httpx.ReadTimeout:
            pass
    return out


def hello_id(stack: Stack) -> str:
    ((sse_id, kind, data),) = read_events(stack, limit=1)
    assert kind == "hello"
    return sse_id or data["id"]


@pytest.fixture(scope="module")
def ec(sysinfo_stack: Stack) -> EndpointClient:
    return sysinfo_stack.client().get_endpoint_client("ep1")


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_callbacks_get_session_notifications(ec: EndpointClient) -> None:
    bc = ec.bridge
    s1 = ec.get_plugin("sysinfo")
    s2 = ec.get_plugin("sysinfo")
    s1.info(), s2.info()
    assert s1.sid and s2.sid and s1.sid != s2.sid
    mine: list[tuple[str, dict[str, Any]]] = []
    s1.register_notification_callback(lambda topic, payload: mine.append((topic, payload)), topic="load")
    wide: list[dict[str, Any]] = []
    bc.register_callback("ep1", "sysinfo", "load", wide.append)
    narrow: list[dict[str, Any]] = []
    bc.register_callback("ep*", "*", "lo?d", narrow.append, session=s2.sid)
    none: list[dict[str, Any]] = []
    bc.register_callback("other", "*", "*", none.append)
    bc.register_callback("*", "sysinfo", "not-a-topic", none.append)

    s1.watch(interval=0.05, count=4)
    s2.watch(interval=0.05, count=3)
    wait_for(lambda: len(wide) >= 7 and len(mine) >= 4 and len(narrow) >= 3)
    time.sleep(0.2)
    assert [p["seq"] for _, p in mine] == [1, 2, 3, 4] and {t for t, _ in mine} == {"load"}
    assert mine[-1][1]["last"] is True
    assert [e["payload"]["seq"] for e in narrow] == [1, 2, 3]
    assert {e["session"] for e in narrow} == {session_tag(s2.sid)}
    ours = {session_tag(s1.sid), session_tag(s2.sid)}
    assert len([e for e in wide if e["session"] in ours]) == 7 and none == []
    event = wide[0]
    assert event["kind"] == "notification" and event["endpoint"] == "ep1" and event["plugin"] == "sysinfo"
    assert set(event) >= {"id", "kind", "endpoint", "plugin", "session", "topic", "payload", "ts"}
    s1.close(), s2.close()


def test_server_side_filters_and_replay(sysinfo_stack: Stack, ec: EndpointClient) -> None:
    start = hello_id(sysinfo_stack)
    a, b = ec.get_plugin("sysinfo"), ec.get_plugin("sysinfo")
    a.info(), b.info()
    assert a.sid and b.sid
    got: list[dict[str, Any]] = []
    ec.bridge.register_callback("ep1", "sysinfo", "load", got.append)
    a.watch(interval=0.02, count=3)
    b.watch(interval=0.02, count=2)
    wait_for(lambda: len([e for e in got if e["session"] in (session_tag(a.sid), session_tag(b.sid))]) >= 5)  # type: ignore[arg-type]

    everything = read_events(sysinfo_stack, last_event_id=start)
    assert everything[0][1] == "hello"  # the first thing on every stream
    replayed = [(i, k, d) for i, k, d in everything[1:] if d.get("session") in (session_tag(a.sid), session_tag(b.sid))]
    assert len(replayed) == 5
    for sse_id, kind, data in everything[1:]:
        assert sse_id and sse_id == data["id"] and kind == data["kind"]
    raw = json.dumps(everything)
    assert a.sid not in raw and b.sid not in raw  # events carry the session tag, never the sid

    only_a = read_events(sysinfo_stack, last_event_id=start, session=session_tag(a.sid))
    assert [d["payload"]["seq"] for _, k, d in only_a if k != "hello"] == [1, 2, 3]
    both = read_events(sysinfo_stack, last_event_id=start, endpoint="ep1", plugin="sysinfo", topic="load")
    assert len([1 for _, k, _d in both if k != "hello"]) >= 5
    for filters in ({"endpoint": "other"}, {"plugin": "nope"}, {"topic": "nope"}, {"session": "0" * 32}):
        assert [k for _, k, _d in read_events(sysinfo_stack, last_event_id=start, idle=0.5, **filters)] == ["hello"], filters
    a.close(), b.close()


def test_last_event_id_query_parameter(sysinfo_stack: Stack, ec: EndpointClient) -> None:
    """``?last_event_id=`` replays like the header (for clients that cannot set headers)."""
    start = hello_id(sysinfo_stack)
    s = ec.get_plugin("sysinfo")
    s.info()
    assert s.sid
    seen: list[dict[str, Any]] = []
    s.register_notification_callback(lambda topic, payload: seen.append(payload))
    s.watch(interval=0.02, count=2)
    wait_for(lambda: len(seen) >= 2)
    events = read_events(sysinfo_stack, idle=0.5, last_event_id=None, session=session_tag(s.sid), last_event_id_param=start)
    assert [d["payload"]["seq"] for _, k, d in events if k == "notification"] == [1, 2]
    s.close()


def test_listener_resumes_with_last_event_id(sysinfo_stack: Stack) -> None:
    """Cut the client's stream mid-way: it reconnects and the bridge replays what it missed."""
    bc = sysinfo_stack.client()  # its own listener, so cutting it disturbs no other test
    s = bc.get_endpoint_client("ep1").get_plugin("sysinfo")
    s.info()
    seqs: list[int] = []
    cut = threading.Event()

    def on_load(topic: str, payload: dict[str, Any]) -> None:
        seqs.append(payload["seq"])
        if payload["seq"] == 1 and not cut.is_set():
            cut.set()
            listener = bc.listener
            assert listener is not None and listener._sock is not None
            listener._sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the listener
            time.sleep(0.3)  # more notifications are raised meanwhile

    s.register_notification_callback(on_load, topic="load")
    s.watch(interval=0.03, count=12)
    wait_for(lambda: len(seqs) >= 12, timeout=20)
    time.sleep(0.2)
    assert seqs == list(range(1, 13))  # none lost, none twice, in order
    assert bc.listener is not None and bc.listener.connects >= 2
    s.close()


def test_gap_when_id_is_unknown(sysinfo_stack: Stack) -> None:
    events = read_events(sysinfo_stack, last_event_id="0123456789abcdef-5", idle=0.5)
    kinds = [k for _, k, _d in events]
    assert kinds[:2] == ["hello", "gap"], kinds
    gap = events[1][2]
    assert gap["kind"] == "gap" and isinstance(gap["payload"], dict) and gap["payload"].get("reason")


def test_odd_ids_of_this_boot_are_a_gap_not_a_500(sysinfo_stack: Stack) -> None:
    """Ids whose sequence part str.isdigit() accepts but int() does not (found by fuzzing)."""
    boot = hello_id(sysinfo_stack).rpartition("-")[0]
    for odd in ("\u00b2", "\u2460", "7" * 5000):
        events = read_events(sysinfo_stack, idle=0.5, limit=2, last_event_id_param=f"{boot}-{odd}")
        assert [k for _, k, _d in events] == ["hello", "gap"], odd[:10]
        assert events[1][2]["payload"]["reason"] == "unknown event id"
    # the same in the header, as raw latin-1 bytes
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.5)) as client:
        headers = [*sysinfo_stack.headers.items(), ("Last-Event-ID", f"{boot}-".encode() + b"\xb2")]
        with client.stream("GET", f"{sysinfo_stack.url}/events", headers=headers) as resp:
            assert resp.status_code == 200


def test_events_need_the_token(sysinfo_stack: Stack) -> None:
    resp = httpx.get(f"{sysinfo_stack.url}/events", timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
