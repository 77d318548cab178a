"""The relay's limits and its distrust of endpoint answers, through TestClient:
malformed answers are 502s (one log line, no traceback), requests in flight are
capped per identity (429) and per endpoint (503), oversized notifications are
dropped, and every limit is a validated setting."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
from bridge_helpers import AUTH, TOKEN, FakeEndpoint, TestClient, echo, make_settings
from starlette.types import Scope

from radical.orbit.bridge import BridgeSettings, create_app
from radical.orbit.bridge.app import BridgeApp
from radical.orbit.bridge.auth import DEFAULT_IDENTITY, Authenticator
from radical.orbit.bridge.identities import IdentityStore
from radical.orbit.bridge.identity import Identity
from radical.orbit.errors import UpstreamError
from radical.orbit.models.messages import Request, Response

ALICE_TOKEN, BOB_TOKEN = "alice-token", "bob-token"


class Tokens(Authenticator):
    """Two more client identities next to the bridge token's admin, with fixed test
    tokens (the app's hook: ``app.tokens``); real per-user tokens are tested with the
    identity store itself."""

    IDENTITIES: ClassVar[dict[str, Identity]] = {TOKEN: DEFAULT_IDENTITY, ALICE_TOKEN: Identity("alice"), BOB_TOKEN: Identity("bob")}

    def __init__(self) -> None:
        super().__init__(TOKEN, IdentityStore())

    def identify(self, scope: Scope) -> Identity | None:
        for key, value in scope["headers"]:
            if key == b"authorization":
                return self.IDENTITIES.get(value.decode("latin-1").removeprefix("Bearer "))
        return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_with(**overrides: Any) -> BridgeApp:
    app = create_app(make_settings(**overrides))
    app.tokens = Tokens()
    return app


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def bridge_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("radical.orbit.bridge") and r.levelno >= logging.WARNING]


# -- malformed answers -----------------------------------------------------------------

#: (what the endpoint answers, as a raw response frame without its id; what the 502 names)
MALFORMED = {
    "bad base64": ({"status": 200, "body": "not base64!", "body_encoding": "base64"}, "not valid base64"),
    "truncated base64": ({"status": 200, "body": "aGk", "body_encoding": "base64"}, "not valid base64"),
    "CR/LF in a header value": ({"status": 200, "headers": [["x-a", "1\r\nset-cookie: evil=1"]]}, "line break (CR/LF)"),
    "LF in a header value": ({"status": 200, "headers": [["x-a", "1\nx"]]}, "line break (CR/LF)"),
    "NUL in a header value": ({"status": 200, "headers": [["x-a", "a\x00b"]]}, "a control character"),
    "header value beyond latin-1": ({"status": 200, "headers": [["x-a", "\u2713"]]}, "latin-1 cannot encode"),
    "CR/LF in a header name": ({"status": 200, "headers": [["x-a\r\nx-b", "1"]]}, "is not an HTTP token"),
    "space in a header name": ({"status": 200, "headers": [["x a", "1"]]}, "is not an HTTP token"),
    "empty header name": ({"status": 200, "headers": [["", "1"]]}, "is not an HTTP token"),
    "status 'x'": ({"status": "x"}, "status"),
    "status 1000": ({"status": 1000}, "the status 1000 is not a final HTTP status"),
    "status 100": ({"status": 100}, "the status 100 is not a final HTTP status"),
    "status 200.5": ({"status": 200.5}, "status"),
    "status null": ({"status": None}, "status"),
    "headers not a list": ({"status": 200, "headers": "x-a: 1"}, "headers"),
    "header value not a string": ({"status": 200, "headers": [["x-a", 1]]}, "headers"),
    "body not a string": ({"status": 200, "body": ["a"]}, "body"),
    "unknown body encoding": ({"status": 200, "body": "x", "body_encoding": "gzip"}, "body_encoding"),
    "lone surrogate in a text body": ({"status": 200, "body": "\ud800"}, "Invalid JSON"),  # refused by the frame parser
}


@pytest.mark.parametrize("answer", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_answer_is_502_with_one_log_line(answer: tuple[dict[str, Any], str], caplog: pytest.LogCaptureFixture) -> None:
    fields, fault = answer
    with TestClient(create_app(make_settings())) as tc, FakeEndpoint(tc) as ep:

        def handler(frame: Request) -> Response | None:
            if frame.path.endswith("/bad"):
                assert ep.ws is not None
                ep.ws.send_text(json.dumps({"type": "response", "id": frame.id, **fields}))
                return None
            return echo(frame)

        ep.serve(handler)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            resp = tc.get("/ep1/sysinfo/bad", headers=AUTH)
        error = resp.json()
        assert resp.status_code == 502 and error["code"] == "upstream_error", error
        assert error["message"].startswith("endpoint 'ep1' sent a malformed answer") and fault in error["message"], error
        assert error["details"]["endpoint"] == "ep1"
        records = bridge_records(caplog)
        assert len(records) == 1 and "ep1" in records[0].getMessage(), [r.getMessage() for r in records]
        assert records[0].exc_info is None and "Traceback" not in caplog.text
        assert "evil" not in records[0].getMessage()  # header values are never quoted (they may be secrets)
        # the bridge, the endpoint and the client carry on
        assert tc.get("/ep1/sysinfo/fine", headers=AUTH).status_code == 200


def test_well_formed_answers_keep_working() -> None:
    """What HTTP allows passes: a tab inside a value, blanks around it (dropped), any
    case of name (latin-1 values: test_bridge_live_limits.py, TestClient reads UTF-8)."""

    def handler(frame: Request) -> Response:
        headers = [("x-tab", " a\tb "), ("X-Upper", "v"), ("x-empty", "")]
        return Response(id=frame.id, status=201, headers=headers, body="aGk=", body_encoding="base64")

    with TestClient(create_app(make_settings())) as tc, FakeEndpoint(tc) as ep:
        ep.serve(handler)
        resp = tc.get("/ep1/sysinfo/x", headers=AUTH)
        assert resp.status_code == 201 and resp.content == b"hi"
        raw = dict(resp.headers.raw)
        assert raw[b"x-tab"] == b"a\tb" and raw[b"x-upper"] == b"v" and raw[b"x-empty"] == b""


def test_a_text_body_utf8_cannot_encode_is_502(caplog: pytest.LogCaptureFixture) -> None:
    """The frame parser refuses lone surrogates today; the relay does not rely on it."""
    relay = create_app(make_settings()).relay
    with caplog.at_level(logging.WARNING), pytest.raises(UpstreamError) as info:
        relay._answer(Response(id="r", status=200, body="a\ud800"), "ep1", "GET /ep1/p/x")
    assert info.value.status_code == 502 and "UTF-8 cannot encode" in info.value.message
    assert len(bridge_records(caplog)) == 1


# -- requests in flight ------------------------------------------------------------------


@pytest.fixture
def held() -> Iterator[tuple[TestClient, BridgeApp, threading.Event]]:
    """A bridge whose endpoint answers nothing until the event is set."""
    app = app_with(max_inflight_per_identity=2, max_inflight_per_endpoint=3)
    release = threading.Event()

    def handler(frame: Request) -> Response:
        release.wait(30)
        return echo(frame)

    with TestClient(app) as tc, FakeEndpoint(tc) as ep:
        ep.serve(handler)
        yield tc, app, release
        release.set()


def test_inflight_per_identity_is_429_with_retry_after(held: tuple[TestClient, BridgeApp, threading.Event]) -> None:
    tc, app, release = held
    with ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(tc.get, "/ep1/sysinfo/slow", headers=bearer(ALICE_TOKEN)) for _ in range(2)]
        wait_until(lambda: app.relay.inflight["alice"] == 2)
        refused = tc.get("/ep1/sysinfo/slow", headers=bearer(ALICE_TOKEN))
        error = refused.json()
        assert refused.status_code == 429 and error["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "1" and refused.headers["x-request-id"] == error["request_id"]
        assert "max_inflight_per_identity" in error["message"] and "'alice' already has 2 requests" in error["message"]
        assert error["details"]["setting"] == "max_inflight_per_identity" and error["details"]["limit"] == 2
        # another identity is not held back by alice's
        bobs = pool.submit(tc.get, "/ep1/sysinfo/slow", headers=bearer(BOB_TOKEN))
        wait_until(lambda: app.relay.inflight["bob"] == 1)
        release.set()
        assert [f.result(timeout=10).status_code for f in [*waiting, bobs]] == [200, 200, 200]
    assert not app.relay.inflight  # every count went back
    assert tc.get("/ep1/sysinfo/again", headers=bearer(ALICE_TOKEN)).status_code == 200


def test_inflight_per_endpoint_is_503_with_retry_after(held: tuple[TestClient, BridgeApp, threading.Event]) -> None:
    tc, app, release = held
    with ThreadPoolExecutor(4) as pool:
        callers = [ALICE_TOKEN, BOB_TOKEN, TOKEN]
        waiting = [pool.submit(tc.get, "/ep1/sysinfo/slow", headers=bearer(t)) for t in callers]
        wait_until(lambda: sum(app.relay.inflight.values()) == 3)
        refused = tc.get("/ep1/sysinfo/slow", headers=AUTH)
        error = refused.json()
        assert refused.status_code == 503 and error["code"] == "endpoint_unavailable"
        assert refused.headers["retry-after"] == "1"
        assert "endpoint 'ep1' already has 3 requests" in error["message"] and "max_inflight_per_endpoint" in error["message"]
        release.set()
        assert [f.result(timeout=10).status_code for f in waiting] == [200, 200, 200]
    assert app.registry.get("ep1").pending == {}


def test_a_timed_out_request_gives_its_slot_back() -> None:
    app = app_with(max_inflight_per_identity=1)
    with TestClient(app) as tc, FakeEndpoint(tc) as ep:
        ep.serve(lambda frame: None)
        for _ in range(3):
            resp = tc.get("/ep1/sysinfo/slow", headers={**bearer(ALICE_TOKEN), "X-Orbit-Timeout": "0.05"})
            assert resp.status_code == 504
        assert not app.relay.inflight


# -- notifications -----------------------------------------------------------------------


def notification(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "notification", "plugin": "sysinfo", "topic": "big", "payload": payload, "ts": 1.0, **fields}


def test_oversized_notification_is_dropped_and_the_endpoint_told(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(max_notification_bytes=1000, subscriber_queue_bytes=1000, event_buffer_bytes=10_000))
    with TestClient(app) as tc, FakeEndpoint(tc) as ep:
        assert ep.ws is not None
        before = app.hub.seq
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            ep.ws.send_json(notification({"blob": "x" * 2000}))
            error = ep.ws.receive_json()
        assert error["type"] == "error" and error["code"] == "notification_too_large"
        assert "max_notification_bytes (1000)" in error["message"] and "sysinfo/big" in error["message"]
        assert app.hub.seq == before  # not published
        records = bridge_records(caplog)
        assert len(records) == 1 and "max_notification_bytes" in records[0].getMessage()
        # the limit counts the payload, not the frame around it; multi-byte text by its UTF-8 size
        ep.ws.send_json(notification({"blob": "x" * 980}))
        ep.ws.send_json(notification({"blob": "\u00e9" * 600}))  # 1,200 bytes in UTF-8
        assert ep.ws.receive_json()["code"] == "notification_too_large"
        ep.ws.send_json({"type": "ping", "ts": 0.0})
        assert ep.ws.receive_json()["type"] == "pong"
        assert app.hub.seq == before + 1 and "x" * 980 in app.hub.buffer[-1].chunk


def test_notification_owner_scopes_the_event() -> None:
    app = create_app(make_settings())
    with TestClient(app) as tc, FakeEndpoint(tc) as ep:
        assert ep.ws is not None
        ep.ws.send_json(notification({"n": 1}, sid="s1", owner="alice"))
        ep.ws.send_json(notification({"n": 2}))
        ep.ws.send_json({"type": "ping", "ts": 0.0})
        assert ep.ws.receive_json()["type"] == "pong"
        assert [(e.topic, e.owner) for e in app.hub.buffer][-2:] == [("big", "alice"), ("big", None)]


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "max_inflight_per_identity",
        "max_inflight_per_endpoint",
        "max_held_answer_bytes",
        "event_buffer_bytes",
        "max_notification_bytes",
        "max_subscribers_per_identity",
        "subscriber_queue",
        "subscriber_queue_bytes",
    ],
)
def test_every_limit_is_a_validated_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=name):
        make_settings(**{name: 0})
    monkeypatch.setenv(f"RADICAL_ORBIT_BRIDGE_{name.upper()}", "300000")
    assert getattr(BridgeSettings(auth=False), name) == 300000


def test_queues_must_hold_the_largest_notification() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="subscriber_queue_bytes .* must be at least max_notification_bytes"):
        make_settings(max_notification_bytes=2 * 2**20, subscriber_queue_bytes=2**20)
    with pytest.raises(ValidationError, match="event_buffer_bytes .* must be at least max_notification_bytes"):
        make_settings(max_notification_bytes=2 * 2**20, event_buffer_bytes=2**20)
