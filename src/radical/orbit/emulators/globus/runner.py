"""What a transfer run and a delete run share: stopping, retrying, classifying, pacing.

Globus has two task types, so the emulator has two runs (``transfer_run``,
``delete_run``); both subclass :class:`Runner` and execute on the task's own worker
thread, never on the request path. The pieces here are the parts of Globus's task
behaviour that do not depend on the task type:

- stop checks: a cancel, the deadline or the emulator's shutdown ends the run between
  two steps; an INACTIVE (suspended) task waits; a PROGRESS event every minute;
- the retry model (what Globus does, as far as it is known): a missing source is
  fatal (FILE_NOT_FOUND) unless ``skip_source_errors``; permission errors are retried
  every ``retry_interval`` while the task stays ACTIVE with nice_status
  PERMISSION_DENIED, until they clear, the deadline passes (FAILED/EXPIRED) or the
  task is cancelled (FAILED/CANCELED), and a *source* permission error is skipped
  instead with ``skip_source_errors``; quota errors are retried likewise, or fatal
  with ``fail_on_quota_errors``;
- fault classification: an ``OSError`` becomes the Globus event code a user sees,
  naming the Globus path, never the host's;
- throttling: the bandwidth cap of the collections involved, re-read while it runs.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .collections import Collection, CollectionRegistry
from .faults import FaultState
from .task import DESCRIPTIONS, Task

__all__ = ["EngineStopping", "Runner", "TaskError", "TaskStop", "classify", "shown_path"]

#: seconds between two PROGRESS events of a running task
PROGRESS_INTERVAL = 60.0

#: codes that end the task at once: retrying cannot make them succeed
FATAL_CODES = ("FILE_NOT_FOUND", "IS_A_DIRECTORY", "NOT_A_DIRECTORY", "EXTERNAL_CHECKSUM_MISMATCH")
#: codes that are fatal only with ``fail_on_quota_errors``
QUOTA_CODES = ("QUOTA_EXCEEDED", "NO_SPACE_LEFT")
#: source errors that ``skip_source_errors`` skips instead of failing or retrying
SKIPPABLE_CODES = ("FILE_NOT_FOUND", "PERMISSION_DENIED")

T = TypeVar("T")


class TaskError(Exception):
    """A file-level error inside a task, with its Globus event code."""

    def __init__(self, code: str, details: str, *, source: bool = False) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.source = source


class EngineStopping(Exception):
    """The emulator is stopping: leave the task unfinished (it runs again after a restart)."""


class TaskStop(Exception):
    """The task ends now (cancelled, expired or fatal); ``code`` says which."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def shown_path(filename: object, colls: tuple[Collection | None, ...]) -> str:
    """The Globus path of an on-disk file name: the host's layout never reaches a user."""
    if isinstance(filename, str):
        for coll in colls:
            if coll is not None and coll.inside(filename):
                return str(coll.to_globus(filename))
        return os.path.basename(filename) or "?"
    return "?"


def classify(exc: OSError, *, source: bool, colls: tuple[Collection | None, ...] = ()) -> TaskError:
    """The Globus event code of a file-system error."""
    where = shown_path(exc.filename, colls)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return TaskError("FILE_NOT_FOUND", f"No such file or directory: {where}", source=source)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return TaskError("PERMISSION_DENIED", f"Permission denied: {where}", source=source)
    if exc.errno == errno.EDQUOT:
        return TaskError("QUOTA_EXCEEDED", "Disk quota exceeded", source=source)
    if exc.errno == errno.ENOSPC:
        return TaskError("NO_SPACE_LEFT", "No space left on device", source=source)
    if exc.errno == errno.ENOTDIR:
        return TaskError("NOT_A_DIRECTORY", f"Not a directory: {where}", source=source)
    if exc.errno == errno.EISDIR:
        return TaskError("IS_A_DIRECTORY", f"Is a directory: {where}", source=source)
    return TaskError("ENDPOINT_ERROR", f"{exc.strerror or type(exc).__name__}: {where}", source=source)


