"""Clients and endpoints given several bridge URLs (real processes): two plain bridges in
one HOME (so one endpoint key and one token work on both), no backplane between them.

* A is down when everything starts: the endpoint and the client use B.
* Both up, everything on A, A killed (-9): the endpoint registers with B, the client's
  requests and its event stream move to B, and a session's notifications keep coming.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "failover-it-token"


class TwoBridges:
    """Bridges A and B on fixed ports in one HOME (each started on demand), endpoints, clients."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.ports = {"a": procs.free_port(), "b": procs.free_port()}
        self.bridges: dict[str, ServiceProcess] = {}
        self.endpoints: list[ServiceProcess] = []
        self.clients: list[BridgeClient] = []

    def url(self, which: str) -> str:
        return f"http://127.0.0.1:{self.ports[which]}"

    @property
    def both(self) -> str:
        return f"{self.url('a')},{self.url('b')}"

    def start_bridge(self, which: str) -> ServiceProcess:
        proc = procs.start_bridge(
            port=self.ports[which], token=TOKEN, env=scrubbed_environ(self.home), log_dir=self.root / f"logs-{which}"
        )
        self.bridges[which] = proc
        return proc

    def kill_bridge(self, which: str) -> None:
        proc = self.bridges.pop(which)
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(10)
        proc.stop()  # closes its log

    def start_endpoint(self, name: str, listed_on: str) -> ServiceProcess:
        """``radical-orbit endpoint --url A,B`` (sysinfo), waited for on bridge ``listed_on``."""
        argv = ["endpoint", "--name", name, "--url", self.both, "--plugins", "sysinfo", "--backoff-max", "1"]
        env = scrubbed_environ(self.home, RADICAL_ORBIT_LOG_LEVEL="debug")
        proc = ServiceProcess(f"endpoint-{name}", argv, env=env, log_dir=self.root / "logs-ep", url=self.both)
        self.endpoints.append(proc)
        proc.start()
        procs.wait_endpoint_listed(self.url(listed_on), TOKEN, name, proc=proc)
        return proc

    def client(self) -> BridgeClient:
        bc = BridgeClient(self.both, token=TOKEN, timeout=20)
        self.clients.append(bc)
        return bc

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.glob("logs-*/*.log")):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
            parts.append(f"----- {path} -----\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        for bc in self.clients:
            bc.close()
        for proc in [*self.endpoints, *self.bridges.values()]:
            proc.stop()


@pytest.fixture
def two(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TwoBridges]:
    stack = TwoBridges(tmp_path)
    try:
        yield stack
    finally:
        report = getattr(request.node, "orbit_report_call", None)
        if report is not None and report.failed:
            print(stack.logs())
        stack.stop()


def listed(url: str, name: str) -> bool:
    with BridgeClient(url, token=TOKEN) as bc:
        return name in bc.list_endpoints()


def wait_for(what: str, pred: Any, timeout: float = 30.0) -> float:
    """Seconds until ``pred()`` held (AssertionError naming ``what`` after ``timeout``)."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def test_first_bridge_down_second_used(two: TwoBridges) -> None:
    two.start_bridge("b")
    two.start_endpoint("ep1", listed_on="b")
    bc = two.client()
    assert bc.list_endpoints() == ["ep1"] and bc.url == two.url("b")
    s = bc.get_endpoint_client("ep1").get_plugin("sysinfo")
    assert s.ping()
    loads: list[dict[str, Any]] = []
    s.register_notification_callback(lambda topic, payload: loads.append(payload), topic="load")
    s.watch(interval=0.05, count=3)
    wait_for("three load notifications through B", lambda: len(loads) >= 3)
    s.close()


def test_killing_the_bridge_in_use_moves_everything_to_the_other(two: TwoBridges) -> None:
    two.start_bridge("a")
    two.start_bridge("b")
    two.start_endpoint("ep1", listed_on="a")
    bc = two.client()
    ec = bc.get_endpoint_client("ep1")
    assert bc.url == two.url("a")
    s = ec.get_plugin("sysinfo")
    s.info()
    loads: list[int] = []
    lock = threading.Lock()

    def on_load(topic: str, payload: dict[str, Any]) -> None:
        with lock:
            loads.append(int(payload["seq"]))

    s.register_notification_callback(on_load, topic="load")
    s.watch(interval=0.1)  # until the session closes
    wait_for("load notifications through A", lambda: len(loads) >= 3)

    two.kill_bridge("a")
    with lock:
        before = len(loads)
    moved = wait_for("ep1 listed on B", lambda: listed(two.url("b"), "ep1"))
    assert moved < 20, moved
    assert s.info()["hostname"]  # a POST: A refuses the connection, so B gets it
    assert bc.url == two.url("b")
    wait_for("load notifications through B", lambda: len(loads) >= before + 5)
    with lock:
        seqs = list(loads)
    assert seqs == sorted(seqs)  # one session's notifications, in order, across the move
    assert bc.listener is not None and bc.listener.url == f"{two.url('b')}/events"
    s.close()
