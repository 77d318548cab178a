"""``TaskTracker``: what a session knows about its Globus tasks, and what to say when that changes.

Knows nothing of globus-sdk (a test holds it to that): the session fetches task
documents and error events (plain dicts, as Globus returns them) on its executor and
hands them over; the tracker decides what changed, calls ``notify(topic, payload)``
and keeps the poll-interval rule. It runs on the event loop only, so it needs no locks.

::

    task document ─fold()─▶ status or nice_status changed       → transfer_status
                            ACTIVE and bytes/files moved        → transfer_progress
                            ACTIVE and a new fault, or a new
                            unhealthy nice_status               → the session reads the
                                                                  task's error events
    error events ─faults()─▶ each one not reported before       → transfer_fault
                             (fail_fast: the first asks the session to cancel the task)
    missing()    a task absent from task_list for missing_grace cycles → one get_task
    recorder     every change of a task's state (and its forgetting) is handed to the
                 session's journal recorder, with the status last told (``told``)

    PollPacing   min_interval after a submission, cancel or state change; ×backoff per
                 quiet cycle up to max_interval; never longer than the shortest
                 polling_interval of a current waiter
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .options import PollSettings

log = logging.getLogger(__name__)

TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
#: nice_status values that mean "nothing wrong"
HEALTHY = frozenset({None, "OK", "Queued", "QUEUED"})
#: the keys of a ``transfer_status`` payload (the client relies on exactly these)
STATUS_KEYS = ("task_id", "status", "label", "bytes_transferred", "files_transferred", "nice_status")
#: the shortest delay between two poll cycles, whatever a waiter asks for
MIN_DELAY = 0.05

Notify = Callable[[str, dict[str, Any]], None]


class Recorder(Protocol):
    """Where the tracker reports each task it changed or dropped (the task journal)."""

    def record(self, t: Tracked) -> None: ...

    def forget(self, task_id: str) -> None: ...


@dataclass
class Tracked:
    """What the tracker knows about one task."""

    task_id: str
    label: str | None = None
    type: str | None = None
    status: str | None = None
    nice_status: str | None = None
    bytes_transferred: int = 0
    files_transferred: int = 0
    faults: int = 0
    fail_fast: bool = False
    missing: int = 0
    seen_faults: set[str] = field(default_factory=set)
    last_progress: tuple[float, int] | None = None
    fault_cancelled: bool = False
    reported_nice: str | None = None
    #: the status the last ``transfer_status`` of this task said (None: none said yet)
    told: str | None = None
    #: the Globus identity that owns the task (``owner_id`` of its documents)
    owner: str | None = None
    #: when the newest document folded in was asked for (the tracker's clock)
    as_of: float = -math.inf

    @property
    def done(self) -> bool:
        """Globus' own task_wait rule: anything but ACTIVE counts as finished."""
        return self.status is not None and self.status != "ACTIVE"

    def status_payload(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "label": self.label,
            "bytes_transferred": self.bytes_transferred,
            "files_transferred": self.files_transferred,
            "nice_status": self.nice_status,
        }


class Folded(NamedTuple):
    """What folding one task document found."""

    #: status or nice_status changed (waiters should look again; poll soon)
    changed: bool
    #: the task whose error events should be read now (None: no fault to look at)
    check_faults: Tracked | None = None
    #: its nice_status in this document (what the fault notifications report)
    nice_status: str | None = None


