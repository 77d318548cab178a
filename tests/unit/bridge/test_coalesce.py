"""CoalescingTransport: the writes of one loop pass reach the socket as one call.

A recording transport stands in for the socket's; the uvicorn tests drive the real
protocol classes the bridge's config serves with (on and off), so a uvicorn change
that adds writes (or bypasses the transport it was given) shows up here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from bridge_helpers import make_settings
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from radical.orbit.bridge.coalesce import (
    FLUSH_AT,
    CoalescingTransport,
    coalesce,
    coalescing,
)
from radical.orbit.bridge.server import WS_PROTOCOL, server_config


class Recorder(asyncio.Transport):
    """Records what reaches the 'socket': one entry per write/writelines call."""

    def __init__(self) -> None:
        super().__init__({"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)})
        self.calls: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof = False
        self.protocol: asyncio.BaseProtocol | None = None
        self.reading = True

    def write(self, data: Any) -> None:
        self.calls.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(b"".join(bytes(d) for d in list_of_data))

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol


def _run(fn: Any) -> Any:
    """A sync test that runs the coroutine function ``fn`` on a fresh loop."""

    def test() -> None:
        asyncio.run(fn())

    test.__name__ = fn.__name__
    test.__doc__ = fn.__doc__
    return test


async def _pass() -> None:
    """Let the loop finish its current pass (the flush is a call_soon)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


@_run
async def test_writes_in_one_pass_become_one_call() -> None:
    inner = Recorder()
    t = coalesce(inner)
    t.write(b"head ")
    t.write(b"")  # nothing: no empty chunk, no extra call
    t.writelines([b"bo", b"dy"])
    assert inner.calls == []
    assert t.get_write_buffer_size() == 7 + len(b"head body")
    await _pass()
    assert inner.calls == [b"head body"]
    t.write(b"next")
    await _pass()
    assert inner.calls == [b"head body", b"next"]


@_run
async def test_order_is_kept_across_passes_and_close_flushes() -> None:
    inner = Recorder()
    t = coalesce(inner)
    t.write(b"1")
    await _pass()
    t.write(b"2")
    t.write(b"3")
    t.close()
    assert inner.calls == [b"1", b"23"]
    assert inner.closed


@_run
async def test_write_eof_flushes_first_and_abort_drops() -> None:
    inner = Recorder()
    t = coalesce(inner)
    t.write(b"last")
    t.write_eof()
    assert inner.calls == [b"last"] and inner.eof

    other = Recorder()
    t2 = coalesce(other)
    t2.write(b"never")
    t2.abort()
    await _pass()
    assert other.calls == [] and other.aborted


@_run
async def test_large_writes_go_out_at_once() -> None:
    """So the real transport's flow control still sees them as they come."""
    inner = Recorder()
    t = coalesce(inner)
    t.write(b"x" * 100)
    t.write(b"y" * FLUSH_AT)
    assert inner.calls == [b"x" * 100 + b"y" * FLUSH_AT]
    t.write(b"z")
    await _pass()
    assert inner.calls[-1] == b"z"


@_run
async def test_nothing_is_written_to_a_transport_closed_underneath() -> None:
    inner = Recorder()
    t = coalesce(inner)
    t.write(b"late")
    inner.closed = True  # the peer went away before the pass ended
    await _pass()
    assert inner.calls == []


@_run
async def test_everything_else_is_the_real_transports() -> None:
    inner = Recorder()
    t = coalesce(inner)
    assert coalesce(t) is t  # an upgrade hands the same transport on: not wrapped twice
    assert isinstance(t, CoalescingTransport) and t.inner is inner
    assert t.get_extra_info("peername") == ("127.0.0.1", 5555)
    assert t.get_extra_info("nothing", "default") == "default"
    t.pause_reading()
    assert not t.is_reading()
    t.resume_reading()
    assert t.is_reading()
    proto = asyncio.Protocol()
    t.set_protocol(proto)
    assert t.get_protocol() is proto and inner.protocol is proto
    assert t.can_write_eof()
    assert "Recorder" in repr(t)


