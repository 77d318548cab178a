"""EndpointConnection / Registry: correlation, timeouts, failure on disconnect."""

from __future__ import annotations

import asyncio

import pytest

from radical.orbit.bridge.registry import EndpointConnection, Registry
from radical.orbit.errors import (
    ConflictError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    UpstreamError,
)
from radical.orbit.models.messages import (
    Cancel,
    PluginInfo,
    Register,
    Response,
    parse_frame,
)


def make_conn(
    sent: list[str] | None = None, *, block: bool = False, name: str = "ep1", key: str = "local", cancels: bool = False
) -> EndpointConnection:
    async def send_text(text: str) -> None:
        if block:
            await asyncio.Event().wait()
        if sent is not None:
            sent.append(text)

    register = Register(name=name, plugins=[PluginInfo(name="p")], cancels=cancels)
    conn = EndpointConnection(register, send_text, peer="test", key=key)
    conn.mark_ready()  # as after its "registered" frame went out
    return conn


class TestEndpointConnection:
    def test_resolve_by_id_only(self) -> None:
        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent)
            a = asyncio.create_task(conn.request("a", "frame-a", 5))
            b = asyncio.create_task(conn.request("b", "frame-b", 5))
            await asyncio.sleep(0)
            assert sent == ["frame-a", "frame-b"] and set(conn.pending) == {"a", "b"}
            assert not conn.resolve(Response(id="zzz", status=200))
            assert conn.resolve(Response(id="b", status=202))
            assert conn.resolve(Response(id="a", status=201))
            assert (await a).status == 201 and (await b).status == 202
            assert conn.pending == {}
            assert not conn.resolve(Response(id="a", status=200))  # a second answer is ignored

        asyncio.run(run())

    def test_timeout_even_when_send_blocks(self) -> None:
        async def run() -> None:
            conn = make_conn(block=True)
            with pytest.raises(GatewayTimeoutError) as info:
                await conn.request("a", "frame", 0.05, what="GET /ep1/p/x")
            assert "GET /ep1/p/x" in info.value.message and info.value.status_code == 504
            assert conn.pending == {}

        asyncio.run(run())

    def test_timeout_while_waiting_for_the_answer(self) -> None:
        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent)
            with pytest.raises(GatewayTimeoutError) as info:
                await conn.request("a", "frame", 0.05)
            assert sent == ["frame"] and "within 0.05 s" in info.value.message
            assert conn.pending == {}
            assert not conn.resolve(Response(id="a", status=200))  # a late answer finds nobody

        asyncio.run(run())

    def test_a_request_given_up_on_is_called_off(self) -> None:
        """After the 504, an endpoint that takes cancel frames is told to stop the work."""

        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent, cancels=True)
            with pytest.raises(GatewayTimeoutError):
                await conn.request("a", "frame", 0.05)
            for _ in range(5):
                await asyncio.sleep(0)
            assert sent[0] == "frame"
            frame = parse_frame(sent[1])
            assert isinstance(frame, Cancel) and frame.id == "a" and "504" in frame.reason

        asyncio.run(run())

    def test_no_cancel_to_an_endpoint_that_does_not_take_them(self) -> None:
        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent)
            with pytest.raises(GatewayTimeoutError):
                await conn.request("a", "frame", 0.05)
            for _ in range(5):
                await asyncio.sleep(0)
            assert sent == ["frame"]

        asyncio.run(run())

    def test_no_cancel_for_a_request_never_sent(self) -> None:
        """A request that timed out waiting for the endpoint to be ready never reached it."""

        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent, cancels=True)
            conn.ready = False
            with pytest.raises(GatewayTimeoutError):
                await conn.request("a", "frame", 0.05)
            for _ in range(5):
                await asyncio.sleep(0)
            assert sent == []

        asyncio.run(run())

    def test_a_cancel_to_a_closed_connection_is_not_sent(self) -> None:
        async def run() -> None:
            sent: list[str] = []
            conn = make_conn(sent, cancels=True)
            task = asyncio.create_task(conn.request("a", "frame", 0.05))
            await asyncio.sleep(0)
            conn.closed = True
            with pytest.raises((GatewayTimeoutError, EndpointUnavailableError)):
                await task
            for _ in range(5):
                await asyncio.sleep(0)
            assert sent == ["frame"]

        asyncio.run(run())

    @pytest.mark.parametrize("block", [True, False], ids=["sending", "waiting"])
    def test_a_cancel_from_outside_stays_a_cancel(self, block: bool) -> None:
        """Only the request's own deadline becomes a 504; a cancelled caller is cancelled."""

        async def run() -> None:
            conn = make_conn([], block=block)
            task = asyncio.create_task(conn.request("a", "frame", 5))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert conn.pending == {}
            assert not task.cancelling() or task.cancelled()

        asyncio.run(run())

    def test_an_answer_before_the_deadline_cancels_the_timer(self) -> None:
        async def run() -> None:
            conn = make_conn([])
            task = asyncio.create_task(conn.request("a", "frame", 0.05))
            await asyncio.sleep(0)
            conn.resolve(Response(id="a", status=200))
            assert (await task).status == 200
            await asyncio.sleep(0.1)  # the timer, had it stayed, would fire into a done future here

        asyncio.run(run())

    def test_fail_all_and_reject(self) -> None:
        async def run() -> None:
            conn = make_conn([])
            a = asyncio.create_task(conn.request("a", "f", 5))
            b = asyncio.create_task(conn.request("b", "f", 5))
            await asyncio.sleep(0)
            assert conn.reject("b", "plugin crashed", "boom")
            assert conn.fail_all("disconnected") == 1
            with pytest.raises(EndpointUnavailableError):
                await a
            with pytest.raises(UpstreamError):
                await b
            conn.closed = True
            with pytest.raises(EndpointUnavailableError):
                await conn.request("c", "f", 5)

        asyncio.run(run())

    def test_send_errors_become_503(self) -> None:
        async def broken(text: str) -> None:
            raise RuntimeError("Cannot call send once a close message has been sent.")

        async def run() -> None:
            conn = EndpointConnection(Register(name="ep1"), broken)
            conn.mark_ready()
            with pytest.raises(EndpointUnavailableError):
                await conn.request("a", "f", 5)

        asyncio.run(run())

    def test_requests_wait_for_the_registration(self) -> None:
        """A request that finds the connection while it registers (the registry holds it
        before its "registered" frame went out) is sent after that frame, never before."""

        async def run() -> None:
            sent: list[str] = []
            conn = EndpointConnection(Register(name="ep1"), lambda text: _record(sent, text))
            task = asyncio.create_task(conn.request("a", "request-frame", 5))
            await asyncio.sleep(0.05)
            assert sent == [] and not conn.pending
            await conn.send("registered-frame")
            conn.mark_ready()
            await asyncio.sleep(0.01)
            assert sent == ["registered-frame", "request-frame"]
            conn.resolve(Response(id="a", status=200))
            assert (await task).status == 200
            # refused while registering: the waiting request is a 503 at once
            refused = EndpointConnection(Register(name="ep2"), lambda text: _record(sent, text))
            waiting = asyncio.create_task(refused.request("b", "frame", 5))
            await asyncio.sleep(0.01)
            refused.closed = True
            refused.fail_all("was refused its name")
            with pytest.raises(EndpointUnavailableError):
                await waiting

        asyncio.run(run())


