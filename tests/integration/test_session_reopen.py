"""A plugin client survives its endpoint restarting and hears of missed events (real processes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from radical.orbit.errors import SessionNotFoundError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.05)


def crash_and_restart(stack: Any, name: str = "ep1") -> None:
    """kill -9 the endpoint and start it again with the same name and HOME."""
    stack.kill_endpoint(name)
    stack.endpoints.pop(name).stop()  # (closes its log)
    stack.wait_listed(name, present=False)
    stack.add_endpoint(name)


def test_a_sysinfo_client_reopens_its_session_after_an_endpoint_crash(orbit_stack: Any) -> None:
    stack = orbit_stack()
    ec = stack.client().get_endpoint_client("ep1")
    sysinfo = ec.get_plugin("sysinfo")
    stays_broken = ec.get_plugin("sysinfo")
    host = sysinfo.info()["hostname"]
    stays_broken.register_session(reopen=False)
    first = sysinfo.sid
    crash_and_restart(stack)
    assert sysinfo.info()["hostname"] == host  # the unchanged script's next call just works
    assert sysinfo.sid != first and sysinfo.reopened == 1
    assert sysinfo.get_metrics()["cpu"]
    with pytest.raises(SessionNotFoundError, match="register_session"):
        stays_broken.info()  # it opted out: the script sees the restart


def test_a_gap_reaches_plugin_callbacks_of_both_styles_and_the_hook(orbit_stack: Any) -> None:
    stack = orbit_stack()
    sysinfo = stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    sysinfo.register_session()
    got: list[tuple[Any, ...]] = []
    hooked: list[dict[str, Any]] = []
    lock = threading.Lock()

    def ours(topic: str, payload: dict[str, Any]) -> None:
        with lock:
            got.append(("ours", topic, payload))

    def original(endpoint: str, plugin: str, topic: str, data: dict[str, Any]) -> None:
        with lock:
            got.append(("original", endpoint, plugin, topic))

    sysinfo.register_notification_callback(ours)
    sysinfo.register_notification_callback(original)
    sysinfo.register_notification_callback(lambda topic, payload: got.append(("load only", topic)), topic="load")
    sysinfo.on_gap = hooked.append
    stack.restart_bridge()  # the client resumes from an id the new bridge never issued
    wait_for(lambda: bool(hooked), what="the on_gap hook")
    with lock:
        gaps = [g for g in got if "gap" in g]
    assert ("original", "ep1", "sysinfo", "gap") in gaps
    assert any(g[0] == "ours" and g[2]["reason"] == "bridge restarted" for g in gaps)
    assert not any(g[0] == "load only" for g in got)
    assert hooked[0]["reason"] == "bridge restarted"
    # the session survived (only the bridge restarted): notifications flow on
    stack.wait_listed("ep1")
    sysinfo.watch(interval=0.2, count=2)
    wait_for(lambda: any(g[0] == "load only" for g in got), what="a load notification after the gap")
