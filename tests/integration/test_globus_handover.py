"""No notification lost or repeated, endpoint restarts a script does not see, retries that
never duplicate: the globus plugin end to end with real processes (emulator, bridge,
endpoint), the endpoint killed with SIGKILL and started again as after a crash.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from globus_stack import TUTORIAL_1, TUTORIAL_2, GlobusStack, globus_stack, unique_dir

from radical.orbit.errors import GatewayTimeoutError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

#: tasks that finish while their endpoint is down
BURST = 40


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    with globus_stack(tmp_path_factory.mktemp("globus-handover")) as st:
        yield st


class Inbox:
    """Notifications delivered to a callback, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        with self.cond:
            self.items.append((topic, payload))
            self.cond.notify_all()

    def statuses(self, task_id: str) -> list[str]:
        with self.cond:
            return [p["status"] for t, p in self.items if t == "transfer_status" and p.get("task_id") == task_id]

    def wait(self, pred: Callable[[], bool], timeout: float = 60.0, what: str = "notifications") -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} not received within {timeout} s; got {len(self.items)}: {self.items[-5:]}")
                self.cond.wait(left)


@contextlib.contextmanager
def busy(on: bool) -> Iterator[None]:
    """A client process that is busy elsewhere: a thread spinning on the interpreter."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(20_000))

    thread = threading.Thread(target=spin, daemon=True) if on else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(5)


def until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.1)


def small_transfer(g: Any, label: str) -> str:
    items = [{"source": "/~/share/godata/file1.txt", "destination": unique_dir() + "f.txt"}]
    return str(g.submit_transfer(TUTORIAL_1, "local", items, label=label)["task_id"])


def settled(g: Any, inbox: Inbox) -> None:
    """Wait until every notification raised so far has been delivered: the endpoint sends
    them in order on one connection, so once a new task's first one arrives, all did."""
    marker = small_transfer(g, "marker")
    inbox.wait(lambda: bool(inbox.statuses(marker)), what="the marker task's first notification")


