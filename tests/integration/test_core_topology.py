"""Endpoints connect, are listed, disconnect, are dropped and reconnect (real processes)."""

from __future__ import annotations

import queue
import signal
import time
from typing import Any

import httpx
import pytest

from radical.orbit.client.bridge import BridgeClient

StackFactory = Any  # tests/integration/conftest.py: orbit_stack(**kwargs) -> OrbitStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def next_event(
    q: queue.Queue[dict[str, Any]], topic: str, timeout: float = 10.0, *, endpoint: str | None = None
) -> dict[str, Any]:
    """The next event on ``q`` with ``topic`` (and ``endpoint``, if given); others are skipped."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {topic!r} event within {timeout} s; saw {seen}")
        try:
            event = q.get(timeout=left)
        except queue.Empty:
            continue
        if event.get("topic") == topic and endpoint in (None, event.get("endpoint")):
            return event
        seen.append((event.get("kind"), event.get("topic")))


def topology_queue(bc: BridgeClient) -> queue.Queue[dict[str, Any]]:
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    bc.register_callback("*", "*", "*", q.put)
    return q


def test_endpoint_connects_and_is_listed(orbit_stack: StackFactory) -> None:
    stack = orbit_stack(endpoint=None)
    bc = stack.client()
    assert bc.list_endpoints() == []
    events = topology_queue(bc)

    stack.add_endpoint("ep1", ("sysinfo",))
    event = next_event(events, "endpoint_connected")
    assert event["kind"] == "topology" and event["endpoint"] == "ep1" and event["plugin"] is None
    assert event["id"] and isinstance(event["payload"], dict)

    assert bc.list_endpoints() == ["ep1"]
    (info,) = bc.endpoints()
    assert info["name"] == "ep1" and info["alive"] is True and info["version"]
    assert info["host"]["hostname"]
    assert info["connected_at"] <= info["last_seen"] <= time.time() + 1
    (plugin,) = info["plugins"]
    assert plugin["name"] == "sysinfo" and plugin["enabled"] is True and plugin["reason"] is None
    # the same through every discovery route
    assert stack.get("/endpoints/ep1").json()["name"] == "ep1"
    posted = httpx.post(f"{stack.url}/endpoint/list", headers=stack.headers, timeout=10)
    assert [e["name"] for e in posted.json()["endpoints"]] == ["ep1"]
    health = httpx.get(f"{stack.url}/health", timeout=10).json()  # no token needed, so it tells nothing more
    assert health == {"status": "ok"}


def test_endpoint_disconnect_is_noticed(orbit_stack: StackFactory) -> None:
    """A killed endpoint leaves the list at once and clients get a topology event."""
    stack = orbit_stack()
    bc = stack.client()
    events = topology_queue(bc)
    stack.kill_endpoint("ep1")
    event = next_event(events, "endpoint_disconnected")
    assert event["endpoint"] == "ep1" and event["kind"] == "topology"
    assert bc.list_endpoints() == []


def test_silent_endpoint_is_dropped_then_reconnects(orbit_stack: StackFactory) -> None:
    """An endpoint that stops answering (SIGSTOP) is dropped within ~3 heartbeats."""
    stack = orbit_stack(bridge_args=["--heartbeat", "0.5"])
    bc = stack.client()
    events = topology_queue(bc)
    stopped = time.monotonic()
    stack.kill_endpoint("ep1", signal.SIGSTOP)
    try:
        event = next_event(events, "endpoint_dropped", timeout=10)
        elapsed = time.monotonic() - stopped
        assert event["endpoint"] == "ep1"
        assert elapsed < 4.0, f"dropped after {elapsed:.1f} s, expected about 3 x 0.5 s"
        assert bc.list_endpoints() == []
    finally:
        stack.kill_endpoint("ep1", signal.SIGCONT)
    # once running again it notices the closed socket, reconnects and re-registers
    next_event(events, "endpoint_connected", timeout=30)
    assert bc.wait_for_endpoint("ep1", timeout=10)["alive"] is True
    assert bc.get_endpoint_client("ep1").get_plugin("sysinfo").info()["hostname"]


def test_endpoint_reconnects_after_bridge_restart(orbit_stack: StackFactory) -> None:
    """The bridge restarts on the same port: the endpoint and the client's event stream come back."""
    stack = orbit_stack()
    bc = stack.client()
    events = topology_queue(bc)
    listener = bc.listener
    assert listener is not None and listener.connects == 1

    stack.restart_bridge()
    info = bc.wait_for_endpoint("ep1", timeout=45)
    assert info["alive"] is True
    sysinfo = bc.get_endpoint_client("ep1").get_plugin("sysinfo")
    assert sysinfo.info()["hostname"]

    # the listener reconnected by itself; its old id is from another boot: a gap event
    gap: dict[str, Any] | None = None
    deadline = time.monotonic() + 30
    kinds: list[str] = []
    while gap is None and time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.5)
        except queue.Empty:
            continue
        kinds.append(str(event.get("kind")))
        if event.get("kind") == "gap":
            gap = event
    assert gap is not None, f"no gap event after the bridge restarted; saw {kinds}"
    assert listener.connects >= 2
    # and live events flow again through the same callback
    stack.add_endpoint("ep2", ("sysinfo",))
    next_event(events, "endpoint_connected", endpoint="ep2")


def test_endpoint_exits_promptly_while_a_globus_call_hangs(orbit_stack: StackFactory) -> None:
    """SIGTERM while a plugin worker thread waits on a Globus that never answers: the
    in-flight call is failed, and the process exits instead of sitting in the SDK's
    60 s read (Python would otherwise wait for that thread at exit)."""
    import socket
    import threading

    pytest.importorskip("globus_sdk")
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # accepts connections, never answers
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/"
    try:
        stack = orbit_stack(
            plugins=("globus",),
            env={"GLOBUS_SDK_SERVICE_URL_TRANSFER": url, "GLOBUS_SDK_SERVICE_URL_AUTH": url},
            endpoint_args=("--shutdown-grace", "1"),
        )
        bc = stack.client()
        globus = bc.get_endpoint_client("ep1").get_plugin("globus")
        globus.register_session(access_token="hangs-forever-token", local_collection="6c54cade-bde5-45c1-bdea-f4bd71dba2cc")
        outcome: list[BaseException | dict[str, Any]] = []
        caller = threading.Thread(target=lambda: outcome.append(_try(globus.ls, "local", "/")), daemon=True)
        caller.start()
        time.sleep(1.0)  # the ls is now inside the SDK, waiting on the socket
        proc = stack.endpoints["ep1"]
        t0 = time.monotonic()
        code = proc.stop(timeout=30)
        took = time.monotonic() - t0
        caller.join(10)
        assert code == 0 and took < 8, (code, took, proc.log_text()[-2000:])
        assert outcome and isinstance(outcome[0], Exception), outcome  # failed clearly, not hung
        assert "not waiting for" in proc.log_text()
    finally:
        hole.close()


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test looks at what came back
        return exc