class PollPacing:
    """When the next poll cycle is due: the interval rule, kicks and waiter hints.

    ``next_poll`` is set by the poll loop after a cycle; a kick brings the next cycle
    forward (``kick_at``) without waiting for it.
    """

    def __init__(self, settings: PollSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.interval = settings.min_interval
        self.next_poll = math.inf
        self.kick_at = math.inf
        self._hints: list[float] = []

    def kick(self, delay: float) -> None:
        """Poll within ``delay`` s and restart the back-off at the fast interval
        (after a submission, a cancel, a newly tracked task)."""
        self.interval = self.settings.min_interval
        self.soon(delay)

    def soon(self, delay: float) -> None:
        """Poll within ``delay`` s, the back-off left as it is."""
        self.kick_at = min(self.kick_at, self.clock() + delay)

    def arm(self) -> None:
        """A poller starts: unless a kick already says when, the first cycle is one interval away."""
        if self.next_poll == math.inf and self.kick_at == math.inf:
            self.next_poll = self.clock() + self.interval

    def due(self) -> float:
        """The clock time of the next cycle."""
        return min(self.next_poll, self.kick_at)

    def begin_cycle(self) -> None:
        """A cycle starts: pending kicks are consumed (one during the cycle counts again)."""
        self.kick_at = math.inf

    def schedule(self, delay: float) -> None:
        self.next_poll = self.clock() + delay

    def stop(self) -> None:
        self.next_poll = math.inf

    def after_cycle(self, changed: bool) -> float:
        """The delay after a successful cycle: fast again after a change (queued tasks
        start when others finish), otherwise backing off; capped by waiters' hints."""
        if changed:
            self.interval = self.settings.min_interval
        else:
            self.interval = min(self.interval * self.settings.backoff, self.settings.max_interval)
        hint = min(self._hints) if self._hints else math.inf
        return max(MIN_DELAY, min(self.interval, hint))

    def after_error(self) -> float:
        """The delay after a failed cycle (a transient Globus or network error): back off."""
        self.interval = min(self.interval * self.settings.backoff, self.settings.max_interval)
        return self.interval

    def after_rate_limit(self, retry_after: float | None) -> float:
        """The delay after a 429: what Globus asked for, else the longest interval."""
        return float(retry_after or self.settings.max_interval)

    @contextlib.contextmanager
    def waiter(self, polling_interval: float) -> Iterator[None]:
        """While a caller waits, polls are at most ``polling_interval`` apart."""
        self._hints.append(polling_interval)
        try:
            yield
        finally:
            self._hints.remove(polling_interval)


class TaskTracker:
    """The tasks one session watches, their last known state, and the notifications.

    :param notify: ``notify(topic, payload)``, scoped to the session by the caller
    :param name: how log lines name the session
    """

    def __init__(
        self,
        settings: PollSettings,
        notify: Notify,
        *,
        name: str = "globus session",
        clock: Callable[[], float] = time.monotonic,
        recorder: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.clock = clock
        self.tasks: dict[str, Tracked] = {}
        self.pacing = PollPacing(settings, clock)
        self.notifications = 0
        self.recorder = recorder
        self._notify = notify

    def __repr__(self) -> str:
        return f"TaskTracker({self.name}, tracked={len(self.tasks)})"

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    def __getitem__(self, task_id: str) -> Tracked:
        return self.tasks[task_id]

    def get(self, task_id: str) -> Tracked | None:
        return self.tasks.get(task_id)

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.notifications += 1
        self._notify(topic, payload)

    def _tell(self, t: Tracked) -> None:
        """Say ``t``'s status (``transfer_status``) and remember that it was said."""
        t.told = t.status
        self.emit("transfer_status", t.status_payload())

    def record(self, t: Tracked) -> None:
        """Hand ``t``'s state to the recorder (the journal), if there is one."""
        if self.recorder is not None:
            self.recorder.record(t)

    # -- which tasks -------------------------------------------------------------
    def active_ids(self) -> list[str]:
        """Tasks to poll: everything not finished (INACTIVE ones can resume)."""
        return [t.task_id for t in self.tasks.values() if t.status not in TERMINAL]

    def accepted(self, task_id: str, *, status: str, label: str | None, kind: str, fail_fast: bool) -> Tracked:
        """A task Globus just accepted from us: tracked, with a first ``transfer_status``
        (a duplicate submission of a task already tracked says nothing new)."""
        known = self.tasks.get(task_id)
        if known is None:
            known = Tracked(task_id=task_id, label=label, type=kind, status=status, fail_fast=fail_fast)
            self.tasks[task_id] = known
            self._tell(known)
            self.record(known)
        return known

    def watch(self, task_id: str) -> Tracked:
        """Track ``task_id``; its state comes with the next document folded in."""
        return self.tasks.setdefault(task_id, Tracked(task_id=task_id))

    def adopt(self, t: Tracked) -> bool:
        """Track ``t`` as the journal left it (``status`` is what was last told): the next
        document folded in tells what changed since. False if it is tracked already."""
        if t.task_id in self.tasks:
            return False
        self.tasks[t.task_id] = t
        return True

    def forget(self, task_id: str) -> None:
        if self.tasks.pop(task_id, None) is not None and self.recorder is not None:
            self.recorder.forget(task_id)

    def missing(self, asked: Iterable[str], found: set[str]) -> list[str]:
        """Count a cycle for tasks asked for but absent from the answer; those absent for
        ``missing_grace`` cycles are returned, to be double-checked one by one."""
        due = []
        for tid in asked:
            t = self.tasks.get(tid)
            if t is None:
                continue
            if tid in found:
                t.missing = 0
                continue
            t.missing += 1
            if t.missing < self.settings.missing_grace:
                continue
            t.missing = 0
            due.append(tid)
        return due

    # -- what changed ------------------------------------------------------------
    def fold(self, doc: dict[str, Any], *, asked_at: float | None = None, answered_at: float | None = None) -> Folded:
        """Fold one task document into the state and notify what changed.

        Documents carry no version, and a poll and a ``get_task`` of the same task can
        overtake each other. A document is older than the state, and left out, when its
        answer came before the newest folded document was asked for (``asked_at`` and
        ``answered_at`` are the fetch's times on this tracker's clock), or when it says
        that a finished task (SUCCEEDED, FAILED: Globus never leaves them) is not.

        :raises ValueError: a counter in ``doc`` is not a number (the state is untouched)
        """
        t = self.tasks.get(str(doc.get("task_id")))
        if t is None:
            return Folded(False)
        status = doc.get("status")
        if (answered_at is not None and answered_at < t.as_of) or (t.status in TERMINAL and status != t.status):
            log.debug("%s: an older document of task %s (%s, known %s) left out", self.name, t.task_id, status, t.status)
            return Folded(False)
        nice = doc.get("nice_status")
        moved = (int(doc.get("bytes_transferred") or 0), int(doc.get("files_transferred") or 0))
        faults = int(doc.get("faults") or 0)
        before = (t.label, t.type, t.owner, t.nice_status)
        if t.label is None and doc.get("label"):
            t.label = doc.get("label")
        t.type = doc.get("type") or t.type
        t.owner = doc.get("owner_id") or t.owner
        changed = status != t.status or (nice != t.nice_status and t.nice_status is not None)
        progress = moved != (t.bytes_transferred, t.files_transferred)
        new_fault = faults > t.faults
        t.status, t.nice_status = status, nice
        t.bytes_transferred, t.files_transferred = moved
        t.faults = faults
        if asked_at is not None:
            t.as_of = max(t.as_of, asked_at)
        if changed:
            self._tell(t)
        if changed or progress or before != (t.label, t.type, t.owner, t.nice_status):
            self.record(t)
        if status == "ACTIVE" and progress:
            self.emit("transfer_progress", self._progress_payload(t, doc))
        unhealthy = nice not in HEALTHY or doc.get("is_ok") is False
        if status == "ACTIVE" and (new_fault or (unhealthy and nice != t.reported_nice)):
            t.reported_nice = nice
            return Folded(changed, t, nice)
        return Folded(changed)

    def _progress_payload(self, t: Tracked, doc: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        rate = None
        if t.last_progress is not None:
            dt = now - t.last_progress[0]
            if dt > 0:
                rate = max(0.0, (t.bytes_transferred - t.last_progress[1]) / dt)
        t.last_progress = (now, t.bytes_transferred)
        return {
            "task_id": t.task_id,
            "label": t.label,
            "status": t.status,
            "bytes_transferred": t.bytes_transferred,
            "files_transferred": t.files_transferred,
            "files": doc.get("files"),
            "subtasks_total": doc.get("subtasks_total"),
            "subtasks_succeeded": doc.get("subtasks_succeeded"),
            "bytes_per_second": rate,
            "effective_bytes_per_second": doc.get("effective_bytes_per_second"),
        }

    def faults(self, t: Tracked, nice: str | None, events: list[dict[str, Any]]) -> bool:
        """Notify each error event of ``t`` not reported before (``events`` newest first,
        as Globus lists them); True if the session should now cancel the task (fail_fast).

        With no new event but an unhealthy ``nice`` (the task's nice_status when the
        fault was seen), that status is the fault.
        """
        fresh = []
        for ev in reversed([e for e in events if e.get("is_error", True)]):  # oldest first
            key = f"{ev.get('time')}|{ev.get('code')}|{ev.get('description')}"
            if key not in t.seen_faults:
                t.seen_faults.add(key)
                fresh.append(ev)
        if not fresh and nice not in HEALTHY and f"nice|{nice}" not in t.seen_faults:
            t.seen_faults.add(f"nice|{nice}")
            fresh.append({"code": nice, "description": nice, "details": None, "time": None})
        cancel = False
        for ev in fresh:
            cancelling = t.fail_fast and not t.fault_cancelled
            self.emit(
                "transfer_fault",
                {
                    "task_id": t.task_id,
                    "label": t.label,
                    "code": ev.get("code"),
                    "description": ev.get("description"),
                    "details": ev.get("details"),
                    "time": ev.get("time"),
                    "nice_status": nice,
                    "faults": t.faults,
                    "fail_fast": t.fail_fast,
                    "cancelling": cancelling,
                },
            )
            if cancelling:
                t.fault_cancelled = cancel = True
                log.info("%s: fail_fast: cancelling task %s after fault %s", self.name, t.task_id, ev.get("code"))
        return cancel
