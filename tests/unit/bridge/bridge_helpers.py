"""Bridge unit-test helpers: settings and a scripted fake endpoint.

The fake endpoint speaks the real frame protocol over TestClient's
``websocket_connect``; ``serve(handler)`` answers ``request`` frames from a thread
(``handler(frame) -> Response | None``; None leaves the request unanswered).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import anyio
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # starlette >= 1.x prefers the httpx2 fork for its TestClient; httpx works the same here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from radical.orbit.bridge import BridgeSettings
from radical.orbit.models.messages import (
    PluginInfo,
    Register,
    Request,
    Response,
    dump_frame,
    encode_body,
    parse_frame,
)

#: what TestClient raises once either side has closed the socket
_GONE = (WebSocketDisconnect, anyio.ClosedResourceError, anyio.EndOfStream, anyio.BrokenResourceError, RuntimeError)

TOKEN = "unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def local_key() -> str:
    """The endpoint key a bridge writes into this test's HOME (``create_app`` makes it)."""
    return (Path.home() / ".radical" / "orbit" / "endpoint.key").read_text(encoding="utf-8").strip()


def endpoint_headers(name: str, key: str | None = None) -> dict[str, str]:
    """What an endpoint sends on the upgrade request: its key and its name."""
    return {"Authorization": f"Bearer {key or local_key()}", "X-Orbit-Endpoint": name}


def make_settings(**overrides: Any) -> BridgeSettings:
    values: dict[str, Any] = {"auth": True, "token": TOKEN, "heartbeat_interval": 30.0}
    values.update(overrides)
    return BridgeSettings(**values)


class FakeEndpoint:
    """An endpoint driven by the test; use as a context manager."""

    def __init__(
        self,
        client: TestClient,
        name: str = "ep1",
        plugins: list[PluginInfo] | None = None,
        headers: dict[str, str] | None = None,
        max_frame: int | None = None,
        run: str | None = None,
    ) -> None:
        self.client = client
        self.max_frame = max_frame
        #: the endpoint process's run: its notifications are numbered and acknowledged
        self.run = run
        self.name = name
        self.plugins = plugins if plugins is not None else [PluginInfo(name="sysinfo", version="1.0")]
        self.headers = dict(endpoint_headers(name) if headers is None else headers)  # TestClient mutates it
        self.ws: WebSocketTestSession | None = None
        self._cm: Any = None
        self._thread: threading.Thread | None = None
        self.registered: dict[str, Any] = {}
        self.others: list[Any] = []

    def connect(self) -> WebSocketTestSession:
        self._cm = self.client.websocket_connect("/ws/endpoint", headers=self.headers)
        self.ws = self._cm.__enter__()
        return self.ws

    def register(self) -> dict[str, Any]:
        ws = self.connect()
        ws.send_text(dump_frame(Register(name=self.name, plugins=self.plugins, host={"hostname": "test"}, version="9.9", max_frame=self.max_frame, run=self.run)))
        self.registered = ws.receive_json()
        assert self.registered["type"] == "registered", self.registered
        return self.registered

    def serve(self, handler: Callable[[Request], Response | None]) -> None:
        """Answer request frames in a background thread until the socket closes."""

        def loop() -> None:
            assert self.ws is not None
            try:
                while True:
                    frame = parse_frame(self.ws.receive_text())
                    if isinstance(frame, Request):
                        answer = handler(frame)
                        if answer is not None:
                            self.ws.send_text(dump_frame(answer))
                    else:
                        self.others.append(frame)
            except _GONE:
                return

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._cm is not None:
            try:
                self._cm.__exit__(None, None, None)
            except WebSocketDisconnect:
                pass
            self._cm = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.register()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def echo(frame: Request) -> Response:
    """Answer with a JSON summary of what arrived (method, path, query, headers, body)."""
    import json

    body, enc = encode_body(
        json.dumps(
            {
                "id": frame.id,
                "method": frame.method,
                "path": frame.path,
                "query": frame.query,
                "headers": frame.headers,
                "body": frame.body,
                "body_encoding": frame.body_encoding,
            }
        ).encode()
    )
    return Response(id=frame.id, status=200, headers=[("content-type", "application/json"), ("x-echo", "yes")], body=body, body_encoding=enc)
