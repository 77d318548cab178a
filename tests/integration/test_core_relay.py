"""The relay through real processes: methods, headers, query, binary bodies, and every error path."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import time
from typing import Any

import httpx
import pytest

from radical.orbit import errors
from radical.orbit.client.endpoint import EndpointClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Stack = Any  # tests/integration/conftest.py: OrbitStack
BINARY = bytes(range(256)) * 33 + b"\x00\xff\xfe"


@pytest.fixture(scope="module")
def ec(sysinfo_stack: Stack) -> EndpointClient:
    return sysinfo_stack.client().get_endpoint_client("ep1")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_with_headers_query_and_binary_body(ec: EndpointClient, method: str) -> None:
    params = [("a", "1"), ("a", "2"), ("b", "x y&z"), ("ü", "✓")]
    resp = ec.request(method, "sysinfo", "echo/some/deep/path", params=params, content=BINARY, headers={"X-Custom": "v1", "X-Other": "two words"})
    assert resp.status_code == 200
    assert resp.headers["x-echo-method"] == method
    seen = resp.json()
    assert seen["method"] == method
    assert seen["path"] == "/echo/some/deep/path"
    assert [tuple(p) for p in seen["params"]] == params
    assert seen["headers"]["x-custom"] == "v1" and seen["headers"]["x-other"] == "two words"
    assert base64.b64decode(seen["body"]) == BINARY and seen["body_size"] == len(BINARY)
    # the bridge adds a request id and never forwards its own token
    assert seen["headers"].get("x-request-id")
    assert "authorization" not in seen["headers"]
    assert "integration-test-token" not in resp.text


def test_head_and_status_relayed(ec: EndpointClient, sysinfo_stack: Stack) -> None:
    head = ec.request("HEAD", "sysinfo", "echo")
    assert head.status_code == 200 and head.headers["x-echo-method"] == "HEAD" and head.content == b""
    created = ec.request("POST", "sysinfo", "echo", headers={"x-echo-status": "201"}, json={"k": [1, 2]})
    assert created.status_code == 201 and base64.b64decode(created.json()["body"]) == b'{"k":[1,2]}'
    # a non-2xx answer of a plugin is relayed as is (raw client: status, headers, body)
    raw = httpx.post(f"{sysinfo_stack.url}/ep1/sysinfo/echo", headers={**sysinfo_stack.headers, "x-echo-status": "418"}, content=b"tea", timeout=10)
    assert raw.status_code == 418 and raw.headers["x-echo-method"] == "POST"
    assert base64.b64decode(raw.json()["body"]) == b"tea"


def test_binary_response(ec: EndpointClient) -> None:
    n = 300_000
    resp = ec.request("GET", "sysinfo", "echo/bytes", params={"n": n, "seed": 7})
    expected = random.Random(7).randbytes(n)
    assert resp.content == expected
    assert resp.headers["x-sha256"] == hashlib.sha256(expected).hexdigest()
    assert resp.headers["content-type"] == "application/octet-stream"


def test_largest_binary_response_fits_the_frame_limit(ec: EndpointClient) -> None:
    """sysinfo's largest answer (32 MiB, 43 MiB as base64) goes through the default
    limits; a larger one used to make the bridge drop the endpoint's socket (1009)."""
    from radical.orbit.plugins.sysinfo.plugin import MAX_BYTES

    resp = ec.request("GET", "sysinfo", "echo/bytes", params={"n": MAX_BYTES, "seed": 1})
    assert len(resp.content) == MAX_BYTES
    assert resp.headers["x-sha256"] == hashlib.sha256(random.Random(1).randbytes(MAX_BYTES)).hexdigest()


def test_odd_echo_status_is_ignored_not_a_500(sysinfo_stack: Stack) -> None:
    url = f"{sysinfo_stack.url}/ep1/sysinfo/echo"
    for odd in (b"\xb2\xb2\xb2", b"2" * 5000, b"600"):
        headers = [*sysinfo_stack.headers.items(), ("X-Echo-Status", odd)]
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200, odd[:10]


def test_large_request_body(ec: EndpointClient) -> None:
    body = random.Random(1).randbytes(2 * 2**20)
    seen = ec.request("PUT", "sysinfo", "echo", content=body).json()
    assert seen["body_size"] == len(body) and base64.b64decode(seen["body"]) == body


