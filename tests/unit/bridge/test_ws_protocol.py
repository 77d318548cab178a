"""OrbitWebSocketProtocol: uvicorn's Sans-I/O WebSocket protocol with direct delivery.

Runs a real uvicorn (in a thread) with a tiny ASGI app. If a uvicorn upgrade changes
the internals the subclass relies on, these tests say so (the bridge would silently
fall back to plain uvicorn and lose the shortcut).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from radical.orbit.bridge.ws_protocol import (
    EXTENSION,
    OrbitWebSocketProtocol,
    protocol_class,
)
from radical.orbit.testing import free_port


class App:
    """Echoes through the handler when ``direct``; through ``receive()`` otherwise."""

    def __init__(self) -> None:
        self.direct_messages: list[str | bytes] = []
        self.queued_messages: list[str | bytes] = []
        self.disconnects: list[int] = []
        self.offered: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        offer = scope.get("extensions", {}).get(EXTENSION)
        self.offered.append(bool(offer))
        replies: set[asyncio.Task[None]] = set()
        if offer and scope["path"] == "/direct":

            def handler(message: str | bytes) -> None:
                self.direct_messages.append(message)
                if message == "raise":
                    raise RuntimeError("handler bug")
                task = asyncio.ensure_future(send({"type": "websocket.send", "text": f"direct:{message!r}"}))
                replies.add(task)
                task.add_done_callback(replies.discard)

            offer["set_handler"](handler)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message.get("code", 0))
                return
            data = message.get("text") if message.get("text") is not None else message.get("bytes")
            self.queued_messages.append(data)
            await send({"type": "websocket.send", "text": f"queued:{data!r}"})


@pytest.fixture
def live() -> Iterator[tuple[str, App]]:
    app = App()
    port = free_port()
    cls = protocol_class()
    assert cls is OrbitWebSocketProtocol, "uvicorn's Sans-I/O WebSocket protocol changed shape"
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=cls, log_config=None, lifespan="on", ws_ping_interval=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def test_messages_go_to_the_handler_and_disconnect_to_receive(live: tuple[str, App]) -> None:
    url, app = live
    with connect(f"{url}/direct") as ws:
        for i in range(20):
            ws.send(f"m{i}")
            assert ws.recv(timeout=5) == f"direct:'m{i}'"
        ws.send(b"\x01\x02")
        assert ws.recv(timeout=5) == "direct:b'\\x01\\x02'"
        ws.send(["frag", "ment"])
        assert ws.recv(timeout=5) == "direct:'fragment'"
        ws.send("raise")  # the handler's exception is logged, the connection lives on
        ws.send("still here")
        assert ws.recv(timeout=5) == "direct:'still here'"
    deadline = time.monotonic() + 5
    while not app.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.direct_messages[:20] == [f"m{i}" for i in range(20)]
    assert app.queued_messages == []
    assert app.disconnects == [1000]


def test_apps_that_ignore_the_extension_see_plain_uvicorn(live: tuple[str, App]) -> None:
    url, app = live
    with connect(f"{url}/queued") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "queued:'hello'"
    assert app.offered == [True]
    assert app.direct_messages == []


def test_invalid_utf8_closes_with_1007(live: tuple[str, App]) -> None:
    url, _ = live
    with connect(f"{url}/direct") as ws:
        ws.send("ok")
        assert ws.recv(timeout=5) == "direct:'ok'"
        # a text frame whose payload is not UTF-8, written below websockets' own checks
        with ws.protocol_mutex:
            ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
            ws.socket.sendall(b"".join(ws.protocol.data_to_send()))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007


class _SlowClosingTransport(asyncio.Transport):
    """A transport that, like TLS, is still there a while after ``close()``."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_shutdown_while_a_peer_close_is_still_closing_the_transport() -> None:
    """The endpoint hangs up, then the bridge stops before the TLS transport is gone:
    uvicorn sent a second close frame there and websockets raised InvalidState."""
    from uvicorn.server import ServerState
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    async def scenario() -> list[bytes]:
        app = App()
        config = uvicorn.Config(app, ws=OrbitWebSocketProtocol, log_config=None, ws_ping_interval=None)
        config.load()
        state = ServerState()
        server = OrbitWebSocketProtocol(config, state, {}, _loop=asyncio.get_running_loop())
        transport = _SlowClosingTransport()
        server.connection_made(transport)
        client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/direct"))
        client.send_request(client.connect())
        server.data_received(b"".join(client.data_to_send()))
        for _ in range(100):  # the app task accepts
            if transport.written:
                break
            await asyncio.sleep(0.01)
        client.receive_data(b"".join(transport.written))
        client.send_close(1000)
        server.data_received(b"".join(client.data_to_send()))  # answered; transport closing
        assert transport.closing and server in state.connections
        after_close = len(transport.written)
        server.shutdown()  # the server stops now: must not raise, must not send again
        extra = transport.written[after_close:]
        server.connection_lost(None)
        await asyncio.sleep(0.05)
        assert app.disconnects == [1000]
        return extra

    assert asyncio.run(scenario()) == []
