"""The endpoint WebSocket spoken by hand: junk, bad names, and request/response correlation."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from radical.orbit import errors
from radical.orbit.models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_PROTOCOL_ERROR,
    PluginInfo,
    Register,
    Response,
    encode_body,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Stack = Any  # tests/integration/conftest.py: OrbitStack


def open_ws(stack: Stack, name: str, key: str | None = None) -> ClientConnection:
    """An endpoint socket for ``name``, with the bridge host's key (the stack's HOME) or ``key``."""
    return connect(stack.ws_url, additional_headers=stack.endpoint_headers(name, key), open_timeout=10)


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a ping (answered on the way)."""
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if frame.get("type") == "ping":
            ws.send(json.dumps({"type": "pong", "ts": frame["ts"]}))
            continue
        return frame


def assert_healthy(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health", timeout=10).json()["status"] == "ok"
    bc = stack.client()
    assert "ep1" in bc.list_endpoints()
    assert bc.get_endpoint_client("ep1").get_plugin("sysinfo").ping()


def refused(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error frame the bridge answers, and the close code that follows."""
    frame = recv_json(ws)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return frame, closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.parametrize(
    "junk",
    ["this is not json", b"\x00\x01\x02binary", "{}", '{"type": "bogus"}', '{"type": "register"}', '{"type": "pong", "ts": 1}', "[1, 2, 3]"],
    ids=["text", "binary", "empty-object", "unknown-type", "register-no-name", "not-register-first", "array"],
)
def test_junk_before_register(sysinfo_stack: Stack, junk: str | bytes) -> None:
    with open_ws(sysinfo_stack, "junk") as ws:
        ws.send(junk)
        frame, code = refused(ws)
    assert frame["type"] == "error" and frame["code"] and frame["message"]
    assert code == CLOSE_PROTOCOL_ERROR
    assert_healthy(sysinfo_stack)


@pytest.mark.parametrize(
    ("register", "close_code", "code"),
    [
        (Register(name="future", v=99), CLOSE_BAD_VERSION, "bad_version"),
        (Register(name="not-future"), CLOSE_PROTOCOL_ERROR, "name_mismatch"),
    ],
    ids=["version", "not-the-upgrade-name"],
)
def test_bad_registrations(sysinfo_stack: Stack, register: Register, close_code: int, code: str) -> None:
    with open_ws(sysinfo_stack, "future") as ws:
        ws.send(register.model_dump_json())
        frame, got = refused(ws)
    assert frame["type"] == "error" and frame["code"] == code
    assert (str(register.v) if code == "bad_version" else register.name) in frame["message"]
    assert got == close_code
    assert_healthy(sysinfo_stack)


@pytest.mark.parametrize(
    ("name", "status"), [("events", 400), ("health", 400), ("Health", 400), ("ep1", 403)], ids=["events", "health", "Health", "taken"]
)
def test_bad_names_refused_before_the_upgrade(sysinfo_stack: Stack, name: str, status: int) -> None:
    """A bridge route's name is refused with 400; a name held by another key (here `ep1`,
    held by the bridge host's key, tried with a key enrolled for `other`) with 403."""
    key = sysinfo_stack.enrolled("other")
    with pytest.raises(InvalidStatus) as info, open_ws(sysinfo_stack, name, key if status == 403 else None):
        raise AssertionError("the bridge accepted the WebSocket")
    assert info.value.response.status_code == status
    assert_healthy(sysinfo_stack)  # the real ep1 was not replaced


def test_hand_written_endpoint(sysinfo_stack: Stack) -> None:
    """Register by hand, send junk (error frame, still connected), answer relayed requests."""
    register = Register(name="manual", plugins=[PluginInfo(name="calc", version="9")], host={"hostname": "h"})
    with open_ws(sysinfo_stack, "manual") as ws:
        ws.send(register.model_dump_json())
        registered = recv_json(ws)
        assert registered["type"] == "registered" and registered["name"] == "manual"
        assert registered["heartbeat_interval"] > 0

        ws.send("garbage after registration")
        error = recv_json(ws)
        assert error["type"] == "error" and error["code"]
        ws.send(json.dumps({"type": "response", "id": "never-asked", "status": 200}))  # ignored (logged)

        bc = sysinfo_stack.client()
        assert "manual" in bc.list_endpoints()
        ec = bc.get_endpoint_client("manual")
        results: dict[str, Any] = {}

        def call(key: str) -> None:
            try:
                results[key] = ec.request("POST", "calc", f"add/{key}", params={"x": key}, content=key.encode() * 3, timeout=20)
            except errors.OrbitError as exc:
                results[key] = exc

        threads = [threading.Thread(target=call, args=(k,)) for k in ("one", "two")]
        for t in threads:
            t.start()
        requests = [recv_json(ws), recv_json(ws)]
        for req in requests:
            assert req["type"] == "request" and req["method"] == "POST"
            assert req["path"].startswith("/calc/add/")
            assert "x=" in req["query"]
            assert not any(k.lower() == "authorization" for k, _ in req["headers"])
        # answer in reverse order: each client still gets its own answer
        for req in reversed(requests):
            key = req["path"].rsplit("/", 1)[-1]
            body, enc = encode_body(f"answer-{key}".encode())
            ws.send(Response(id=req["id"], status=200, headers=[("x-key", key)], body=body, body_encoding=enc).model_dump_json())
        for t in threads:
            t.join(20)
        for key in ("one", "two"):
            resp = results[key]
            assert isinstance(resp, httpx.Response), resp
            assert resp.text == f"answer-{key}" and resp.headers["x-key"] == key

        # an answer that is an ErrorFrame referencing the request fails that request
        t = threading.Thread(target=call, args=("three",))
        t.start()
        req = recv_json(ws)
        ws.send(json.dumps({"type": "error", "code": "boom", "message": "calc exploded", "ref": req["id"]}))
        t.join(20)
        assert isinstance(results["three"], errors.OrbitError)
        assert results["three"].message.startswith("manual/calc/add/three: ")
    # the socket closed: the endpoint is gone
    deadline = time.monotonic() + 10
    while "manual" in bc.list_endpoints() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "manual" not in bc.list_endpoints()
    assert_healthy(sysinfo_stack)