def test_unknown_endpoint_and_plugin(ec: EndpointClient) -> None:
    bc = ec.bridge
    with pytest.raises(errors.EndpointNotFoundError) as info:
        bc.relay("POST", "nope", "sysinfo", "info", json={})
    assert info.value.status_code == 404
    assert info.value.message.startswith("nope/sysinfo/info: ") and "'nope'" in info.value.message

    with pytest.raises(errors.PluginNotFoundError) as pinfo:
        ec.request("GET", "nosuchplugin", "x/y")
    msg = pinfo.value.message
    assert pinfo.value.status_code == 404
    assert msg.startswith("ep1/nosuchplugin/x/y: ") and "nosuchplugin" in msg.split(": ", 1)[1] and "sysinfo" in msg

    with pytest.raises(errors.EndpointNotFoundError, match=r"no endpoint named 'ghost' .*\(connected: ep1\)"):
        bc.get_endpoint_client("ghost")
    with pytest.raises(errors.PluginNotFoundError, match=r"endpoint 'ep1' has no plugin 'ghost' \(it has: sysinfo\)"):
        ec.get_plugin("ghost")


def test_session_and_validation_errors_name_the_route(ec: EndpointClient) -> None:
    with pytest.raises(errors.SessionNotFoundError) as info:
        ec.request("POST", "sysinfo", "info", json={"sid": "not-a-session"})
    assert info.value.status_code == 404
    assert info.value.message.startswith("ep1/sysinfo/info: ")
    assert "register_session" in info.value.message  # says what to do

    sid = ec.request("POST", "sysinfo", "register_session", json={}).json()["sid"]
    with pytest.raises(errors.ValidationError) as vinfo:
        ec.request("POST", "sysinfo", "sleep", json={"sid": sid, "seconds": "soon"})
    assert vinfo.value.status_code == 422
    assert vinfo.value.message.startswith("ep1/sysinfo/sleep: ") and "seconds" in vinfo.value.message
    with pytest.raises(errors.ValidationError, match="bogus"):
        ec.request("POST", "sysinfo", "info", json={"sid": sid, "bogus": 1})
    ec.request("POST", "sysinfo", "unregister_session", json={"sid": sid})


def test_gateway_timeout(ec: EndpointClient) -> None:
    sysinfo = ec.get_plugin("sysinfo")
    start = time.monotonic()
    with pytest.raises(errors.GatewayTimeoutError) as info:
        sysinfo._call("sleep", seconds=5, timeout=0.5)
    elapsed = time.monotonic() - start
    assert info.value.status_code == 504
    assert info.value.message.startswith("ep1/sysinfo/sleep: ")
    assert elapsed < 3.0, f"504 after {elapsed:.1f} s, X-Orbit-Timeout was 0.5 s"
    sysinfo.close()


def test_payload_too_large(orbit_stack: Any) -> None:
    stack = orbit_stack(bridge_args=["--max-body", "65536"], test_routes=True)
    ec = stack.client().get_endpoint_client("ep1")
    assert ec.request("POST", "sysinfo", "echo", content=b"x" * 60_000).json()["body_size"] == 60_000
    with pytest.raises(errors.PayloadTooLargeError) as info:
        ec.request("POST", "sysinfo", "echo", content=b"x" * 70_000)
    assert info.value.status_code == 413 and info.value.message.startswith("ep1/sysinfo/echo: ")
    assert ec.get_plugin("sysinfo").ping()  # the bridge is fine afterwards


def test_endpoint_lost_mid_request(orbit_stack: Any) -> None:
    stack = orbit_stack(test_routes=True)
    sysinfo = stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    sysinfo.info()  # open the session first
    outcome: dict[str, Any] = {}

    def slow() -> None:
        start = time.monotonic()
        try:
            sysinfo.sleep(20)
        except errors.OrbitError as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    stack.kill_endpoint("ep1")
    thread.join(15)
    assert not thread.is_alive()
    exc = outcome.get("error")
    assert isinstance(exc, errors.EndpointUnavailableError), outcome
    assert exc.status_code == 503 and exc.message.startswith("ep1/sysinfo/sleep: ")
    assert outcome["elapsed"] < 5.0


def test_disabled_plugin(orbit_stack: Any, tmp_path: Any) -> None:
    """An endpoint that cannot run a plugin lists it with the reason; calls say why."""
    shim = tmp_path / "shim" / "globus_sdk"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("globus_sdk hidden for this test")\n')
    stack = orbit_stack(plugins=("sysinfo", "globus"), env={"PYTHONPATH": str(shim.parent)})
    ec = stack.client().get_endpoint_client("ep1")
    plugins = ec.list_plugins()  # by name
    assert plugins["sysinfo"]["enabled"] is True
    assert plugins["globus"]["enabled"] is False and "globus-sdk" in plugins["globus"]["reason"]
    with pytest.raises(errors.PluginDisabledError) as info:
        ec.get_plugin("globus")
    assert "'globus' on endpoint 'ep1' is disabled: globus-sdk" in info.value.message
    with pytest.raises(errors.PluginDisabledError) as relayed:
        ec.request("POST", "globus", "register_session", json={})
    assert relayed.value.status_code == 503
    assert relayed.value.message.startswith("ep1/globus/register_session: ") and "globus-sdk" in relayed.value.message