class Runner:
    """Executes one task on the calling (worker) thread; subclasses implement :meth:`run`."""

    def __init__(self, task: Task, *, collections: CollectionRegistry, faults: FaultState, retry_interval: float, stopping: threading.Event) -> None:
        self.task = task
        self.req = task.request
        self.faults = faults
        self.retry_interval = retry_interval
        self.stopping = stopping
        self.src = collections.get(task.source_endpoint_id)
        self.dst = collections.get(task.destination_endpoint_id) if task.destination_endpoint_id else None
        self.last_progress = time.monotonic()

    def run(self) -> None:
        """Do the task's work; raise :class:`TaskStop` to end it FAILED."""
        raise NotImplementedError

    @property
    def colls(self) -> tuple[Collection | None, ...]:
        """The collections whose paths an error message may name."""
        return (self.src, self.dst)

    # ---- stop checks

    def check_stop(self) -> None:
        """Raise when cancelled or past the deadline; block while the task is INACTIVE."""
        t = self.task
        while True:
            if self.stopping.is_set():
                raise EngineStopping()
            if t.cancel_event.is_set():
                raise TaskStop("CANCELED", "Canceled by the task owner")
            if time.time() > t.deadline:
                raise TaskStop("EXPIRED", "The task deadline was reached")
            if t.status != "INACTIVE":
                break
            t.cancel_event.wait(0.05)
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            c = t.counters
            elapsed = max(time.time() - (t.started_at or time.time()), 1e-6)
            details = {"bytes_transferred": c["bytes_transferred"], "duration": round(elapsed, 2), "mbps": round(c["bytes_transferred"] * 8 / elapsed / 1e6, 2)}
            t.add_event("PROGRESS", json.dumps(details), description="progress")

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once for a cancel or the emulator's shutdown."""
        if self.task.cancel_event.wait(seconds):
            self.check_stop()

    def path_fault(self, coll: Collection, gpath: str, *, source: bool) -> None:
        """Raise the injected permission / not-found fault for this path, if one is set."""
        kind = self.faults.path_fault(coll.id, gpath)
        if kind == "permission":
            raise TaskError("PERMISSION_DENIED", f"Permission denied (injected fault): {gpath}", source=source)
        if kind == "not_found":
            raise TaskError("FILE_NOT_FOUND", f"No such file or directory (injected fault): {gpath}", source=source)

    # ---- the retry model

    def is_fatal(self, err: TaskError) -> bool:
        return err.code in FATAL_CODES or (err.code in QUOTA_CODES and bool(self.req.get("fail_on_quota_errors")))

    def is_skipped(self, err: TaskError) -> bool:
        """A source error the caller records as skipped (``skip_source_errors``)."""
        return err.source and bool(self.req.get("skip_source_errors")) and err.code in SKIPPABLE_CODES

    def with_retries(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func``; retry retryable errors as Globus does (the task stays ACTIVE).

        A skipped source error is raised to the caller unrecorded; a fatal one ends
        the task with :class:`TaskStop`.
        """
        t = self.task
        retrying = False
        try:
            while True:
                self.check_stop()
                try:
                    return func(*args)
                except TaskError as err:
                    if self.is_skipped(err):
                        raise
                    t.bump(faults=1)
                    t.add_event(err.code, err.details, is_error=True)
                    if self.is_fatal(err):
                        raise TaskStop(err.code, err.details) from None
                    with t.lock:
                        t.nice_status = err.code
                        t.nice_status_short_description = DESCRIPTIONS.get(err.code, err.code)
                        t.is_ok = False
                        if not retrying:
                            t.counters["subtasks_retrying"] += 1
                    retrying = True
                    self.sleep(self.retry_interval)
        finally:
            if retrying:
                with t.lock:
                    t.counters["subtasks_retrying"] -= 1
                    if t.counters["subtasks_retrying"] == 0:
                        t.nice_status, t.nice_status_short_description, t.is_ok = "OK", "OK", True

    # ---- throttling

    def current_rate(self) -> float | None:
        """The bandwidth cap now in force (run-time faults first, then the collection config)."""
        caps: list[float] = []
        for coll in self.colls:
            if coll is not None:
                caps.extend(c for c in (self.faults.bandwidth(coll.id), coll.spec.bandwidth) if c)
        return min(caps) if caps else None

    def throttle(self, pace: float, rate: float) -> float:
        """Wait until ``pace`` in short steps; a changed or removed cap re-paces the rest."""
        while True:
            now = time.monotonic()
            if pace <= now:
                return pace
            self.sleep(min(0.1, pace - now))
            new_rate = self.current_rate()
            if new_rate != rate:
                now = time.monotonic()
                if not new_rate:
                    return now
                pace = now + max(0.0, pace - now) * rate / new_rate
                rate = new_rate