@pytest.mark.parametrize("client_busy", [False, True], ids=["idle-client", "busy-client"])
def test_tasks_that_finished_while_the_endpoint_was_down_are_each_told_once(stack: GlobusStack, client_busy: bool) -> None:
    tok = stack.token()
    g = stack.globus(access_token=tok["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox, topic="transfer_status")
    stack.faults(bandwidth={TUTORIAL_1: 1})  # every task stalls until the endpoint is gone
    try:
        ids = [small_transfer(g, f"burst-{n}") for n in range(BURST)]
        stack.kill_endpoint("ep-globus")
    finally:
        stack.faults(bandwidth={})
    until(lambda: all(stack.emulator_tasks(tok["access_token"])[t]["status"] == "SUCCEEDED" for t in ids), 90, "the tasks end")
    stack.restart_endpoint()
    with busy(client_busy):
        g.register_session(access_token=tok["access_token"])  # the script re-attaches its tasks
        inbox.wait(lambda: all("SUCCEEDED" in inbox.statuses(t) for t in ids), what="every task's SUCCEEDED")
    settled(g, inbox)
    told = Counter(t for t in ids for s in inbox.statuses(t) if s == "SUCCEEDED")
    assert set(told.values()) == {1}, told  # each once, whichever of the client's sessions told it
    info = g.session_info()
    assert info["tracked"] >= BURST and info["active"] <= 1  # the ended ones are not polled (the marker may be)
    g.close()


def slow_source(stack: GlobusStack, size: int) -> str:
    """A file on tutorial 2 read at 100 kB/s, so a transfer of it lasts ``size / 100 kB`` seconds."""
    name = f"slow-{time.monotonic_ns()}.bin"
    stack.write("t2", f"home/dev/{name}", b"\0" * size)
    stack.faults(bandwidth={TUTORIAL_2: 100_000})
    return f"/~/{name}"


def test_a_script_waiting_on_a_task_does_not_see_its_endpoint_crash(stack: GlobusStack) -> None:
    """kill -9 mid-transfer, start the endpoint again: task_wait and the callback see SUCCEEDED,
    and the script's code is that of a script that never heard of restarts."""
    g = stack.globus(access_token=stack.token()["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox)
    src = slow_source(stack, 800_000)
    try:
        tid = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "s.bin"}], label="crash")["task_id"]
        outcome: dict[str, Any] = {}

        def script() -> None:
            try:
                outcome.update(g.task_wait(tid, timeout=150, polling_interval=1))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = repr(exc)

        waiter = threading.Thread(target=script)
        waiter.start()
        inbox.wait(lambda: any(t == "transfer_progress" and p["task_id"] == tid for t, p in inbox.items), what="progress")
        stack.kill_endpoint("ep-globus")
        stack.restart_endpoint()
        waiter.join(170)
        assert not waiter.is_alive()
        assert outcome.get("status") == "SUCCEEDED" and outcome.get("completed") is True, outcome
        inbox.wait(lambda: "SUCCEEDED" in inbox.statuses(tid), what="SUCCEEDED through the callback")
    finally:
        stack.faults(bandwidth={})
    assert g.reopened >= 1
    g.close()


def test_a_script_that_only_listens_is_reattached_when_the_endpoint_is_back(stack: GlobusStack) -> None:
    """No call at all after the crash: the client notices the endpoint connecting again."""
    g = stack.globus(access_token=stack.token()["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox, topic="transfer_status")
    stack.faults(bandwidth={TUTORIAL_1: 1})
    try:
        tid = small_transfer(g, "listener")
        inbox.wait(lambda: bool(inbox.statuses(tid)), what="ACTIVE")  # (a crash may take an unsent one along)
        stack.kill_endpoint("ep-globus")
    finally:
        stack.faults(bandwidth={})
    stack.restart_endpoint()
    inbox.wait(lambda: "SUCCEEDED" in inbox.statuses(tid), what="SUCCEEDED after the restart")
    assert inbox.statuses(tid) == ["ACTIVE", "SUCCEEDED"]
    g.close()


def test_a_new_token_tells_nothing_twice(stack: GlobusStack) -> None:
    """Re-registering (token renewal) hands the tasks over: the ended one is neither told
    nor fetched again, the running one is told once when it ends."""
    g = stack.globus(access_token=stack.token()["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox, topic="transfer_status")
    done = small_transfer(g, "done-before")
    assert g.task_wait(done, timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
    inbox.wait(lambda: "SUCCEEDED" in inbox.statuses(done))
    stack.faults(bandwidth={TUTORIAL_1: 1})
    try:
        running = small_transfer(g, "running")
        first = g.sid
        g.register_session(access_token=stack.token()["access_token"])
        assert g.sid != first
        info = g.session_info()
        assert info["poller"]["notifications"] == 0 and info["poller"]["task_list_calls"] <= 1, info
        assert info["tracked"] == 2 and info["active"] == 1
    finally:
        stack.faults(bandwidth={})
    assert g.task_wait(running, timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
    settled(g, inbox)
    assert inbox.statuses(done) == ["ACTIVE", "SUCCEEDED"]
    assert inbox.statuses(running) == ["ACTIVE", "SUCCEEDED"]
    g.close()


@pytest.mark.parametrize("kind", ["transfer", "delete"])
def test_a_stalled_submission_retried_with_its_submission_id_makes_one_task(stack: GlobusStack, kind: str) -> None:
    tok = stack.token()
    bc = stack.client(timeout=1.0)  # the bridge gives up on the endpoint after 1 s: a 504
    g = bc.get_endpoint_client("ep-globus").get_plugin("globus", access_token=tok["access_token"])
    label = f"stalled-{kind}-{time.monotonic_ns()}"
    route = "transfer" if kind == "transfer" else "delete"

    def submit(**kw: Any) -> dict[str, Any]:
        if kind == "transfer":
            items = [{"source": "/~/share/godata/file2.txt", "destination": unique_dir() + "f.txt"}]
            return dict(g.submit_transfer(TUTORIAL_1, "local", items, label=label, **kw))
        return dict(g.delete("local", ["/it-nothing-here/"], label=label, ignore_missing=True, **kw))

    stack.faults(latency=3.0, routes=rf"^/v0\.10/{route}$")  # Globus answers submissions late
    try:
        with pytest.raises(GatewayTimeoutError) as info:
            submit()
        err = info.value
        sub_id = err.details["submission_id"]
        assert err.status_code == 504 and f"retry with submission_id='{sub_id}'" in err.message
        assert "may still run" in str(err)
        # the natural retry, patient this time; the first request is still running on the
        # endpoint and reaches Globus first: the retry gets its task
        bc.timeout = 30.0
        again = submit(submission_id=sub_id)
    finally:
        stack.reset_faults()
    mine = [t["task_id"] for t in stack.emulator_tasks(tok["access_token"]).values() if t["label"] == label]
    assert mine == [again["task_id"]]
    assert submit(submission_id=sub_id)["task_id"] == again["task_id"]
    g.close()
