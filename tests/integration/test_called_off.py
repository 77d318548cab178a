"""A request the bridge gave up on (504) is called off on the endpoint: its work stops,
except work with effects elsewhere, which ends whole.

Real processes: the Globus emulator (with latency injected), the bridge and an
endpoint, each started as the README starts them.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from globus_stack import LOCAL, TUTORIAL_1, GlobusStack, globus_stack, unique_dir
from ha_helpers import until

from radical.orbit import errors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Stack = Any  # tests/integration/conftest.py: OrbitStack
LATENCY = 1.5  # seconds each Transfer call takes at the emulator
GAVE_UP = 0.5  # the callers' deadline: every call below is a 504


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    root = Path(tempfile.mkdtemp(prefix="orbit-calledoff-", dir=tmp_path_factory.getbasetemp()))
    with globus_stack(root, endpoint=False) as s:
        # one Globus call at a time per identity: the rest wait in the identity's share
        s.add_endpoint("ep-globus", args=["-o", "globus.workers_per_identity=1"], RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)
        yield s


def transfer_calls(stack: GlobusStack, route: str) -> int:
    counters = stack.admin("GET", "counters")["counters"]
    return sum(n for key, n in counters.items() if key.endswith(route))


def endpoint_log(stack: GlobusStack) -> str:
    return "\n".join(p.read_text(errors="replace") for p in stack.logs.glob("endpoint-ep-globus*.log"))


def test_queued_calls_of_a_504_never_reach_globus(stack: GlobusStack) -> None:
    """Four ls calls given up on: the one running finishes on its thread, the three
    queued behind it in the identity's share are dropped, so a fresh call waits for
    one call, not four."""
    bc = stack.client()
    g = bc.get_endpoint_client("ep-globus").get_plugin("globus", access_token=stack.token()["access_token"])
    body = {"sid": g.sid, "collection": TUTORIAL_1, "path": "/~/share/godata/"}
    stack.admin("DELETE", "counters")
    stack.faults(latency=LATENCY)
    try:
        outcomes: list[BaseException | None] = []

        def abandoned() -> None:
            try:
                bc.call("ep-globus", "globus", "ls", body, timeout=GAVE_UP)
            except errors.OrbitError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)

        threads = [threading.Thread(target=abandoned) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(outcomes) == 4 and all(isinstance(o, errors.GatewayTimeoutError) for o in outcomes), outcomes
        listing = bc.call("ep-globus", "globus", "ls", body, timeout=30)
        assert sorted(e["name"] for e in listing["DATA"]) == ["file1.txt", "file2.txt", "file3.txt"]
        # the one that was running when its caller gave up, and the fresh one: nothing queued went out
        assert transfer_calls(stack, "/ls") == 2
        assert endpoint_log(stack).count("called off by the bridge") >= 4
    finally:
        stack.reset_faults()
        g.close()


def test_a_submission_given_up_on_is_still_tracked(stack: GlobusStack) -> None:
    """A transfer whose caller got a 504 while Globus took it is still submitted once,
    tracked by the session and told to its notifications, never half done."""
    bc = stack.client()
    g = bc.get_endpoint_client("ep-globus").get_plugin("globus", access_token=stack.token()["access_token"])
    body = {
        "sid": g.sid,
        "source": TUTORIAL_1,
        "destination": "local",
        "items": [{"source": "/~/share/godata/file1.txt", "destination": unique_dir() + "file1.txt"}],
        "label": "given up on",
    }
    stack.admin("DELETE", "counters")
    stack.faults(latency=LATENCY)
    try:
        with pytest.raises(errors.GatewayTimeoutError):
            bc.call("ep-globus", "globus", "submit_transfer", body, timeout=GAVE_UP)
        until(lambda: g.session_info()["tracked"] == 1, "the session tracks the transfer", 15)
    finally:
        stack.reset_faults()
    tasks = g.list_tasks(label="given up on")["DATA"]
    assert len(tasks) == 1
    assert transfer_calls(stack, "/transfer") == 1
    g.close()


def test_a_sleep_given_up_on_stops_and_holds_no_shutdown(orbit_stack: Any) -> None:
    """sysinfo's sleep, called off: the endpoint stops it at once, and a graceful stop
    afterwards has no request in flight to wait for."""
    stack: Stack = orbit_stack(test_routes=True)
    sysinfo = stack.client().get_endpoint_client("ep1").get_plugin("sysinfo")
    with pytest.raises(errors.GatewayTimeoutError):
        sysinfo._call("sleep", seconds=60, timeout=GAVE_UP)
    log_file = next(stack.log_dir.glob("endpoint-ep1*.log"))
    until(lambda: "called off by the bridge" in log_file.read_text(errors="replace"), "the endpoint logs the call off", 10)
    assert sysinfo.ping()  # the connection is fine
    sysinfo.close()
    start = time.monotonic()
    stack.endpoints["ep1"].stop()
    assert time.monotonic() - start < 10
    assert "in-flight request" not in log_file.read_text(errors="replace")
