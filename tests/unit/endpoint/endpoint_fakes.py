"""A tiny fake bridge (a websockets server on 127.0.0.1) for the endpoint agent tests.

Imported by the tests as ``endpoint_fakes`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, Self

from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HTTPRequest
from websockets.http11 import Response as HTTPResponse

from radical.orbit.endpoint.settings import EndpointSettings
from radical.orbit.models.messages import (
    Ack,
    ErrorFrame,
    Notification,
    Ping,
    Pong,
    Register,
    Registered,
    Request,
    Response,
    dump_frame,
    encode_body,
    parse_frame,
)

#: the endpoint key the fake bridge knows
KEY = "orbit_ek_unit-test-endpoint-key"


class FakeBridge:
    """Speaks just enough of the bridge protocol to drive an EndpointAgent.

    :param key: the endpoint key it accepts (None: any, or none)
    :param refuse: ``(error_code, close_code)`` to refuse every registration with
    :param deny: ``(status, message)`` to refuse every upgrade request with, as the bridge does
    :param silent: accept the registration, then never send or answer anything
    :param max_frame: the frame limit announced in ``registered`` (None: not announced)
    :param acks: announce acknowledgements, and acknowledge each numbered notification
    :param hold_acks: with ``acks``, acknowledge nothing by itself (the test calls :meth:`ack`)
    """

    def __init__(
        self,
        *,
        key: str | None = KEY,
        deny: tuple[int, str] | None = None,
        heartbeat: float = 5.0,
        port: int = 0,
        refuse: tuple[str, int] | None = None,
        silent: bool = False,
        max_frame: int | None = None,
        acks: bool = False,
        hold_acks: bool = False,
    ) -> None:
        self.max_frame = max_frame
        self.acks = acks
        self.hold_acks = hold_acks
        self.key = key
        self.deny = deny
        #: the X-Orbit-Endpoint header of every upgrade request
        self.names: list[str | None] = []
        self.heartbeat = heartbeat
        self.port = port
        self.refuse = refuse
        self.silent = silent
        self.server: Server | None = None
        self.registers: list[Register] = []
        self.notifications: list[Notification] = []
        self.pings = 0
        self.errors: list[ErrorFrame] = []
        self.connections: list[ServerConnection] = []
        self.registered = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._ids = itertools.count(1)
        self._notified = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conn(self) -> ServerConnection:
        return self.connections[-1]

    def settings(self, name: str = "ep1", **kwargs: Any) -> EndpointSettings:
        kwargs.setdefault("key", SecretStr(self.key) if self.key else None)
        kwargs.setdefault("plugins", ["sysinfo"])
        kwargs.setdefault("plugin_options", {"sysinfo": {"test_routes": True}})  # echo, bytes, sleep
        kwargs.setdefault("backoff_initial", 0.05)
        kwargs.setdefault("backoff_max", 0.2)
        return EndpointSettings(name=name, url=self.url, **kwargs)

    def _auth(self, conn: ServerConnection, request: HTTPRequest) -> HTTPResponse | None:
        self.names.append(request.headers.get("X-Orbit-Endpoint"))
        if self.deny is not None:
            return self._refusal(conn, *self.deny)
        if self.key is None or request.headers.get("Authorization") == f"Bearer {self.key}":
            return None
        return self._refusal(conn, 401, "unknown endpoint key: enrol the endpoint")

    @staticmethod
    def _refusal(conn: ServerConnection, status: int, message: str) -> HTTPResponse:
        response = conn.respond(status, json.dumps({"code": "refused", "message": message}))
        response.headers["Content-Type"] = "application/json"
        return response

    async def start(self) -> FakeBridge:
        self.server = await serve(self._handler, "127.0.0.1", self.port, process_request=self._auth, max_size=None)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        self.registered.clear()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handler(self, ws: ServerConnection) -> None:
        register = parse_frame(await ws.recv())
        assert isinstance(register, Register)
        self.registers.append(register)
        if self.refuse is not None:
            code, close_code = self.refuse
            await ws.send(dump_frame(ErrorFrame(code=code, message=f"refused: {code}")))
            await ws.close(close_code, code)
            return
        await ws.send(dump_frame(Registered(name=register.name, heartbeat_interval=self.heartbeat, max_frame=self.max_frame, acks=self.acks)))
        self.connections.append(ws)
        self.registered.set()
        try:
            async for raw in ws:
                if self.silent:
                    continue
                frame = parse_frame(raw)
                if isinstance(frame, Ping):
                    self.pings += 1
                    await ws.send(dump_frame(Pong(ts=frame.ts)))
                elif isinstance(frame, Response):
                    fut = self._pending.pop(frame.id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                elif isinstance(frame, Notification):
                    self.notifications.append(frame)
                    self._notified.set()
                    if self.acks and not self.hold_acks and frame.seq is not None:
                        await ws.send(dump_frame(Ack(seq=frame.seq)))
                elif isinstance(frame, ErrorFrame):
                    self.errors.append(frame)
        except ConnectionClosed:
            pass

    async def ack(self, seq: int) -> None:
        await self.conn.send(dump_frame(Ack(seq=seq)))

    async def send_raw(self, text: str) -> None:
        await self.conn.send(text)

    def request_nowait(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> asyncio.Future[Response]:
        rid = f"r{next(self._ids)}"
        if headers is None:
            headers = [("content-type", "application/json")] if body else []
        text, encoding = encode_body(body)
        frame = Request(id=rid, method=method, path=path, query=query, headers=headers, body=text, body_encoding=encoding)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        asyncio.ensure_future(self.conn.send(dump_frame(frame)))
        return fut

    async def request(self, method: str, path: str, *, timeout: float = 5.0, **kwargs: Any) -> Response:
        return await asyncio.wait_for(self.request_nowait(method, path, **kwargs), timeout)

    async def wait_notifications(self, n: int, timeout: float = 5.0) -> list[Notification]:
        async with asyncio.timeout(timeout):
            while len(self.notifications) < n:
                self._notified.clear()
                await self._notified.wait()
        return self.notifications


class ThreadedBridge:
    """A FakeBridge on its own event loop thread, for driving the (blocking) CLI."""

    def __init__(self, **kwargs: Any) -> None:
        import threading

        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.bridge: FakeBridge | None = None

    def __enter__(self) -> FakeBridge:
        self._thread.start()

        async def start() -> FakeBridge:
            return await FakeBridge(**self._kwargs).start()

        self.bridge = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        return self.bridge

    def __exit__(self, *exc: object) -> None:
        if self.bridge is not None:
            asyncio.run_coroutine_threadsafe(self.bridge.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class FakeProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that relays tunnels, or refuses them.

    :param answer: send these bytes to every CONNECT instead of relaying (a 407, junk...)
    :param credentials: ``user:password`` the proxy wants (407 without them)
    """

    def __init__(self, *, answer: bytes | None = None, credentials: str | None = None) -> None:
        self.answer = answer
        self.credentials = credentials
        self.port = 0
        #: the request head of every CONNECT received
        self.requests: list[bytes] = []
        #: ``host:port`` of every tunnel opened
        self.tunnels: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import base64

        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if self.answer is not None:
                writer.write(self.answer)
                await writer.drain()
                return
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split()[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if self.credentials is not None:
                wanted = "Basic " + base64.b64encode(self.credentials.encode()).decode()
                if headers.get("proxy-authorization") != wanted:
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
            host, _, port = target.rpartition(":")
            up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
            self._writers.add(upstream)
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
