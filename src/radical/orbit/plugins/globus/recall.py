"""What a ``GlobusClient`` remembers of its tasks, and what it says when a submission's fate is unknown.

:class:`TaskMemory` keeps the last status the client learned of each task it
submitted or tracked (from answers and from its notifications). When the session is
opened again (a new token, an endpoint that restarted) only the tasks not known to
have ended are re-attached: the client learns the state of each of those exactly
once, and a task it already saw end is neither fetched nor told again.

:func:`may_still_run` marks an error after which a submission may still have
happened: the bridge gave up waiting (504), the endpoint or the bridge went away
(503), or the path to Globus failed (502). The request may still run; the same
``submission_id`` makes a retry return the task it created, never a second one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from ...errors import OrbitError

__all__ = ["ENDED", "REMEMBER", "TaskMemory", "may_still_run"]

#: how many tasks a client remembers (the oldest are forgotten beyond)
REMEMBER = 10_000
#: statuses after which a task never changes again (INACTIVE may resume)
ENDED = frozenset({"SUCCEEDED", "FAILED"})
#: HTTP statuses after which a submission may or may not have happened
UNKNOWN_OUTCOME = frozenset({502, 503, 504})


class TaskMemory:
    """Task id -> last known status (None: not known yet), bounded, safe across threads."""

    def __init__(self, size: int = REMEMBER) -> None:
        self._size = size
        self._tasks: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TaskMemory({len(self._tasks)} tasks)"

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def learn(self, task_id: str, status: object = None) -> None:
        """Remember ``task_id``; a status (a string) replaces the one known."""
        with self._lock:
            known = self._tasks.pop(task_id, None)
            self._tasks[task_id] = status if isinstance(status, str) and status else known
            while len(self._tasks) > self._size:
                self._tasks.popitem(last=False)

    def learn_known(self, statuses: dict[str, object]) -> None:
        """Update the status of tasks already remembered (a notification may name others)."""
        with self._lock:
            for task_id, status in statuses.items():
                if task_id in self._tasks and isinstance(status, str) and status:
                    self._tasks[task_id] = status

    def status(self, task_id: str) -> str | None:
        return self._tasks.get(task_id)

    def unfinished(self, first: Iterable[str] = ()) -> list[str]:
        """``first``, then the remembered tasks not known to have ended, newest first,
        as many as one ``track`` takes (``size``) beyond ``first``."""
        given = list(dict.fromkeys(first))
        with self._lock:
            rest = [t for t, status in reversed(self._tasks.items()) if status not in ENDED and t not in given]
        return given + rest[: max(0, self._size - len(given))]


def may_still_run(exc: OrbitError, what: str, submission_id: str) -> OrbitError:
    """``exc`` saying, if its status leaves the outcome open, that ``what`` may still run
    and how to retry without a duplicate (``details["submission_id"]`` too); else ``exc``."""
    status = exc.http_status or exc.status_code
    if status not in UNKNOWN_OUTCOME:
        return exc
    exc.details["submission_id"] = submission_id
    exc.message = (
        f"{exc.message}; the {what} may still run: retry with submission_id={submission_id!r} "
        "(the same id returns the same task, never a second one)"
    )
    exc.args = (exc.message,)
    return exc
