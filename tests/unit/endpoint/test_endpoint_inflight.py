"""endpoint/connection.py Inflight: the requests being answered, and calling one off."""

from __future__ import annotations

import asyncio

from radical.orbit.endpoint.connection import Inflight


def test_call_off_cancels_that_request_only_and_forgets_it() -> None:
    async def run() -> None:
        inflight = Inflight()
        ended: list[str] = []

        async def work(rid: str) -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                ended.append(f"{rid} cancelled, called off: {rid in inflight.called_off}")
                raise

        a = asyncio.create_task(work("a"))
        b = asyncio.create_task(work("b"))
        inflight.track("a", a)
        inflight.track("b", b)
        await asyncio.sleep(0)
        assert inflight.call_off("a") is True
        await asyncio.wait([a], timeout=1)
        assert a.cancelled() and not b.done()
        assert ended == ["a cancelled, called off: True"]
        assert set(inflight.tasks) == {"b"} and inflight.called_off == set()
        assert inflight.call_off("a") is False  # already over
        assert inflight.call_off("nope") is False  # never seen: a late or stray cancel is ignored
        b.cancel()
        await asyncio.wait([b], timeout=1)
        assert inflight.tasks == {} and inflight.called_off == set()

    asyncio.run(run())


def test_a_reused_id_keeps_the_newer_task() -> None:
    """The older task's end must not drop the entry of a newer one under the same id."""

    async def run() -> None:
        inflight = Inflight()
        old = asyncio.create_task(asyncio.sleep(0))
        inflight.track("r", old)
        new = asyncio.create_task(asyncio.sleep(30))
        inflight.track("r", new)
        await old
        await asyncio.sleep(0)
        assert inflight.tasks == {"r": new}
        assert inflight.call_off("r") and (await asyncio.wait([new], timeout=1))[0] == {new}

    asyncio.run(run())
