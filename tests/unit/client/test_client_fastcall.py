"""``BridgeClient.call``: the http.client path sends and raises exactly what the httpx path does.

A small HTTP/1.1 server in a thread stands in for the bridge and records what
arrives; each case runs once on the fast path (a plain ``BridgeClient``) and once
on httpx (``transport=httpx.HTTPTransport()`` keeps a client on httpx), and the two
must agree byte for byte on the request and on the exception.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from radical.orbit import errors
from radical.orbit.client import bridge as bridge_mod
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import free_port

TOKEN = "fastcall-secret-token"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class FakeBridge:
    """What to answer (status, body, delay) and what came in."""

    url: str = ""
    status: int = 200
    body: bytes = b'{"ok":true,"n":1}'
    content_type: str = "application/json"
    delay: float = 0.0
    chunked: bool = False  # answer in chunked transfer encoding
    close: str = ""  # "silently": close after answering without saying so; "header": say so; "no-answer": close instead
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def fake() -> Iterator[FakeBridge]:
    state = FakeBridge()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.seen.append(Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address))
            if state.delay:
                time.sleep(state.delay)
            if state.close == "no-answer":
                self.close_connection = True
                return
            self.send_response(state.status)
            self.send_header("content-type", state.content_type)
            if state.close == "header":
                self.send_header("connection", "close")
            if state.close:
                self.close_connection = True
            if state.chunked:
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                half = len(state.body) // 2
                for part in (state.body[:half], state.body[half:], b""):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                return
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def both(url: str, **kwargs: Any) -> list[BridgeClient]:
    """A client on the fast path and one kept on httpx, same settings."""
    fast = BridgeClient(url, token=TOKEN, **kwargs)
    slow = BridgeClient(url, token=TOKEN, transport=httpx.HTTPTransport(), **kwargs)
    assert fast._fast is not None and slow._fast is None
    return [fast, slow]


def test_request_and_answer_identical(fake: FakeBridge) -> None:
    body = {"sid": "s1", "task_id": "été ✓", "n": 1.5, "items": [{"a": None}]}
    answers = []
    for bc in both(fake.url, timeout=7):
        with bc:
            answers.append(bc.call("ep 1", "globus", "/get_task", body))
            answers.append(bc.call("ep 1", "globus", "task_wait", body, timeout=2.5))
    assert answers[0] == answers[2] == {"ok": True, "n": 1}
    fast, _, slow, _ = fake.seen
    assert fast.path == slow.path == "/ep%201/globus/get_task"
    assert fast.body == slow.body == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    for name in ("authorization", "user-agent", "content-type", "content-length", "x-orbit-timeout", "host"):
        assert fast.headers[name] == slow.headers[name], name
    assert fast.headers["x-orbit-timeout"] == "7" and fake.seen[1].headers["x-orbit-timeout"] == "2.5"
    assert fast.headers["authorization"] == f"Bearer {TOKEN}"


def test_connection_kept_alive(fake: FakeBridge) -> None:
    with BridgeClient(fake.url, token=TOKEN) as bc:
        for _ in range(5):
            bc.call("ep", "p", "r", {})
    assert len({s.peer for s in fake.seen}) == 1


@pytest.mark.parametrize(
    ("status", "payload", "cls"),
    [
        (404, errors.EndpointNotFoundError("endpoint 'ep' is not connected", endpoint="ep").to_payload("r1"), errors.EndpointNotFoundError),
        (401, errors.ConsentRequiredError("need data_access").to_payload("r2"), errors.ConsentRequiredError),
        (401, {"code": "unauthorized", "message": "bad token", "details": {}}, errors.AuthenticationError),
        (422, {"detail": [{"loc": ["body", "task_id"], "msg": "field required", "type": "missing"}]}, errors.ValidationError),
        (502, "<html>bad gateway</html>", errors.UpstreamError),
        (307, {"message": "moved"}, errors.OrbitError),
    ],
)
def test_errors_identical(fake: FakeBridge, status: int, payload: Any, cls: type[errors.OrbitError]) -> None:
    fake.status = status
    fake.body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    fake.content_type = "text/html" if isinstance(payload, str) else "application/json"
    raised = []
    for bc in both(fake.url):
        with bc, pytest.raises(errors.OrbitError) as info:
            bc.call("ep", "globus", "ls", {"sid": "s"})
        raised.append(info.value)
    assert isinstance(raised[0], cls)
    assert type(raised[0]) is type(raised[1])
    assert raised[0].message == raised[1].message and raised[0].message.startswith("ep/globus/ls: ")
    assert raised[0].request_id == raised[1].request_id
    assert TOKEN not in raised[0].message


def test_unreachable_identical() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    messages = []
    for bc in both(url):
        with bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("ep", "sysinfo", "info", {})
        messages.append(info.value.message)
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"ep/sysinfo/info: cannot reach the Orbit bridge at {url}")


def test_read_timeout(fake: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_mod, "_CLIENT_MARGIN", 0.0)
    fake.delay = 1.0
    messages = []
    for bc in both(fake.url):
        with bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("ep", "sysinfo", "sleep", {}, timeout=0.2)
        messages.append(info.value.message)
    assert messages[0] == messages[1] and "no answer in time (ReadTimeout)" in messages[0]


def test_bad_input_is_clear_before_sending(fake: FakeBridge) -> None:
    with BridgeClient(fake.url, token=TOKEN) as bc:
        with pytest.raises(errors.UsageError, match="timeout must be positive"):
            bc.call("ep", "p", "r", {}, timeout=0)
        with pytest.raises(errors.UsageError, match="x is the number nan"):
            bc.call("ep", "p", "r", {"x": float("nan")})
        with pytest.raises(errors.UsageError, match="x is a value of type object"):
            bc.call("ep", "p", "r", {"x": object()})
    assert fake.seen == []


@pytest.mark.parametrize("token", ["tök-en", "line\nbreak", "tab\there"])
def test_token_an_http_header_cannot_carry(token: str) -> None:
    with pytest.raises(errors.UsageError, match="printable ASCII") as info:
        BridgeClient("http://127.0.0.1:9", token=token)
    assert token not in info.value.message


def test_closed(fake: FakeBridge) -> None:
    bc = BridgeClient(fake.url, token=TOKEN)
    bc.close()
    with pytest.raises(errors.UsageError, match="ep/p/r: this BridgeClient is closed"):
        bc.call("ep", "p", "r", {})


@pytest.mark.parametrize("var", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"])
def test_proxy_in_environment_keeps_httpx(var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with BridgeClient("http://127.0.0.1:9") as bc:
        assert bc._fast is not None
    monkeypatch.setenv(var, "http://proxy.invalid:3128")
    with BridgeClient("http://127.0.0.1:9") as bc:
        assert bc._fast is None


def test_debug_log_names_the_call_not_the_token(fake: FakeBridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="radical.orbit")
    with BridgeClient(fake.url, token=TOKEN) as bc:
        bc.call("ep", "globus", "get_task", {"sid": "s"})
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"POST {fake.url}/ep/globus/get_task" in line and "200" in line for line in lines)
    assert not any(TOKEN in line for line in lines)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"items": [{"source": "/a", "destination": {"/b"}}]}, "items[0].destination is a value of type set"),
        ({"timeout": float("nan")}, "timeout is the number nan"),
        ({"label": "bad \ud800"}, "label is a string with a lone surrogate"),
        ({"filter": {(1, 2): "x"}}, "filter[(1, 2)] is a key of type tuple"),
        ({1, 2}, "the body is a value of type set"),
    ],
)
def test_unencodable_body_names_the_field_on_both_paths(fake: FakeBridge, body: Any, named: str) -> None:
    for bc in both(fake.url):
        with bc, pytest.raises(errors.UsageError) as info:
            bc.call("ep", "globus", "submit_transfer", body)
        assert info.value.message.startswith(f"ep/globus/submit_transfer: {named}, which cannot be sent as JSON")
    assert fake.seen == []


def test_paths_and_uuids_travel_as_strings(fake: FakeBridge) -> None:
    import uuid
    from pathlib import PurePosixPath

    body = {"path": PurePosixPath("/data/run 1"), "collection": uuid.UUID(int=7), "items": [{"source": PurePosixPath("/a")}]}
    for bc in both(fake.url):
        with bc:
            bc.call("ep", "globus", "ls", body)
    expected = {"path": "/data/run 1", "collection": "00000000-0000-0000-0000-000000000007", "items": [{"source": "/a"}]}
    assert [json.loads(s.body) for s in fake.seen] == [expected, expected]
    assert fake.seen[1].headers["content-type"] == "application/json"


def _peers(fake: FakeBridge) -> int:
    return len({s.peer for s in fake.seen})


def test_connection_closed_by_the_bridge_is_not_reused(fake: FakeBridge) -> None:
    """An idle connection the bridge closed (keep-alive timeout) is noticed before use."""
    fake.close = "silently"
    with BridgeClient(fake.url, token=TOKEN) as bc:
        for _ in range(3):
            assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
            time.sleep(0.05)  # the FIN arrives
    assert _peers(fake) == 3


def test_connection_close_header_is_honoured(fake: FakeBridge) -> None:
    fake.close = "header"
    with BridgeClient(fake.url, token=TOKEN) as bc:
        for _ in range(3):
            assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
        assert not bc._fast._idle  # type: ignore[union-attr]
    assert _peers(fake) == 3


def test_idle_connections_expire(fake: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    from radical.orbit.client import fastcall

    monkeypatch.setattr(fastcall, "_KEEPALIVE_EXPIRY", 0.0)
    with BridgeClient(fake.url, token=TOKEN) as bc:
        for _ in range(3):
            bc.call("ep", "p", "r", {})
    assert _peers(fake) == 3


def test_chunked_answer_identical(fake: FakeBridge) -> None:
    fake.chunked = True
    fake.body = json.dumps({"items": list(range(500))}).encode()
    answers = []
    for bc in both(fake.url):
        with bc:
            answers.append(bc.call("ep", "globus", "ls", {"sid": "s"}))
    assert answers[0] == answers[1] == {"items": list(range(500))}


def test_disconnect_without_answer_identical(fake: FakeBridge) -> None:
    fake.close = "no-answer"
    messages = []
    for bc in both(fake.url):
        with bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("ep", "globus", "ls", {"sid": "s"})
        messages.append(info.value.message)
    assert messages[0] == messages[1]
    assert "Server disconnected without sending a response." in messages[0]


def test_busy_pool_waits_then_times_out(fake: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every connection in use a call waits for one, up to its timeout."""
    from radical.orbit.client import fastcall

    monkeypatch.setattr(fastcall, "_MAX_CONNECTIONS", 1)
    monkeypatch.setattr(bridge_mod, "_CLIENT_MARGIN", 0.0)
    fake.delay = 0.6
    with BridgeClient(fake.url, token=TOKEN) as bc:
        first = threading.Thread(target=bc.call, args=("ep", "p", "slow", {}))
        first.start()
        time.sleep(0.2)
        with pytest.raises(errors.BridgeUnavailableError, match=r"no answer in time \(PoolTimeout\)"):
            bc.call("ep", "p", "r", {}, timeout=0.1)
        assert bc.call("ep", "p", "r", {}, timeout=5) == {"ok": True, "n": 1}  # waits for the slot
        first.join(5)
    assert [s.path for s in fake.seen] == ["/ep/p/slow", "/ep/p/r"]


def test_close_releases_idle_connections(fake: FakeBridge) -> None:
    bc = BridgeClient(fake.url, token=TOKEN)
    bc.call("ep", "p", "r", {})
    fast = bc._fast
    assert fast is not None and len(fast._idle) == 1
    conn = fast._idle[0][0]
    bc.close()
    assert not fast._idle and conn.sock is None


def test_url_with_a_path_prefix_identical(fake: FakeBridge) -> None:
    """A bridge behind a reverse proxy at ``https://host/orbit``: both paths keep the prefix."""
    for bc in both(fake.url + "/orbit/"):
        with bc:
            bc.call("ep", "globus", "get_task", {"sid": "s"})
    assert [s.path for s in fake.seen] == ["/orbit/ep/globus/get_task"] * 2
