"""raise_if_cancelled: a cancellation a library swallowed still ends the task (redis/redis-py#2028)."""

from __future__ import annotations

import asyncio

import pytest

from radical.orbit.bridge.backplane.cancelled import raise_if_cancelled


async def swallowing_call() -> None:
    """What redis-py did on occasion: eat the CancelledError and return."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        pass


async def loop_forever(calls: list[int]) -> None:
    wake = asyncio.Event()
    while True:
        await swallowing_call()
        calls.append(1)
        raise_if_cancelled()
        await wake.wait()  # without the check the task would park here for good


def test_a_swallowed_cancellation_still_ends_the_loop() -> None:
    async def main() -> None:
        calls: list[int] = []
        task = asyncio.create_task(loop_forever(calls))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
        assert calls == [1] and task.cancelled()

    asyncio.run(main())


def test_nothing_happens_when_not_cancelled() -> None:
    async def main() -> None:
        raise_if_cancelled()

    asyncio.run(main())
