"""ShareOfPool: one identity's share of the globus plugin's thread pool, with plain
functions on a real ThreadPoolExecutor (no Globus)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor

import pytest

from radical.orbit.plugins.globus.pool import ShareOfPool, default_share

WAIT = 30  # generous: these only bound a wait for something that must happen


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=4)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


class Gate:
    """Calls that block until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.order: list[int] = []

    def call(self, n: int) -> int:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.order.append(n)
        try:
            self.release.wait(WAIT)
        finally:
            with self.lock:
                self.now -= 1
        return n


def test_default_share_leaves_threads_for_the_others() -> None:
    assert [default_share(w) for w in (1, 2, 3, 4, 16, 256)] == [1, 1, 2, 3, 12, 192]


def test_at_most_limit_calls_run_the_rest_wait_in_order(pool: ThreadPoolExecutor) -> None:
    share, gate = ShareOfPool(pool, 2), Gate()
    futures = [share.submit(gate.call, n) for n in range(6)]
    assert share.running == 2 and share.waiting == 4
    gate.release.set()
    assert [f.result(WAIT) for f in futures] == list(range(6))
    assert gate.most == 2 and share.running == 0 and share.waiting == 0
    one, gate = ShareOfPool(pool, 1), Gate()  # one at a time: the queue's order is the order they run in
    gate.release.set()
    assert [f.result(WAIT) for f in [one.submit(gate.call, n) for n in range(6)]] == list(range(6))
    assert gate.order == list(range(6)) and gate.most == 1


def test_a_hung_identity_does_not_starve_another(pool: ThreadPoolExecutor) -> None:
    """Four threads, shares of three: whatever one identity's calls hang on, the other's run."""
    hung, gate = ShareOfPool(pool, 3), Gate()
    stuck = [hung.submit(gate.call, n) for n in range(10)]
    other = ShareOfPool(pool, 3)
    try:
        assert other.submit(lambda: "answered").result(WAIT) == "answered"
        assert not any(f.done() for f in stuck)
    finally:
        gate.release.set()
    assert [f.result(WAIT) for f in stuck] == list(range(10))


def test_errors_reach_the_caller_and_free_the_slot(pool: ThreadPoolExecutor) -> None:
    share = ShareOfPool(pool, 1)

    def fail() -> None:
        raise ValueError("from Globus")

    bad = share.submit(fail)
    good = share.submit(lambda: 1)
    with pytest.raises(ValueError, match="from Globus"):
        bad.result(WAIT)
    assert good.result(WAIT) == 1


def test_a_cancelled_waiting_call_never_runs(pool: ThreadPoolExecutor) -> None:
    share, gate = ShareOfPool(pool, 1), Gate()
    first = share.submit(gate.call, 0)
    dropped = share.submit(gate.call, 1)
    last = share.submit(gate.call, 2)
    assert dropped.cancel()
    gate.release.set()
    assert first.result(WAIT) == 0 and last.result(WAIT) == 2
    assert dropped.cancelled() and gate.order == [0, 2]


def test_shutdown_cancels_the_queue_and_refuses_more(pool: ThreadPoolExecutor) -> None:
    share, gate = ShareOfPool(pool, 1), Gate()
    running = share.submit(gate.call, 0)
    queued = share.submit(gate.call, 1)
    share.shutdown(wait=False)
    with pytest.raises(CancelledError):
        queued.result(WAIT)
    with pytest.raises(RuntimeError, match="shutdown"):
        share.submit(gate.call, 2)
    gate.release.set()
    assert running.result(WAIT) == 0 and gate.order == [0]


def test_a_pool_shut_down_under_it_fails_the_calls_it_dropped() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    share, gate = ShareOfPool(executor, 1), Gate()
    running = share.submit(gate.call, 0)
    queued = share.submit(gate.call, 1)
    executor.shutdown(wait=False, cancel_futures=True)
    gate.release.set()
    assert running.result(WAIT) == 0
    with pytest.raises(RuntimeError, match="shut"):
        queued.result(WAIT)


def test_asyncio_waits_on_a_share_as_on_a_pool(pool: ThreadPoolExecutor) -> None:
    share = ShareOfPool(pool, 2)

    async def go() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(share, abs, -n) for n in range(8))))

    assert asyncio.run(go()) == list(range(8))


def test_a_limit_below_one_is_refused(pool: ThreadPoolExecutor) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ShareOfPool(pool, 0)
