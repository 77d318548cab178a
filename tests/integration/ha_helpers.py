"""Helpers for the bridge-replica tests (test_ha_*.py): a cluster per module, a scripted
endpoint over a raw WebSocket (to hold one name on two replicas at chosen moments),
and an SSE reader.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from radical.orbit.models.messages import (
    Ping,
    PluginInfo,
    Pong,
    Register,
    Request,
    Response,
    dump_frame,
    encode_body,
    parse_frame,
)
from radical.orbit.testing import Replicas, start_replicas

Event = tuple[str, str, dict[str, Any]]


def until(condition: Callable[[], Any], what: str, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(every)
    return found


@contextlib.contextmanager
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, **kwargs: Any) -> Iterator[Replicas]:
    """Replicas on one Redis for a module; their logs are printed when a test of it failed."""
    base = Path(tempfile.mkdtemp(prefix="orbit-ha-", dir=tmp_path_factory.getbasetemp()))
    replicas = start_replicas(base, **kwargs)
    try:
        yield replicas
    finally:
        if request.session.testsfailed:
            print(replicas.logs_tail())
        replicas.stop()


class RawEndpoint:
    """An endpoint that speaks the frame protocol itself and answers every request with
    ``{"marker": marker, "path": ...}``; ``close_code`` is how the bridge closed it."""

    def __init__(self, url: str, name: str, key: str, marker: str) -> None:
        self.url = url.replace("http://", "ws://") + "/ws/endpoint"
        self.name = name
        self.key = key
        self.marker = marker
        self.answered = 0
        self.close_code: int | None = None
        self.ws: ClientConnection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RawEndpoint:
        headers = {"Authorization": f"Bearer {self.key}", "X-Orbit-Endpoint": self.name}
        self.ws = connect(self.url, additional_headers=headers, open_timeout=10)
        self.ws.send(dump_frame(Register(name=self.name, plugins=[PluginInfo(name="sysinfo", version="1")], host={}, version="raw")))
        registered = json.loads(self.ws.recv(timeout=10))
        assert registered["type"] == "registered", registered
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self.ws is not None
        try:
            for raw in self.ws:
                frame = parse_frame(raw)
                if isinstance(frame, Request):
                    body, encoding = encode_body(json.dumps({"marker": self.marker, "path": frame.path}).encode())
                    self.answered += 1
                    self.ws.send(dump_frame(Response(id=frame.id, status=200, headers=[("content-type", "application/json")],
                                                     body=body, body_encoding=encoding)))
                elif isinstance(frame, Ping):
                    self.ws.send(dump_frame(Pong(ts=frame.ts)))
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else 1006

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.close_code

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.wait_closed()


def read_events(url: str, headers: dict[str, str], *, last_event_id: str | None = None, idle: float = 1.5,
                stop: Callable[[list[Event]], bool] | None = None, **params: str) -> list[Event]:
    """``(id, event, data)`` of a raw ``/events`` stream until ``stop(events)`` or ``idle`` s of silence."""
    headers = dict(headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    out: list[Event] = []
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=idle)) as client,
        contextlib.suppress(httpx.ReadTimeout),
        connect_sse(client, "GET", f"{url}/events", params=params, headers=headers) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            out.append((sse.id, sse.event, json.loads(sse.data)))
            if stop is not None and stop(out):
                break
    return out
