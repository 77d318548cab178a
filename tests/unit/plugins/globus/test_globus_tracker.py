"""TaskTracker and PollPacing with plain task documents (dicts, as Globus returns them),
a recording notify and a hand-driven clock: no globus-sdk, no TransferClient."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from radical.orbit.plugins.globus.options import PollSettings
from radical.orbit.plugins.globus.tracker import (
    MIN_DELAY,
    STATUS_KEYS,
    PollPacing,
    TaskTracker,
)

A = "0d6e5b8e-0000-4000-8000-00000000000a"
B = "0d6e5b8e-0000-4000-8000-00000000000b"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Notes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        self.seen.append((topic, payload))

    def topic(self, topic: str) -> list[dict[str, Any]]:
        return [p for t, p in self.seen if t == topic]


def doc(task_id: str, status: str = "ACTIVE", **fields: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "type": "TRANSFER",
        "status": status,
        "label": None,
        "nice_status": "OK" if status == "ACTIVE" else None,
        "is_ok": True if status == "ACTIVE" else None,
        "bytes_transferred": 0,
        "files_transferred": 0,
        "faults": 0,
        **fields,
    }


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notes() -> Notes:
    return Notes()


@pytest.fixture
def tracker(notes: Notes, clock: Clock) -> TaskTracker:
    return TaskTracker(PollSettings(), notes, name="test session", clock=clock)


def test_the_module_does_not_import_globus_sdk() -> None:
    code = (
        "import sys\n"
        "sys.modules['globus_sdk'] = None  # any import of it fails\n"
        "import radical.orbit.plugins.globus.tracker\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_an_accepted_task_is_announced_once(tracker: TaskTracker, notes: Notes) -> None:
    t = tracker.accepted(A, status="ACTIVE", label="L", kind="TRANSFER", fail_fast=False)
    again = tracker.accepted(A, status="ACTIVE", label="L", kind="TRANSFER", fail_fast=False)  # a duplicate submission
    assert again is t and not t.done
    assert notes.seen == [
        ("transfer_status", {"task_id": A, "status": "ACTIVE", "label": "L", "bytes_transferred": 0, "files_transferred": 0, "nice_status": None})
    ]
    assert tuple(notes.seen[0][1]) == STATUS_KEYS
    assert tracker.active_ids() == [A] and tracker.notifications == 1


def test_status_changes_are_notified_once_each(tracker: TaskTracker, notes: Notes) -> None:
    tracker.watch(A)
    assert tracker.fold(doc(A, label="from globus")).changed  # first state known
    assert not tracker.fold(doc(A)).changed  # nothing new: no notification
    assert tracker.fold(doc(A, nice_status="Queued")).changed  # nice_status moved on
    assert tracker.fold(doc(A, "SUCCEEDED", bytes_transferred=7, files_transferred=1)).changed
    statuses = notes.topic("transfer_status")
    assert [(p["status"], p["nice_status"]) for p in statuses] == [("ACTIVE", "OK"), ("ACTIVE", "Queued"), ("SUCCEEDED", None)]
    assert statuses[-1] == {
        "task_id": A, "status": "SUCCEEDED", "label": "from globus", "bytes_transferred": 7, "files_transferred": 1, "nice_status": None,
    }
    assert tracker.active_ids() == [] and tracker[A].done


def test_a_finished_task_never_goes_back(tracker: TaskTracker, notes: Notes) -> None:
    """Globus never moves a task out of SUCCEEDED or FAILED: a document that says it is
    still ACTIVE was read before the one that finished it (a poll overtaken by a get_task)."""
    tracker.watch(A)
    tracker.fold(doc(A, bytes_transferred=3))
    assert tracker.fold(doc(A, "SUCCEEDED", bytes_transferred=7, files_transferred=1)).changed
    stale = tracker.fold(doc(A, bytes_transferred=5))
    assert not stale.changed and stale.check_faults is None
    assert tracker[A].status == "SUCCEEDED" and tracker[A].bytes_transferred == 7
    assert [p["status"] for p in notes.topic("transfer_status")] == ["ACTIVE", "SUCCEEDED"]
    assert [p["bytes_transferred"] for p in notes.topic("transfer_progress")] == [3]
    assert tracker.active_ids() == []


def test_a_document_answered_before_the_last_one_was_asked_for_is_stale(tracker: TaskTracker, notes: Notes) -> None:
    """Documents carry no version: the tracker orders them by when they were fetched.
    One whose answer came before the newest folded one was even asked for is older."""
    tracker.watch(A)
    tracker.fold(doc(A), asked_at=10.0, answered_at=10.5)
    assert tracker.fold(doc(A, "INACTIVE", nice_status="PAUSED_BY_ADMIN"), asked_at=12.0, answered_at=12.1).changed
    # a poll asked at 9 and answered at 11.9, folded only now: older than what is known
    assert not tracker.fold(doc(A, bytes_transferred=9), asked_at=9.0, answered_at=11.9).changed
    assert tracker[A].status == "INACTIVE" and tracker[A].bytes_transferred == 0
    # answered after the newest was asked for: it may be newer, so it counts
    assert tracker.fold(doc(A, bytes_transferred=9), asked_at=11.0, answered_at=12.05).changed
    assert [p["status"] for p in notes.topic("transfer_status")] == ["ACTIVE", "INACTIVE", "ACTIVE"]
    assert tracker[A].bytes_transferred == 9


def test_a_first_nice_status_alone_is_no_change(tracker: TaskTracker, notes: Notes) -> None:
    tracker.accepted(A, status="ACTIVE", label=None, kind="TRANSFER", fail_fast=False)  # nice_status not known yet
    assert not tracker.fold(doc(A, nice_status="OK")).changed
    assert len(notes.topic("transfer_status")) == 1


def test_progress_of_active_tasks_with_a_rate(tracker: TaskTracker, notes: Notes, clock: Clock) -> None:
    tracker.accepted(A, status="ACTIVE", label="L", kind="TRANSFER", fail_fast=False)
    tracker.fold(doc(A, bytes_transferred=100, files_transferred=1, files=3, subtasks_total=3, effective_bytes_per_second=50))
    clock.now += 2.0
    tracker.fold(doc(A, bytes_transferred=300, files_transferred=2))
    tracker.fold(doc(A, bytes_transferred=300, files_transferred=2))  # nothing moved: no progress
    first, second = notes.topic("transfer_progress")
    assert first == {
        "task_id": A, "label": "L", "status": "ACTIVE", "bytes_transferred": 100, "files_transferred": 1, "files": 3,
        "subtasks_total": 3, "subtasks_succeeded": None, "bytes_per_second": None, "effective_bytes_per_second": 50,
    }
    assert second["bytes_per_second"] == 100.0 and second["bytes_transferred"] == 300


def test_no_progress_once_finished(tracker: TaskTracker, notes: Notes) -> None:
    tracker.watch(A)
    tracker.fold(doc(A, "SUCCEEDED", bytes_transferred=10))
    assert notes.topic("transfer_progress") == []


def test_documents_of_untracked_tasks_are_ignored(tracker: TaskTracker, notes: Notes) -> None:
    assert tracker.fold(doc(B)) == (False, None, None)
    assert notes.seen == [] and B not in tracker


def test_a_bad_counter_raises_and_leaves_the_state_alone(tracker: TaskTracker) -> None:
    tracker.watch(A)
    with pytest.raises(ValueError):
        tracker.fold(doc(A, label="x", bytes_transferred="not-a-number"))
    assert tracker[A].status is None and tracker[A].label is None


def test_a_new_fault_asks_for_the_events_and_each_is_reported_once(tracker: TaskTracker, notes: Notes) -> None:
    tracker.accepted(A, status="ACTIVE", label="L", kind="TRANSFER", fail_fast=False)
    folded = tracker.fold(doc(A, faults=1, nice_status="PERMISSION_DENIED", is_ok=False))
    assert folded.check_faults is tracker[A] and folded.nice_status == "PERMISSION_DENIED"
    events = [  # newest first, as Globus lists them
        {"code": "PERMISSION_DENIED", "description": "denied", "details": "d2", "time": "t2", "is_error": True},
        {"code": "FILE_NOT_FOUND", "description": "missing", "details": "d1", "time": "t1", "is_error": True},
        {"code": "PROGRESS", "description": "fine", "details": None, "time": "t0", "is_error": False},
    ]
    assert tracker.faults(tracker[A], "PERMISSION_DENIED", events) is False  # not fail_fast: nothing to cancel
    assert [p["code"] for p in notes.topic("transfer_fault")] == ["FILE_NOT_FOUND", "PERMISSION_DENIED"]
    assert notes.topic("transfer_fault")[0] == {
        "task_id": A, "label": "L", "code": "FILE_NOT_FOUND", "description": "missing", "details": "d1", "time": "t1",
        "nice_status": "PERMISSION_DENIED", "faults": 1, "fail_fast": False, "cancelling": False,
    }
    assert tracker.fold(doc(A, faults=1, nice_status="PERMISSION_DENIED", is_ok=False)).check_faults is None  # seen
    # one more fault, but the event list shows nothing new yet: the nice_status stands for it, once
    again = tracker.fold(doc(A, faults=2, nice_status="PERMISSION_DENIED", is_ok=False)).check_faults
    assert again is not None
    tracker.faults(again, "PERMISSION_DENIED", events)
    tracker.faults(again, "PERMISSION_DENIED", events)
    assert [p["code"] for p in notes.topic("transfer_fault")][2:] == ["PERMISSION_DENIED"]
    assert notes.topic("transfer_fault")[2]["description"] == "PERMISSION_DENIED"


def test_fail_fast_cancels_on_the_first_fault_only(tracker: TaskTracker, notes: Notes) -> None:
    tracker.accepted(A, status="ACTIVE", label=None, kind="TRANSFER", fail_fast=True)
    t = tracker[A]
    first = [{"code": "FILE_NOT_FOUND", "description": "missing", "time": "t1"}]
    assert tracker.faults(t, "FILE_NOT_FOUND", first) is True
    assert tracker.faults(t, "FILE_NOT_FOUND", [{"code": "X", "description": "again", "time": "t2"}, *first]) is False
    assert [p["cancelling"] for p in notes.topic("transfer_fault")] == [True, False]


def test_an_unhealthy_status_without_events_is_the_fault(tracker: TaskTracker, notes: Notes) -> None:
    tracker.accepted(A, status="ACTIVE", label=None, kind="TRANSFER", fail_fast=False)
    folded = tracker.fold(doc(A, nice_status="ENDPOINT_ERROR"))
    assert folded.check_faults is not None
    tracker.faults(folded.check_faults, "ENDPOINT_ERROR", [])
    tracker.faults(folded.check_faults, "ENDPOINT_ERROR", [])
    (fault,) = notes.topic("transfer_fault")
    assert fault["code"] == "ENDPOINT_ERROR" and fault["description"] == "ENDPOINT_ERROR" and fault["time"] is None


def test_faults_of_finished_tasks_are_not_looked_at(tracker: TaskTracker) -> None:
    tracker.watch(A)
    assert tracker.fold(doc(A, "FAILED", faults=3, nice_status="PERMISSION_DENIED", is_ok=False)).check_faults is None


def test_inactive_tasks_count_as_done_but_stay_polled(tracker: TaskTracker) -> None:
    tracker.watch(A)
    tracker.fold(doc(A, "INACTIVE", nice_status="Creds Expired"))
    assert tracker[A].done and tracker.active_ids() == [A]


@pytest.mark.parametrize(("grace", "checked_after"), [(2, 2), (1, 1), (0, 1)])
def test_missing_tasks_are_double_checked_after_the_grace(notes: Notes, grace: int, checked_after: int) -> None:
    tracker = TaskTracker(PollSettings(missing_grace=grace), notes)
    tracker.watch(A)
    tracker.watch(B)
    rounds = [tracker.missing([A, B], {B}) for _ in range(checked_after)]
    assert rounds[-1] == [A] and all(r == [] for r in rounds[:-1])
    assert tracker.missing([A], {A}) == [] and tracker[A].missing == 0  # seen again: the count restarts
    tracker.forget(A)
    assert tracker.missing([A], set()) == [] and A not in tracker


def test_pacing_backs_off_when_quiet_and_is_fast_after_a_change(clock: Clock) -> None:
    pacing = PollPacing(PollSettings(min_interval=1.0, max_interval=3.0, backoff=2.0), clock)
    assert [pacing.after_cycle(changed=False) for _ in range(3)] == [2.0, 3.0, 3.0]
    assert pacing.after_cycle(changed=True) == 1.0
    assert pacing.after_error() == 2.0  # a failed cycle backs off too
    assert pacing.after_rate_limit(7) == 7.0 and pacing.after_rate_limit(None) == 3.0


def test_waiters_cap_the_interval_while_they_wait(clock: Clock) -> None:
    pacing = PollPacing(PollSettings(min_interval=1.0, max_interval=10.0), clock)
    with pacing.waiter(0.5), pacing.waiter(2.0):
        assert pacing.after_cycle(changed=False) == 0.5
    with pacing.waiter(0.0):
        assert pacing.after_cycle(changed=False) == MIN_DELAY
    assert pacing.after_cycle(changed=False) > 2.0  # no waiter left


def test_a_kick_brings_the_next_cycle_forward(clock: Clock) -> None:
    pacing = PollPacing(PollSettings(min_interval=1.0, max_interval=10.0), clock)
    pacing.arm()
    assert pacing.due() == 101.0  # a new poller waits one interval
    pacing.after_cycle(changed=False)
    pacing.schedule(5.0)
    pacing.kick(0.2)  # a submission: soon, and fast again
    assert pacing.due() == pytest.approx(100.2) and pacing.interval == 1.0
    pacing.begin_cycle()
    assert pacing.due() == 105.0
    pacing.after_cycle(changed=False)
    pacing.soon(0.2)  # e.g. after a fail_fast cancel: soon, back-off unchanged
    assert pacing.due() == pytest.approx(100.2) and pacing.interval == 1.5
    pacing.stop()
    pacing.begin_cycle()
    assert pacing.due() == float("inf")
