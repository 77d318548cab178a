"""``BridgeClient.call``: the httpcore path sends and raises exactly what the httpx path does.

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
from radical.orbit.procs import free_port

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
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def fake() -> Iterator[FakeBridge]:
    state = FakeBridge()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.seen.append(Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address))
            if state.delay:
                time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("content-type", state.content_type)
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
