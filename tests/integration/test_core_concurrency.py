"""Many requests at once: no head-of-line blocking, and no answer ever reaches the wrong client."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from radical.orbit.client.bridge import BridgeClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Stack = Any  # tests/integration/conftest.py: OrbitStack


def test_slow_request_does_not_block_fast_ones(sysinfo_stack: Stack) -> None:
    sysinfo = sysinfo_stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    sysinfo.info()
    slow_done = threading.Event()

    def slow() -> None:
        sysinfo.sleep(3.0)
        slow_done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)  # the slow one is in flight on the endpoint
    start = time.monotonic()
    for _ in range(10):
        assert sysinfo.info()["hostname"]
        assert sysinfo.ping()
    fast = time.monotonic() - start
    assert not slow_done.is_set(), "the fast calls waited for the slow one"
    assert fast < 2.5, f"20 fast calls took {fast:.2f} s next to a slow one"
    thread.join(10)
    assert slow_done.is_set()


def test_many_in_flight_on_one_endpoint(sysinfo_stack: Stack) -> None:
    sysinfo = sysinfo_stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    sysinfo.info()
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        slept = list(pool.map(lambda _: sysinfo.sleep(1.0), range(16)))
    elapsed = time.monotonic() - start
    assert all(s >= 0.99 for s in slept)
    assert elapsed < 4.0, f"16 concurrent 1 s requests took {elapsed:.1f} s: they were serialized"


def _own_answers(bc: BridgeClient, tag: str, rounds: int) -> list[str]:
    """Echo ``rounds`` requests carrying ``tag``; returns any mismatch."""
    ec = bc.get_endpoint_client("ep1")
    bad = []
    for i in range(rounds):
        mark = f"{tag}-{i}"
        seen = ec.request("POST", "sysinfo", f"echo/{mark}", params={"mark": mark}, headers={"x-mark": mark}, content=mark.encode()).json()
        got = (seen["path"], seen["params"], seen["headers"].get("x-mark"), base64.b64decode(seen["body"]).decode())
        if got != (f"/echo/{mark}", [["mark", mark]], mark, mark):
            bad.append(f"{mark} got {got}")
    return bad


def test_32_concurrent_clients_get_their_own_responses(sysinfo_stack: Stack) -> None:
    """Regression: the original Orbit let concurrent clients receive each other's responses."""
    clients = [sysinfo_stack.client() for _ in range(32)]
    barrier = threading.Barrier(32)

    def run(index: int) -> list[str]:
        barrier.wait(30)
        return _own_answers(clients[index], f"c{index}", 15)

    with ThreadPoolExecutor(32) as pool:
        mismatches = [m for ms in pool.map(run, range(32)) for m in ms]
    assert mismatches == []


def test_one_shared_client_many_threads(sysinfo_stack: Stack) -> None:
    bc = sysinfo_stack.client()
    with ThreadPoolExecutor(32) as pool:
        mismatches = [m for ms in pool.map(lambda i: _own_answers(bc, f"t{i}", 10), range(32)) for m in ms]
    assert mismatches == []


def test_plugin_calls_from_many_threads_get_their_own_answers(sysinfo_stack: Stack) -> None:
    """The JSON call path (the http.client pool PluginClient methods use) under 32 threads."""
    bc = sysinfo_stack.client()

    def run(index: int) -> list[str]:
        bad = []
        for i in range(10):
            mark = f"j{index}-{i}"
            seen = bc.call("ep1", "sysinfo", f"echo/{mark}", {"mark": mark, "n": i})
            body = json.loads(base64.b64decode(seen["body"]))
            if (seen["path"], body) != (f"/echo/{mark}", {"mark": mark, "n": i}):
                bad.append(f"{mark} got {seen['path']} {body}")
        return bad

    with ThreadPoolExecutor(32) as pool:
        mismatches = [m for ms in pool.map(run, range(32)) for m in ms]
    assert mismatches == []
