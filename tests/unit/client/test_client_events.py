"""The SSE listener: matching, dispatch, subscription, reconnect with Last-Event-ID."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest

from radical.orbit import errors
from radical.orbit.backoff import Backoff
from radical.orbit.client import events as events_mod
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.client.events import Subscription
from radical.orbit.models.messages import session_tag

TOKEN = "events-secret-token"


def sse(kind: str, event_id: str, **data: Any) -> bytes:
    body = {"id": event_id, "kind": kind, **data}
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(body)}\n\n".encode()


def note(event_id: str, endpoint: str = "ep1", plugin: str = "sysinfo", topic: str = "tick", session: str | None = None) -> bytes:
    return sse("notification", event_id, endpoint=endpoint, plugin=plugin, topic=topic, session=session, payload={"n": event_id}, ts=1.0)


def stream(*chunks: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b": keep-alive\n\n" + b"".join(chunks))


class TestSubscription:
    def event(self, **kw: Any) -> dict[str, Any]:
        base = {"kind": "notification", "endpoint": "ep1", "plugin": "sysinfo", "topic": "tick", "session": None}
        return {**base, **kw}

    def test_wildcards(self) -> None:
        def cb(e: dict[str, Any]) -> None:
            return None

        assert Subscription("*", "*", "*", cb).matches(self.event())
        assert Subscription("ep1", "sysinfo", "tick", cb).matches(self.event())
        assert not Subscription("ep2", "*", "*", cb).matches(self.event())
        assert Subscription("ep?", "sys*", "t[i]ck", cb).matches(self.event())
        assert not Subscription("*", "sys", "*", cb).matches(self.event())
        # topology events have plugin null: only "*" matches it
        topo = self.event(kind="topology", plugin=None, topic="endpoint_connected")
        assert Subscription("*", "*", "endpoint_*", cb).matches(topo)
        assert not Subscription("*", "s*", "*", cb).matches(topo)

    def test_session(self) -> None:
        def cb(e: dict[str, Any]) -> None:
            return None

        tag = session_tag("the-sid")
        ev = self.event(session=tag)
        assert Subscription("*", "*", "*", cb, session=tag).matches(ev)
        assert Subscription("*", "*", "*", cb, session="the-sid").matches(ev)
        assert not Subscription("*", "*", "*", cb, session="other").matches(ev)
        assert not Subscription("*", "*", "*", cb, session=tag).matches(self.event())


class TestListener:
    def test_subscribe_dispatch_resume(self, caplog: pytest.LogCaptureFixture) -> None:
        """Callbacks see matching events; a dropped stream resumes from the last id."""
        requests: list[httpx.Request] = []
        lock = threading.Lock()
        go = threading.Event()  # the first stream holds its events until every callback is in

        def first_stream() -> Any:
            yield sse("hello", "b1-0")
            go.wait(10)
            yield note("b1-1") + note("b1-2", plugin="other") + note("b1-3", topic="boom")

        def handler(request: httpx.Request) -> httpx.Response:
            with lock:
                requests.append(request)
                n = len(requests)
            assert request.url.path == "/events"
            if n == 1:
                return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=first_stream())
            if n == 2:
                return stream(sse("hello", "b1-9"), note("b1-4"))
            return stream(sse("hello", "b1-9"))

        got: list[str] = []
        everything: list[str] = []
        done = threading.Event()

        def bad(event: dict[str, Any]) -> None:
            raise RuntimeError("callback bug")

        def good(event: dict[str, Any]) -> None:
            got.append(event["id"])
            if event["id"] == "b1-4":
                done.set()

        bc = BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(handler))
        try:
            with caplog.at_level(logging.ERROR, logger="radical.orbit.client.events"):
                bc.register_callback("*", "*", "boom", bad)
                bc.register_callback("ep1", "sysinfo", "*", good)
                cid = bc.register_callback("*", "*", "*", lambda e: everything.append(e["id"]))
                go.set()
                assert done.wait(10)
            assert got == ["b1-1", "b1-3", "b1-4"]
            assert everything[:4] == ["b1-1", "b1-2", "b1-3", "b1-4"]
            assert "callback bug" in caplog.text
            assert requests[0].headers["authorization"] == f"Bearer {TOKEN}"
            assert "last-event-id" not in requests[0].headers
            assert requests[1].headers["last-event-id"] == "b1-3"
            assert bc.unregister_callback(cid) and not bc.unregister_callback(cid)
            assert bc.listener is not None and bc.listener.running
            assert TOKEN not in repr(bc.listener)
        finally:
            bc.close()
        assert bc.listener is None

    def test_first_attempt_refused(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"code": "unauthorized", "message": "no", "details": {}})

        bc = BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(handler))
        with pytest.raises(errors.AuthenticationError, match="bridge /events: .*refused the token") as info:
            bc.register_callback("*", "*", "*", print)
        assert TOKEN not in str(info.value)
        assert bc.listener is not None and not bc.listener.running and len(bc.listener) == 0
        bc.close()

    def test_bridge_down(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("Connection refused")

        with (
            BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc,
            pytest.raises(errors.BridgeUnavailableError, match="radical-orbit bridge"),
        ):
            bc.register_callback("*", "*", "*", print)

    def test_gap_and_undecodable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(events_mod, "RECONNECT", Backoff(initial=1.0, cap=1.0))
        seen: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bad = b"id: x-1\nevent: notification\ndata: {not json\n\n"
            gap = sse("gap", "b2-0", endpoint=None, plugin=None, topic="gap", payload={"reason": "restarted"})
            return stream(sse("hello", "b2-0"), bad, gap)

        with BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc:
            bc.register_callback("*", "*", "*", seen.append)
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)
        assert seen[0]["kind"] == "gap" and seen[0]["payload"]["reason"] == "restarted"

    def test_not_an_event_stream(self) -> None:
        """A 200 that is not text/event-stream (a proxy's page) is a clear BridgeUnavailableError."""

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"hello": "proxy"})

        with (
            BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc,
            pytest.raises(errors.BridgeUnavailableError) as info,
        ):
            bc.register_callback("*", "*", "*", print)
        msg = info.value.message
        assert msg.startswith("bridge /events: cannot reach the Orbit bridge at http://b.test:1")
        assert "text/event-stream" in msg and "'application/json'" in msg

    def test_reconnect_backs_off_and_resets_once_subscribed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Failed attempts wait longer each time; a stream that got its hello starts over."""
        attempts: list[int] = []
        done = threading.Event()

        class Recording:
            def delay(self, attempt: int) -> float:
                attempts.append(attempt)
                if len(attempts) >= 5:
                    done.set()
                return 0.001

        monkeypatch.setattr(events_mod, "RECONNECT", Recording())
        count = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal count
            count += 1
            if count in (2, 3):
                raise httpx.ConnectError("Connection refused")  # the bridge restarts
            return stream(sse("hello", "b3-0"))  # subscribed, then the stream ends

        with BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc:
            bc.register_callback("*", "*", "*", print)
            assert done.wait(10)
        assert attempts[:5] == [0, 1, 2, 0, 0]


def test_an_event_delivered_once_is_not_delivered_again() -> None:
    """A replay that overlaps what arrived before (same bridge, ids not newer) calls back
    once; a new bridge's ids start afresh; a gap is never taken for a repeat."""
    seen: list[str] = []
    done = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        return stream(
            sse("hello", "b1-0"), note("b1-1"), note("b1-2"), note("b1-2"), note("b1-1"),
            sse("gap", "b1-1", payload={"reason": "unknown event id"}),
            sse("hello", "b2-0"), note("b2-1"), note("odd-id"), note("odd-id"),
        )

    def cb(event: dict[str, Any]) -> None:
        seen.append(f"{event['kind']}:{event['id']}")
        if event["id"] == "odd-id" and seen.count("notification:odd-id") == 2:
            done.set()

    with BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc:
        bc.register_callback("*", "*", "*", cb)
        assert done.wait(5)
        assert bc.listener is not None and bc.listener.repeats >= 2
    assert seen[:6] == ["notification:b1-1", "notification:b1-2", "gap:b1-1", "notification:b2-1", "notification:odd-id", "notification:odd-id"]
