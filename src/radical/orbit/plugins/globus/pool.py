"""One identity's share of the globus plugin's thread pool.

Every session's blocking globus-sdk calls run on the plugin's one pool of
``workers`` threads. Shared as it is, a client whose calls hang on a slow
collection (each one holds a thread until globus-sdk's timeout) could take every
thread and make everybody else's calls wait. So each client identity submits
through a :class:`ShareOfPool`: at most ``limit`` of its calls run at once, the
rest queue in order in the share (holding no thread), and the threads beyond the
limit stay free for the other identities.

A share is a :class:`concurrent.futures.Executor`, so ``loop.run_in_executor(share,
fn)`` works as with the pool itself; cancelling a queued call drops it before it
runs.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["ShareOfPool", "default_share"]

T = TypeVar("T")


def default_share(workers: int) -> int:
    """Calls one identity may run at once when no limit is set: all but a quarter of the
    pool (at least one thread stays for the others, if there are two), at least one."""
    reserve = max(1, workers // 4) if workers > 1 else 0
    return workers - reserve


class ShareOfPool(Executor):
    """At most ``limit`` calls of one owner running on ``pool`` at once; the rest wait here, in order."""

    def __init__(self, pool: Executor, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a share needs a limit of at least 1, got {limit}")
        self.pool = pool
        self.limit = limit
        self.running = 0
        self._waiting: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ShareOfPool(limit={self.limit}, running={self.running}, waiting={len(self._waiting)})"

    @property
    def waiting(self) -> int:
        """Calls queued in this share, not running yet."""
        return len(self._waiting)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        outer: Future[T] = Future()
        call = functools.partial(fn, *args, **kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            if self.running >= self.limit:
                self._waiting.append((outer, call))
                return outer
            self.running += 1
        self._start(outer, call)
        return outer

    def _start(self, outer: Future[Any], call: Callable[[], Any]) -> None:
        """Hand ``call`` to the pool; its slot passes on when it ends (or never started)."""
        while True:
            if outer.set_running_or_notify_cancel():  # False: cancelled while it waited
                try:
                    inner = self.pool.submit(call)
                except RuntimeError as exc:  # the pool was shut down
                    outer.set_exception(exc)
                else:
                    inner.add_done_callback(functools.partial(self._finished, outer))
                    return
            nxt = self._next()
            if nxt is None:
                return
            outer, call = nxt

    def _finished(self, outer: Future[Any], inner: Future[Any]) -> None:
        if inner.cancelled():  # the pool dropped it at shutdown
            outer.set_exception(RuntimeError("the Globus thread pool shut down before the call ran"))
        elif (exc := inner.exception()) is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())
        nxt = self._next()
        if nxt is not None:
            self._start(*nxt)

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        """The next queued call, which takes over the slot just freed; None frees it."""
        with self._lock:
            if self._waiting and not self._closed:
                return self._waiting.popleft()
            self.running -= 1
            return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls and cancel the queued ones (the pool's owner shuts the pool down)."""
        with self._lock:
            self._closed = True
            queued = list(self._waiting)
            self._waiting.clear()
        for outer, _ in queued:
            outer.cancel()
