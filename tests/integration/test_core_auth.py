"""The bridge token: refused without it or with a wrong one, over HTTP and WebSocket."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from radical.orbit import errors
from radical.orbit.models.messages import CLOSE_UNAUTHORIZED, Register

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Stack = Any  # tests/integration/conftest.py: OrbitStack
WRONG = {"Authorization": "Bearer wrong-token-value"}


@pytest.mark.parametrize("headers", [{}, WRONG, {"Authorization": "Basic abc"}], ids=["none", "wrong", "not-bearer"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/endpoints"), ("GET", "/endpoints/ep1"), ("POST", "/endpoint/list"), ("GET", "/events"),
     ("POST", "/ep1/sysinfo/echo"), ("GET", "/ep1/sysinfo/ping"), ("DELETE", "/nope/x/y")],
)
def test_http_refused(sysinfo_stack: Stack, headers: dict[str, str], method: str, path: str) -> None:
    resp = httpx.request(method, f"{sysinfo_stack.url}{path}", headers=headers, timeout=10)
    assert resp.status_code == 401
    body = resp.json()
    assert body["code"] == "unauthorized" and body["message"]
    assert "integration-test-token" not in resp.text


def test_health_is_open(sysinfo_stack: Stack) -> None:
    resp = httpx.get(f"{sysinfo_stack.url}/health", timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


def test_client_errors_say_where_the_token_comes_from(sysinfo_stack: Stack) -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        sysinfo_stack.client(token="wrong-token-value").list_endpoints()
    msg = info.value.message
    assert "refused the token (taken from the argument)" in msg and "RADICAL_ORBIT_BRIDGE_TOKEN" in msg
    assert "wrong-token-value" not in msg and "integration-test-token" not in msg

    bc = sysinfo_stack.client(token=None)
    with pytest.raises(errors.AuthenticationError, match="requires a token and none was found"):
        bc.get_endpoint_client("ep1")
    with pytest.raises(errors.AuthenticationError, match="bridge /events"):
        bc.register_callback("*", "*", "*", print)


@pytest.mark.parametrize("headers", [{}, WRONG], ids=["none", "wrong"])
def test_websocket_refused(sysinfo_stack: Stack, headers: dict[str, str]) -> None:
    """An endpoint without the right token never registers."""
    register = Register(name="intruder").model_dump_json()
    try:
        with connect(sysinfo_stack.ws_url, additional_headers=headers, open_timeout=10) as ws:
            try:
                ws.send(register)
                frame = json.loads(ws.recv(timeout=10))
                assert frame["type"] == "error" and frame["code"] == "unauthorized"
                ws.recv(timeout=10)
                raise AssertionError("the bridge kept an unauthorized socket open")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == CLOSE_UNAUTHORIZED
    except InvalidStatus as exc:  # refusing in the handshake is fine too
        assert exc.response.status_code in (401, 403)
    assert "intruder" not in [e["name"] for e in sysinfo_stack.get("/endpoints").json()["endpoints"]]


def test_endpoint_with_wrong_token_exits_saying_so(sysinfo_stack: Stack) -> None:
    """A refused endpoint gives up at once with an exit code and a message about the token
    (the bridge's error and close frames arrive with its handshake answer; the endpoint
    used to miss them and retry forever), and never logs the token."""
    with pytest.raises(RuntimeError, match=r"exited early \(code 1\)") as info:
        sysinfo_stack.add_endpoint("badtoken", ("sysinfo",), token="wrong-token-value", timeout=20)
    assert "bridge refused the token" in str(info.value) and "RADICAL_ORBIT_BRIDGE_TOKEN" in str(info.value)
    assert "badtoken" not in [e["name"] for e in sysinfo_stack.get("/endpoints").json()["endpoints"]]
    logs = sysinfo_stack.logs(tail=10_000)
    assert "wrong-token-value" not in logs and "integration-test-token" not in logs