class _App:
    """Answers HTTP with head and body as two ASGI messages; accepts a WebSocket and
    sends two frames right away."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "frame 1"})
            await send({"type": "websocket.send", "text": "frame 2"})
            while (await receive())["type"] != "websocket.disconnect":
                pass
            return
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def _uvicorn_choice() -> tuple[type[asyncio.Protocol], type[asyncio.Protocol] | None]:
    """The protocol classes uvicorn itself loads for the bridge's ``http=`` and ``ws=``."""
    config = uvicorn.Config(_App(), http="auto", ws=WS_PROTOCOL, log_config=None)
    config.load()
    return config.http_protocol_class, config.ws_protocol_class


def _connection(coalesce_writes: bool) -> tuple[asyncio.Protocol, Recorder]:
    """A connection of the protocol class the bridge's config serves with, on a recorder."""
    config = server_config(_App(), make_settings(coalesce_writes=coalesce_writes))
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=uvicorn.Server(config).server_state, app_state={}
    )
    inner = Recorder()
    protocol.connection_made(inner)
    return protocol, inner


def test_the_bridge_wraps_the_class_uvicorn_chose_or_leaves_it() -> None:
    chosen, chosen_ws = _uvicorn_choice()
    on = server_config(_App(), make_settings())
    off = server_config(_App(), make_settings(coalesce_writes=False))
    assert on.http_protocol_class is not chosen and issubclass(on.http_protocol_class, chosen)
    assert on.http_protocol_class.__name__ == f"Coalescing{chosen.__name__}"
    assert off.http_protocol_class is chosen
    # the WebSocket class only gains the shutdown workaround (server.quiet_shutdown), either way
    for config in (on, off):
        assert chosen_ws is not None and config.ws_protocol_class is not None
        assert issubclass(config.ws_protocol_class, chosen_ws) and config.ws_protocol_class.__name__.startswith("QuietShutdown")


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@_run
async def test_uvicorn_writes_a_response_in_one_call() -> None:
    """uvicorn writes head and body separately; through the bridge's class, once."""
    protocol, inner = _connection(coalesce_writes=True)
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")  # type: ignore[attr-defined]
    await _settle()
    assert inner.calls == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    protocol.connection_lost(None)


@_run
async def test_switched_off_uvicorn_writes_as_it_does() -> None:
    protocol, inner = _connection(coalesce_writes=False)
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")  # type: ignore[attr-defined]
    await _settle()
    assert b"".join(inner.calls) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert len(inner.calls) > 1
    protocol.connection_lost(None)


@_run
async def test_endpoint_sockets_coalesce_too() -> None:
    """The upgrade hands the coalescing transport on: the handshake answer and the
    frames the app sends in the same pass reach the socket as one call."""
    protocol, inner = _connection(coalesce_writes=True)
    client = ClientProtocol(parse_uri("ws://a/ws"))
    client.send_request(client.connect())
    protocol.data_received(b"".join(client.data_to_send()))  # type: ignore[attr-defined]
    await _settle()
    assert len(inner.calls) == 1
    client.receive_data(inner.calls[0])
    assert [frame.data for frame in client.events_received()[1:]] == [b"frame 1", b"frame 2"]
    ws_protocol = inner.protocol
    assert ws_protocol is not None and ws_protocol is not protocol  # the upgrade happened
    ws_protocol.connection_lost(None)  # type: ignore[attr-defined]


@_run
async def test_coalescing_wraps_any_asyncio_protocol() -> None:
    class Plain(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

    cls = coalescing(Plain)
    assert issubclass(cls, Plain) and cls.__name__ == "CoalescingPlain"
    protocol = cls()
    inner = Recorder()
    protocol.connection_made(inner)
    assert isinstance(protocol.transport, CoalescingTransport) and protocol.transport.inner is inner  # type: ignore[attr-defined]
