"""The task engine: admission, the per-user limits, persistence, suspend/resume, cancel.

Each admitted task runs on its own worker thread (a :class:`~.transfer_run.TransferRun`
or :class:`~.delete_run.DeleteRun`), never on the request path. At most
``max_active_transfers`` transfer and ``max_active_deletes`` delete tasks per user run
at once; the rest wait ACTIVE with nice_status "Queued", as Globus does. A ticker
thread expires queued tasks past their deadline, admits queued ones as slots free and
saves the state file (``--state-dir``) when something changed; tasks a restart
interrupted run again from the start.

How a task ends is decided here, in one place (:meth:`TaskEngine._finish`): SUCCEEDED,
or FAILED with a ``fatal_error`` (a user cancel is FAILED/CANCELED), its pending
subtasks counted as canceled, expired or failed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path

from .collections import CollectionRegistry
from .delete_run import DeleteRun
from .faults import FaultState
from .runner import EngineStopping, Runner, TaskStop
from .state import atomic_write_json
from .task import DESCRIPTIONS, FINISHED, Task, pending_subtasks
from .transfer_run import TransferRun

__all__ = ["TaskEngine"]

log = logging.getLogger(__name__)

#: the run class of each Globus task type
RUNS: dict[str, type[Runner]] = {"TRANSFER": TransferRun, "DELETE": DeleteRun}


class TaskEngine:
    """All tasks, the admission queue, worker threads and (optionally) persistence."""

    def __init__(
        self,
        collections: CollectionRegistry,
        faults: FaultState,
        *,
        state_dir: Path | None = None,
        retry_interval: float = 1.0,
        max_active_transfers: int = 3,
        max_active_deletes: int = 3,
    ) -> None:
        self.collections = collections
        self.faults = faults
        self.retry_interval = retry_interval
        self.limits = {"TRANSFER": max_active_transfers, "DELETE": max_active_deletes}
        self.tasks: dict[str, Task] = {}
        #: (owner identity, submission_id) -> task_id: a submission id is looked up among
        #: its user's own submissions only (another user's task is never named)
        self.submissions: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._workers: dict[str, threading.Thread] = {}
        self._path = state_dir / "tasks.json" if state_dir else None
        self._load()
        self._ticker = threading.Thread(target=self._tick_loop, name="globus-emu-ticker", daemon=True)
        self._ticker.start()

    # ---- persistence

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            loaded = [Task.from_json(raw) for raw in data.get("tasks", [])]
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:  # written by hand, or by another version
            raise ValueError(
                f"the task state file {self._path} cannot be read ({type(exc).__name__}); "
                "move it away to start with no tasks, or give another --state-dir"
            ) from None
        for task in loaded:
            if task.status not in FINISHED:  # interrupted by the restart: run it again
                task.restart()
            self.tasks[task.task_id] = task
            self.submissions.setdefault((task.owner_id, task.submission_id), task.task_id)

    def save(self) -> None:
        if self._path is None:
            return
        with self._lock:
            tasks = list(self.tasks.values())
        # each task carries its owner and submission_id: the index is rebuilt from them on load
        atomic_write_json(self._path, {"tasks": [t.to_json() for t in tasks]})

    def mark_dirty(self) -> None:
        """Something changed: the ticker saves the state file soon (never on the request path)."""
        self._dirty.set()

    def _tick_loop(self) -> None:
        while not self._stopping.wait(0.2):
            self.tick()
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    self.save()
                except OSError:
                    log.exception("could not save emulator state")

    def tick(self) -> None:
        """Expire queued tasks past their deadline; admit queued ones when slots free."""
        now = time.time()
        with self._lock:
            for task in self.tasks.values():
                if not task.running and task.status in ("ACTIVE", "INACTIVE") and now > task.deadline:
                    self._finish(task, "FAILED", {"code": "EXPIRED", "description": DESCRIPTIONS["EXPIRED"]}, "EXPIRED")
            self._admit()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (their tasks stay unfinished, so they run again after a restart) and save."""
        if self._stopping.is_set() and not self._workers:
            return
        self._stopping.set()
        with self._lock:
            workers = list(self._workers.values())
            for task in self.tasks.values():
                task.cancel_event.set()  # wakes sleepers; check_stop sees the engine stopping first
        end = time.monotonic() + timeout
        for thread in workers:
            thread.join(max(0.0, end - time.monotonic()))
        self._ticker.join(timeout=2)
        self.save()

    # ---- submission and admission

    def new_submission_id(self) -> str:
        return str(uuid.uuid4())

    def submitted(self, owner_id: str, submission_id: str) -> Task | None:
        """The task ``owner_id`` already submitted with ``submission_id`` (transfer or delete)."""
        with self._lock:
            task_id = self.submissions.get((owner_id, submission_id))
            return self.tasks.get(task_id) if task_id else None

    def submit(self, task: Task) -> tuple[Task, bool]:
        """Register ``task``; returns (task, created) — the owner's earlier task for a reused submission_id."""
        key = (task.owner_id, task.submission_id)
        with self._lock:
            existing = self.submissions.get(key)
            if existing and existing in self.tasks:
                return self.tasks[existing], False
            self.tasks[task.task_id] = task
            self.submissions[key] = task.task_id
            self._admit()
        self.mark_dirty()
        return task, True

    def _admit(self) -> None:
        """Start the oldest queued tasks while their owner has a free slot of their type."""
        if self._stopping.is_set():
            return
        with self._lock:
            running: dict[tuple[str, str], int] = {}
            for t in self.tasks.values():
                if t.running:
                    running[(t.owner_id, t.type)] = running.get((t.owner_id, t.type), 0) + 1
            for t in sorted(self.tasks.values(), key=lambda x: x.request_time):
                if t.status != "ACTIVE" or t.running:
                    continue
                key = (t.owner_id, t.type)
                if running.get(key, 0) >= self.limits[t.type]:
                    continue
                running[key] = running.get(key, 0) + 1
                t.running = True
                thread = threading.Thread(target=self._run, args=(t,), name=f"globus-task-{t.task_id[:8]}", daemon=True)
                self._workers[t.task_id] = thread
                thread.start()

    def _run(self, task: Task) -> None:
        """A worker thread: run the task, then decide how it ended and free its slot."""
        run = RUNS[task.type](task, collections=self.collections, faults=self.faults, retry_interval=self.retry_interval, stopping=self._stopping)
        with task.lock:
            task.started_at = time.time()
            task.nice_status, task.nice_status_short_description, task.is_ok = "OK", "OK", True
        try:
            run.run()
        except EngineStopping:
            log.info("task %s interrupted by shutdown; it runs again after a restart", task.task_id)
        except TaskStop as stop:
            if stop.code not in ("CANCELED", "EXPIRED") and not any(e["code"] == stop.code for e in task.events):
                task.bump(faults=1)
                task.add_event(stop.code, stop.details, is_error=True)
            self._finish(task, "FAILED", {"code": stop.code, "description": DESCRIPTIONS.get(stop.code, stop.details)}, stop.code, stop.details)
        except Exception as exc:  # a bug in the emulator must still end the task visibly
            log.exception("task %s crashed", task.task_id)
            self._finish(task, "FAILED", {"code": "INTERNAL_ERROR", "description": f"emulator error: {type(exc).__name__}"}, "INTERNAL_ERROR")
        else:
            self._finish(task, "SUCCEEDED", None, "SUCCEEDED")
        finally:
            with self._lock:
                task.running = False
                self._workers.pop(task.task_id, None)
                self._admit()

    def _finish(self, task: Task, status: str, fatal: dict[str, str] | None, event: str, details: str | None = None) -> None:
        """End ``task`` once: count its pending subtasks by how it ended, add the final event."""
        with task.lock:
            if task.status in FINISHED:
                return
            c = task.counters
            pending = pending_subtasks(c)
            outcome = {"CANCELED": "subtasks_canceled", "EXPIRED": "subtasks_expired"}.get(event)
            if outcome is None and status == "FAILED":
                outcome = "subtasks_failed"
            if outcome is not None:
                c[outcome] += max(pending, 1)
                c["subtasks_total"] += 0 if pending else 1
            c["subtasks_retrying"] = 0
        if event == "CANCELED":
            task.add_event("CANCELED", details or "Canceled by the task owner", is_error=True, description="canceled")
        elif event == "EXPIRED":
            task.add_event("EXPIRED", details or "The task deadline was reached", is_error=True, description="deadline expired")
        elif event == "SUCCEEDED":
            task.add_event("SUCCEEDED", json.dumps({"files_succeeded": task.counters["files_transferred"]}), description="succeeded")
        with task.lock:
            task.status = status
            task.fatal_error = fatal
            task.completion_time = time.time()
            task.nice_status = task.nice_status_short_description = None
            task.is_ok = None
        task.done_event.set()
        self.mark_dirty()

    # ---- queries and actions

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self.tasks.get(task_id.lower())

    def list_for(self, owner_id: str) -> list[Task]:
        with self._lock:
            return [t for t in self.tasks.values() if t.owner_id == owner_id]

    def suspend(self, task: Task, nice_status: str = "Creds Expired") -> bool:
        """Make an unfinished task INACTIVE (what expired credentials do to a Globus task)."""
        with task.lock:
            if task.status in FINISHED:
                return False
            task.status = "INACTIVE"
            task.nice_status = task.nice_status_short_description = nice_status
            task.is_ok = False
        task.add_event("PAUSED", f"task suspended: {nice_status}", is_error=True, description="paused")
        self.mark_dirty()
        return True

    def resume(self, task: Task) -> bool:
        """Back to ACTIVE after :meth:`suspend`."""
        with task.lock:
            if task.status != "INACTIVE":
                return False
            task.status = "ACTIVE"
            queued = not task.running
            task.nice_status = task.nice_status_short_description = "Queued" if queued else "OK"
            task.is_ok = True
        task.add_event("UNPAUSED", "task resumed", description="unpaused")
        with self._lock:
            self._admit()
        self.mark_dirty()
        return True

    def cancel(self, task: Task, wait: float = 10.0) -> str:
        """Cancel as the owner; returns Canceled, CancelAccepted or TaskComplete."""
        if task.status in FINISHED:
            return "TaskComplete"
        task.cancel_event.set()
        with self._lock:
            if not task.running:
                self._finish(task, "FAILED", {"code": "CANCELED", "description": "canceled"}, "CANCELED")
        return "Canceled" if task.done_event.wait(wait) else "CancelAccepted"
