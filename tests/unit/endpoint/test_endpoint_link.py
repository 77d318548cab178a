"""BridgeLink (websockets' Sans-I/O protocol on an asyncio transport) against a real
websockets server on 127.0.0.1, under the default loop and under uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request as HTTPRequest
from websockets.http11 import Response as HTTPResponse

from radical.orbit.endpoint.link import FLUSH_AT, FLUSH_EVERY, BridgeLink, open_link

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    def _run(coro: Awaitable[Any]) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, 20)

        if request.param == "uvloop":
            return uvloop.run(bounded())
        return asyncio.run(bounded())

    return _run


@asynccontextmanager
async def server(handler: Handler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/endpoint"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def test_handshake_headers_and_echo(run: Callable[[Awaitable[Any]], Any]) -> None:
    seen: dict[str, str] = {}

    def process_request(conn: ServerConnection, request: HTTPRequest) -> None:
        seen["auth"] = request.headers.get("Authorization", "")
        seen["agent"] = request.headers.get("User-Agent", "")

    async def main() -> None:
        async with server(echo, process_request=process_request) as url:
            link = await open_link(url, headers={"Authorization": "Bearer t0k"}, user_agent="orbit-test/1")
            assert link.open
            link.send('{"type":"ping","ts":1}')
            assert await link.recv() == '{"type":"ping","ts":1}'
            link.send("é" * 70_000)  # bigger than one read, and not ASCII
            assert await link.recv() == "é" * 70_000
            await link.close()
            assert not link.open
            assert link.close_code == 1000

    run(main())
    assert seen == {"auth": "Bearer t0k", "agent": "orbit-test/1"}


def test_handler_gets_messages_as_they_arrive(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def chatty(ws: ServerConnection) -> None:
        await ws.send("first")
        await ws.recv()  # wait until the client installed its handler
        for i in range(50):
            await ws.send(f"m{i}")
        await ws.send(["frag", "men", "ted"])  # one message in three frames
        await ws.send(b"\x00binary")
        await ws.recv()

    async def main() -> list[str | bytes]:
        got: list[str | bytes] = []
        done = asyncio.Event()
        async with server(chatty) as url:
            link = await open_link(url)
            assert await link.recv() == "first"

            def handler(message: str | bytes) -> None:
                got.append(message)
                if message == b"\x00binary":
                    done.set()

            link.on_message = handler
            link.send("ready")
            await asyncio.wait_for(done.wait(), 5)
            link.send("bye")
            await link.close()
        return got

    got = run(main())
    assert got == [f"m{i}" for i in range(50)] + ["fragmented", b"\x00binary"]


def test_a_raising_handler_does_not_break_the_link(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with server(echo) as url:
            link = await open_link(url)
            calls: list[str | bytes] = []

            def handler(message: str | bytes) -> None:
                calls.append(message)
                if message == "boom":
                    raise RuntimeError("handler bug")

            link.on_message = handler
            link.send("boom")
            link.send("after")
            for _ in range(100):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.02)
            assert calls == ["boom", "after"]
            assert link.open
            await link.close()

    run(main())


def test_refused_handshake_raises_invalid_status(run: Callable[[Awaitable[Any]], Any]) -> None:
    def refuse(conn: ServerConnection, request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(401, "Unauthorized", Headers({"Content-Length": "0"}), b"")

    async def main() -> int:
        async with server(echo, process_request=refuse) as url:
            with pytest.raises(InvalidStatus) as info:
                await open_link(url)
            return info.value.response.status_code

    assert run(main()) == 401


def test_nothing_listening_is_an_oserror(run: Callable[[Awaitable[Any]], Any]) -> None:
    from radical.orbit.testing import free_port

    async def main() -> None:
        with pytest.raises(OSError):
            await open_link(f"ws://127.0.0.1:{free_port()}/ws/endpoint", timeout=5)

    run(main())


def test_silent_server_times_out(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await done.wait()
            finally:
                writer.close()

        srv = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            with pytest.raises(TimeoutError):
                await open_link(f"ws://127.0.0.1:{port}/", timeout=0.3)
            done.set()

    run(main())


def test_server_close_is_seen_with_its_code(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(4009, "name taken")

    async def main() -> tuple[int | None, str | None]:
        async with server(closer) as url:
            link = await open_link(url)
            link.send("hello")
            await asyncio.wait_for(link.wait_closed(), 5)
            with pytest.raises(ConnectionClosed):
                link.send("too late")
            with pytest.raises(ConnectionClosed):
                await link.recv()
            return link.close_code, link.close_reason

    assert run(main()) == (4009, "name taken")


def test_server_pings_are_answered(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def pinger(ws: ServerConnection) -> None:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.send("got the pong")
        await ws.wait_closed()

    async def main() -> Any:
        async with server(pinger) as url:
            link = await open_link(url)
            message = await link.recv()
            await link.close()
            return message

    assert run(main()) == "got the pong"


def test_oversized_message_ends_the_link_with_1009(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def big(ws: ServerConnection) -> None:
        await ws.send("x" * 5000)
        await ws.wait_closed()

    async def main() -> int | None:
        async with server(big) as url:
            link = await open_link(url, max_size=1000)
            await asyncio.wait_for(link.wait_closed(), 5)
            assert not link.open
            sent = link.protocol.close_exc.sent
            return sent.code if sent else None

    assert run(main()) == 1009  # websockets refused it: "message too big"


def test_drain_waits_while_paused_and_fails_when_closed(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with server(echo) as url:
            link = await open_link(url)
            await link.drain()  # not paused: returns at once
            link.pause_writing()
            waiter = asyncio.create_task(link.drain())
            await asyncio.sleep(0.05)
            assert not waiter.done()
            link.resume_writing()
            await asyncio.wait_for(waiter, 1)
            link.pause_writing()
            waiter = asyncio.create_task(link.drain())
            await asyncio.sleep(0.05)
            await link.close()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(waiter, 1)

    run(main())


def test_repr_free_of_secrets(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> str:
        async with server(echo) as url:
            link: BridgeLink = await open_link(url, headers={"Authorization": "Bearer s3cret-token"})
            text = repr(link) + str(vars(link).get("close_timeout"))
            await link.close()
            return text

    assert "s3cret" not in run(main())


def test_invalid_utf8_from_the_server_ends_the_link_with_1007(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def garbler(ws: ServerConnection) -> None:
        await ws.send(b"\xff\xfe", text=True)  # bytes sent as a text frame, as they are
        await ws.wait_closed()

    async def main() -> int | None:
        async with server(garbler) as url:
            link = await open_link(url)
            await asyncio.wait_for(link.wait_closed(), 5)
            sent = link.protocol.close_exc.sent
            return sent.code if sent else None

    assert run(main()) == 1007


def test_messages_queued_before_the_handler_are_handed_over_first(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def burst(ws: ServerConnection) -> None:
        for i in range(5):
            await ws.send(f"early{i}")
        await ws.recv()  # the handler is installed
        await ws.send("late")
        await ws.wait_closed()

    async def main() -> list[str | bytes]:
        got: list[str | bytes] = []
        async with server(burst) as url:
            link = await open_link(url)
            assert await link.recv() == "early0"
            await asyncio.sleep(0.2)  # early1..4 arrive while nobody handles them
            link.set_handler(got.append)
            link.send("ready")
            for _ in range(100):
                if len(got) == 5:
                    break
                await asyncio.sleep(0.02)
            await link.close()
        return got

    assert run(main()) == ["early1", "early2", "early3", "early4", "late"]


class CountingTransport:
    """The link's real transport, counting the writes made on it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_frames_sent_in_one_loop_pass_share_a_write(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with server(echo) as url:
            link = await open_link(url)
            counting = CountingTransport(link.transport)
            link.transport = counting  # type: ignore[assignment]
            for i in range(3):
                link.send(f"a{i}")
            assert counting.writes == 0  # held until the end of this pass of the loop
            assert [await link.recv() for _ in range(3)] == ["a0", "a1", "a2"]
            assert counting.writes == 1

            counting.writes = 0
            for i in range(FLUSH_EVERY * 2 + 1):
                link.send(f"b{i}")
            assert counting.writes == 2  # a full batch is not held back
            assert [await link.recv() for _ in range(FLUSH_EVERY * 2 + 1)] == [f"b{i}" for i in range(FLUSH_EVERY * 2 + 1)]
            assert counting.writes == 3

            counting.writes = 0
            link.send("c" * (FLUSH_AT + 1))  # a large frame goes at once
            assert counting.writes == 1
            assert await link.recv() == "c" * (FLUSH_AT + 1)

            counting.writes = 0
            link.send("d0")
            link.send("d1", now=True)  # nothing else coming: written at once, with what waits
            assert counting.writes == 1
            assert [await link.recv(), await link.recv()] == ["d0", "d1"]
            assert counting.writes == 1
            await link.close()
            assert link.close_code == 1000

    run(main())
