"""Plugin sessions through real processes: the caller's identity reaches the plugin
(a client cannot claim another), the session is its owner's, and sysinfo's test
routes are off unless the endpoint turns them on."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from radical.orbit import errors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Stack = Any  # tests/integration/conftest.py: OrbitStack

#: the identity the bridge's one token stands for (docs: the default identity)
DEFAULT_IDENTITY = "admin"


def test_sysinfo_test_routes_are_off_by_default(orbit_stack: Any) -> None:
    stack = orbit_stack()
    ec = stack.client().get_endpoint_client("ep1")
    sysinfo = ec.get_plugin("sysinfo")
    for call in (lambda: sysinfo.echo("POST", json={"x": 1}), lambda: sysinfo.echo_bytes(1000), lambda: sysinfo.sleep(0.01)):
        with pytest.raises(errors.NotFoundError) as info:
            call()
        assert info.value.status_code == 404 and "-o sysinfo.test_routes=true" in info.value.message
    assert sysinfo.ping() and sysinfo.info()["cpu_count"] >= 1  # the rest is served as ever


def test_the_plugin_sees_the_bridges_identity_not_one_the_client_claims(orbit_stack: Any) -> None:
    stack = orbit_stack(test_routes=True)
    ec = stack.client().get_endpoint_client("ep1")
    seen = ec.get_plugin("sysinfo").echo("POST", headers={"X-Orbit-Identity": "mallory"}, content=b"hi")
    assert seen["headers"]["x-orbit-identity"] == DEFAULT_IDENTITY
    raw = httpx.post(
        f"{stack.url}/ep1/sysinfo/echo", headers={**stack.headers, "x-orbit-identity": "mallory"}, content=b"", timeout=10
    )
    assert raw.status_code == 200 and raw.json()["headers"]["x-orbit-identity"] == DEFAULT_IDENTITY


def test_a_session_and_its_notifications_stay_with_the_client_that_opened_it(orbit_stack: Any) -> None:
    stack = orbit_stack()
    sysinfo = stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_load(topic: str, payload: dict[str, Any]) -> None:
        got.append(payload)
        if payload.get("last"):
            done.set()

    sysinfo.register_notification_callback(on_load, topic="load")
    sysinfo.watch(interval=0.1, count=3)
    assert done.wait(30), got
    assert [p["seq"] for p in got] == [1, 2, 3]
    sid = sysinfo.sid
    assert sid is not None
    # the sid alone, from another process of the same identity, still works: ownership is
    # the identity's, not the connection's
    other = stack.client().get_endpoint_client("ep1")
    assert other.request("POST", "sysinfo", "info", json={"sid": sid}).json()["cpu_count"] >= 1
    sysinfo.close()
    deadline = time.monotonic() + 10
    while True:  # unregistered: 410 to its owner
        try:
            other.request("POST", "sysinfo", "info", json={"sid": sid})
        except errors.SessionExpiredError:
            break
        assert time.monotonic() < deadline, "the session did not close"
        time.sleep(0.1)