async def _record(sent: list[str], text: str) -> None:
    sent.append(text)


class TestRegistry:
    def test_add_get_remove(self) -> None:
        reg = Registry()
        first = make_conn()
        assert reg.add(first) is None
        with pytest.raises(ConflictError):
            reg.add(make_conn(key="other"))  # a live holder with another key keeps its name
        with pytest.raises(ConflictError):
            reg.add(make_conn(name="EP1", key="other"))  # in any case
        assert reg.get("ep1") is first and reg.get("Ep1") is first
        with pytest.raises(EndpointNotFoundError) as info:
            reg.get("nope")
        assert "ep1" in info.value.message and info.value.details["available"] == ["ep1"]
        assert not reg.remove(make_conn())  # a stranger cannot remove the holder
        first.closed = True
        second = make_conn(key="other")
        assert reg.add(second) is None  # a closed holder gives way
        assert reg.remove(second) and len(reg) == 0

    def test_the_same_key_takes_over(self) -> None:
        """The key that holds a name replaces its own live connection (a reconnect the
        bridge has not noticed yet); the caller gets the old one to close."""
        reg = Registry()
        first = make_conn()
        reg.add(first)
        second = make_conn(name="EP1")
        assert reg.add(second) is first
        assert reg.get("ep1") is second and len(reg) == 1
        assert not reg.remove(first)  # the replaced one no longer holds the name
