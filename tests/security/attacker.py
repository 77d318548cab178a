"""An attacker's tools: a hand-written endpoint, a raw event reader, raw upgrade requests.

Nothing here goes through Orbit's own client or endpoint code: an attacker does not
use them either.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from radical.orbit import testing as procs

Stack = Any  # tests/integration/conftest.py: OrbitStack
Frame = dict[str, Any]
Answer = Callable[[Frame], Frame | None]


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_token(stack: Stack, name: str, *, admin: bool = False) -> str:
    """``radical-orbit bridge tokens add NAME [--admin]`` on the bridge host; the token."""
    return procs.bridge_admin(stack.bridge, "tokens", "add", name, *(["--admin"] if admin else [])).strip()


def upgrade_refused(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body with which the bridge refuses an upgrade request."""
    with pytest.raises(InvalidStatus) as info, connect(url, additional_headers=headers, open_timeout=10):
        raise AssertionError("the bridge accepted the WebSocket")
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


def echo_answer(frame: Frame) -> Frame:
    """Answer a request with what the endpoint received (its headers and path)."""
    body = json.dumps({"path": frame["path"], "headers": frame["headers"]})
    return {"type": "response", "id": frame["id"], "status": 200, "headers": [["content-type", "application/json"]], "body": body}


class RawEndpoint:
    """An endpoint written by hand over a raw WebSocket: it registers ``name`` with the
    key given (default: the bridge host's own), records every request frame, answers
    with ``answer`` (None: never) and can send any frame it likes.

    :raises InvalidStatus: the bridge refused the upgrade
    """

    def __init__(
        self,
        stack: Stack,
        name: str,
        *,
        key: str | None = None,
        plugins: tuple[str, ...] = ("spy",),
        answer: Answer | None = echo_answer,
        register_as: str | None = None,
    ) -> None:
        self.name = name
        self.answer = answer
        self.requests: list[Frame] = []
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.ws: ClientConnection = connect(
            stack.ws_url, additional_headers=stack.endpoint_headers(name, key), open_timeout=10, max_size=None
        )
        register = {"type": "register", "v": 1, "name": register_as or name, "plugins": [{"name": p} for p in plugins]}
        self.ws.send(json.dumps(register))
        self.registered: Frame = json.loads(self.ws.recv(timeout=10))
        self._reader = threading.Thread(target=self._read, name=f"raw-endpoint-{name}", daemon=True)
        self._reader.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            for raw in self.ws:
                frame: Frame = json.loads(raw)
                if frame["type"] == "request":
                    self.requests.append(frame)
                    reply = self.answer(frame) if self.answer is not None else None
                    if reply is not None:
                        self.send(reply)
                elif frame["type"] == "ping":
                    self.send({"type": "pong", "ts": frame["ts"]})
                else:
                    self.frames.put(frame)

    def send(self, frame: Frame | str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def notify(self, topic: str, payload: dict[str, Any], *, owner: str | None, sid: str | None = None) -> None:
        self.send({"type": "notification", "plugin": "spy", "topic": topic, "sid": sid, "payload": payload, "ts": time.time(), "owner": owner})

    def next_frame(self, timeout: float = 10.0) -> Frame:
        return self.frames.get(timeout=timeout)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def wait_closed(self, timeout: float = 20.0) -> int | None:
        self._reader.join(timeout)
        return self.ws.close_code

    def close(self) -> None:
        self.ws.close()
        self._reader.join(10)


class EventReader:
    """``GET /events`` read raw in a thread of its own: every SSE event, parsed."""

    def __init__(self, url: str, headers: dict[str, str], *, last_event_id: str | None = None, query: str = "") -> None:
        self.events: list[Frame] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._started = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=30.0))
        more = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._url = f"{url}/events{query}"
        self._headers = {**headers, **more}
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._read, name="event-reader", daemon=True)
        self._thread.start()
        assert self._started.wait(15), "no answer to GET /events"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as resp:
                self.status = resp.status_code
                self._started.set()
                kind, data = "", ""
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif not line and data:
                        self.events.append({"event": kind, **json.loads(data)})
                        kind, data = "", ""
        except Exception as exc:  # noqa: BLE001 - closed under its feet by close(): the stream is over
            self.error = exc
        finally:
            self._started.set()
            self.ended.set()

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]

    def text(self) -> str:
        return json.dumps(self.events)

    def wait_for(self, condition: Callable[[list[Frame]], bool], what: str, timeout: float = 20.0) -> None:
        until(lambda: condition(list(self.events)), what, timeout)

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def cmdline(pid: int | None) -> str:
    """What ``ps`` shows every local user as a process's command line."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")


def environ_readable_by_others(pid: int | None) -> bool:
    """Whether another (non-root) user could read the process's environment: only
    processes of the same user (or root) may read /proc/PID/environ (mode 0400)."""
    return bool(os.stat(f"/proc/{pid}/environ").st_mode & 0o044)
