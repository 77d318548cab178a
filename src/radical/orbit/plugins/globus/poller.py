"""``Poller``: the background loop that keeps a session's tracked tasks current, and the
waits that ride on it.

One per session, running (as an asyncio task) only while something is active::

    every cycle: active ids ─TaskFetch.tasks─▶ task_list(filter=task_id:a,b,...) per chunk
                 each document ─TaskTracker.fold─▶ transfer_status / transfer_progress
                 a new fault ─TaskFetch.error_events─▶ TaskTracker.faults ─▶ transfer_fault
                                                       (fail_fast → cancel_task)
                 missing for missing_grace cycles ─▶ one get_task
    delay:       PollPacing (~1 s after a submission or a change, backing off to ~10 s,
                 capped by waiters); 429 → wait Retry-After; transient errors → warning
                 with counts, back off, keep going; a rejected credential → one
                 ``auth_error`` notification, stop until a call succeeds again.

Waiters hold no thread: they sleep on an ``asyncio.Event`` pulsed whenever a status
changes and when the loop stops. Every Globus call goes through the session's
``run`` (its executor, its error mapping).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ...errors import GlobusAuthError, NotFoundError, OrbitError, RateLimitedError
from .fetch import TaskFetch
from .tracker import TaskTracker, Tracked

log = logging.getLogger(__name__)

T = TypeVar("T")


class Run(Protocol):
    """``await run(what, fn, *args)``: ``fn(*args)`` off the event loop, Globus errors mapped
    to Orbit's (``what`` names the call in their messages)."""

    async def __call__(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


class Poller:
    """Polls the tasks of one :class:`.tracker.TaskTracker` through one :class:`.fetch.TaskFetch`.

    :param run: the session's way to call globus-sdk (see :class:`Run`)
    :param cancel_task: blocking ``cancel_task(task_id)`` (fail_fast)
    :param on_cycle: called at each cycle (the session marks itself as in use)
    """

    def __init__(
        self,
        tracker: TaskTracker,
        fetch: TaskFetch,
        run: Run,
        *,
        cancel_task: Callable[[str], object],
        auth_mode: str,
        on_cycle: Callable[[], None],
    ) -> None:
        self.tracker = tracker
        self.fetch = fetch
        self.run = run
        self.cancel_task = cancel_task
        self.auth_mode = auth_mode
        self.on_cycle = on_cycle
        self.name = tracker.name
        self.closed = False
        #: why the credential stopped working (polling waits for a call that succeeds)
        self.auth_failure: GlobusAuthError | None = None
        self.counts = {"cycles": 0, "errors": 0, "consecutive_errors": 0, "rate_limited": 0}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"Poller({self.name}, running={self.running()})"

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def stats(self) -> dict[str, int]:
        """Counters: cycles, Globus calls by kind, errors, notifications sent."""
        counts, calls = self.counts, self.fetch.calls
        return {
            "cycles": counts["cycles"],
            "task_list_calls": calls["task_list_calls"],
            "get_task_calls": calls["get_task_calls"],
            "event_list_calls": calls["event_list_calls"],
            "errors": counts["errors"],
            "consecutive_errors": counts["consecutive_errors"],
            "rate_limited": counts["rate_limited"],
            "notifications": self.tracker.notifications,
        }

    def info(self) -> dict[str, Any]:
        return {
            **self.stats(),
            "running": self.running(),
            "interval": self.tracker.pacing.interval,
            "chunk": self.fetch.chunk,
            "auth_failed": self.auth_failure is not None,
        }

    async def close(self) -> None:
        """Stop the loop and release the waiters (they return ``completed: false``)."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._changed.set()

    # -- starting and waking -----------------------------------------------------
    def kick(self, delay: float) -> None:
        """Poll within ``delay`` s and restart the back-off at the fast interval."""
        self.tracker.pacing.kick(delay)
        self.ensure()
        self._wake.set()

    def ensure(self) -> None:
        """Start the loop if something is active (and the credential was not rejected)."""
        if self.closed or self.auth_failure is not None or self.running():
            return
        if not self.tracker.active_ids():
            return
        self.tracker.pacing.arm()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"{self.name} poller")

    def credential_works(self) -> None:
        """A Globus call succeeded: if polling stopped on a rejected credential, resume."""
        if self.auth_failure is not None:
            self.auth_failure = None
            self.ensure()

    def _pulse(self) -> None:
        """Wake every waiter (they re-check their tasks)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # -- waiting -------------------------------------------------------------------
    async def wait_for(self, task_ids: list[str], timeout: float, polling_interval: float) -> bool:
        """Wait (holding no thread) until every tracked task of ``task_ids`` is done or
        ``timeout`` passes; polls are at most ``polling_interval`` apart meanwhile.

        :raises GlobusAuthError: the credential was rejected while polling
        """
        deadline = time.monotonic() + timeout
        with self.tracker.pacing.waiter(polling_interval):
            while True:
                if all(t.done for t in map(self.tracker.get, task_ids) if t is not None):
                    return True
                if self.auth_failure is not None:
                    raise GlobusAuthError(self.auth_failure.message, **self.auth_failure.details)
                if self.closed:
                    return False
                self.ensure()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
                except TimeoutError:
                    pass

    # -- the loop ------------------------------------------------------------------
    async def _loop(self) -> None:
        pacing = self.tracker.pacing
        try:
            while not self.closed:
                while (wait := pacing.due() - pacing.clock()) > 0:  # asleep until due; a kick re-checks
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    except TimeoutError:
                        pass
                pacing.begin_cycle()
                active = self.tracker.active_ids()
                if not active:
                    break
                try:
                    delay = await self._cycle(active)
                except Exception:  # a bug must not silently end notifications: log it, keep polling
                    self.counts["errors"] += 1
                    log.exception("%s: unexpected error in the poller; continuing", self.name)
                    delay = self.tracker.settings.max_interval
                if delay is None:
                    break
                pacing.schedule(delay)
        finally:
            pacing.stop()
            self._pulse()
            log.debug("%s: poller stopped", self.name)

    async def _cycle(self, active: list[str]) -> float | None:
        """One poll cycle; returns the delay to the next one (None: stop)."""
        self.counts["cycles"] += 1
        self.on_cycle()
        pacing = self.tracker.pacing
        asked = self.tracker.clock()
        try:
            docs = await self.run("poll task_list", self.fetch.tasks, active)
        except RateLimitedError as exc:
            self.counts["rate_limited"] += 1
            wait = pacing.after_rate_limit(exc.details.get("retry_after"))
            log.warning("%s: rate limited by Globus, waiting %.1f s", self.name, wait)
            return wait
        except GlobusAuthError as exc:
            self.auth_failure = exc
            log.warning("%s: credential rejected while polling; poller stopped", self.name)
            payload = {"code": exc.code, "message": exc.message, "auth_mode": self.auth_mode, "active_tasks": self.tracker.active_ids()}
            self.tracker.emit("auth_error", payload)
            return None
        except OrbitError as exc:
            self.counts["errors"] += 1
            self.counts["consecutive_errors"] += 1
            delay = pacing.after_error()
            log.warning(
                "%s: poll failed (%s: %s); %d in a row, %d in total; retrying in %.1f s",
                self.name, exc.code, exc.message, self.counts["consecutive_errors"], self.counts["errors"], delay,
            )
            return delay
        self.counts["consecutive_errors"] = 0
        changed = await self.apply(docs, asked_at=asked, answered_at=self.tracker.clock())
        await self._check_missing(active, {d["task_id"] for d in docs})
        return pacing.after_cycle(changed)

    async def _check_missing(self, asked: list[str], found: set[str]) -> None:
        for tid in self.tracker.missing(asked, found):
            asked_at = self.tracker.clock()
            try:
                doc = await self.run(f"get_task {tid}", self.fetch.task, tid)
            except NotFoundError:
                log.warning("%s: task %s no longer exists on Globus; untracking it", self.name, tid)
                self.tracker.forget(tid)
                continue
            except OrbitError as exc:
                log.warning("%s: get_task %s failed: %s", self.name, tid, exc.message)
                continue
            await self.apply([doc], asked_at=asked_at, answered_at=self.tracker.clock())

    async def apply(self, docs: list[dict[str, Any]], *, asked_at: float | None = None, answered_at: float | None = None) -> bool:
        """Fold task documents into the tracker (which notifies) and read the error events
        of tasks with a new fault; True if a status changed (waiters were woken).

        ``asked_at`` and ``answered_at`` (the tracker's clock) date the fetch, so that
        documents that another fetch has overtaken are left out (:meth:`.TaskTracker.fold`).
        """
        changed = False
        for doc in docs:
            folded = self.tracker.fold(doc, asked_at=asked_at, answered_at=answered_at)
            changed = changed or folded.changed
            if folded.check_faults is not None:
                await self._report_faults(folded.check_faults, folded.nice_status)
        if changed:
            self._pulse()
        return changed

    async def _report_faults(self, t: Tracked, nice: str | None) -> None:
        """Hand the task's newest error events to the tracker; cancel the task if it says so (fail_fast)."""
        try:
            events = await self.run(f"task_event_list {t.task_id}", self.fetch.error_events, t.task_id)
        except OrbitError as exc:
            log.warning("%s: cannot read events of task %s: %s", self.name, t.task_id, exc.message)
            return
        if not self.tracker.faults(t, nice, events):
            return
        try:
            await self.run(f"cancel_task {t.task_id}", self.cancel_task, t.task_id)
        except OrbitError as exc:
            log.warning("%s: fail_fast cancel of %s failed: %s", self.name, t.task_id, exc.message)
        self.tracker.pacing.soon(0.2)
