"""The bridge token: refused without it or with a wrong one over HTTP; the endpoint socket
wants an endpoint key, never a client token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from radical.orbit import errors

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


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (WRONG, 401), ({"Authorization": "Bearer integration-test-token"}, 403)],
    ids=["none", "wrong", "client-token"],
)
def test_websocket_refused_before_the_upgrade(sysinfo_stack: Stack, headers: dict[str, str], status: int) -> None:
    """An endpoint without a key the bridge knows never gets a WebSocket: the upgrade
    request is answered with an HTTP status (a client token is 403: it is known, and
    cannot register)."""
    with pytest.raises(InvalidStatus) as info, connect(
        sysinfo_stack.ws_url, additional_headers={**headers, "X-Orbit-Endpoint": "intruder"}, open_timeout=10
    ):
        raise AssertionError("the bridge accepted the WebSocket")
    assert info.value.response.status_code == status
    body = json.loads(info.value.response.body or b"{}")
    assert body["message"] and "integration-test-token" not in body["message"]
    assert "intruder" not in [e["name"] for e in sysinfo_stack.get("/endpoints").json()["endpoints"]]


def test_endpoint_with_wrong_key_exits_saying_so(sysinfo_stack: Stack) -> None:
    """A refused endpoint gives up at once with an exit code and a message about its key
    and how to enrol, and never logs the key."""
    with pytest.raises(RuntimeError, match=r"exited early \(code 1\)") as info:
        sysinfo_stack.add_endpoint("badkey", ("sysinfo",), env={"RADICAL_ORBIT_ENDPOINT_KEY": "orbit_ek_wrong-key-value"}, timeout=20)
    message = str(info.value)
    assert "does not accept this endpoint's key (from $RADICAL_ORBIT_ENDPOINT_KEY)" in message
    assert "radical-orbit bridge endpoints enroll badkey" in message
    assert "badkey" not in [e["name"] for e in sysinfo_stack.get("/endpoints").json()["endpoints"]]
    logs = sysinfo_stack.logs(tail=10_000)
    assert "wrong-key-value" not in logs and "integration-test-token" not in logs
