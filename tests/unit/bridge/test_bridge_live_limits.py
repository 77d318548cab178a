"""Limits and scoping that need a real server (uvicorn in a thread): answers held for
clients that do not read, connections kept after malformed answers, the /events
stream limit and what each identity's stream carries."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bridge_helpers import AUTH
from test_bridge_limits import ALICE_TOKEN, BOB_TOKEN, Tokens, bearer, wait_until
from test_bridge_live import LiveBridge, read_events
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from radical.orbit.models.messages import Request, Response, dump_frame, parse_frame

MIB = 2**20


def answer_with(ws: ClientConnection, handler: Callable[[Request], Response]) -> threading.Thread:
    """Answer the bridge's requests on ``ws`` from a thread until the socket closes."""

    def loop() -> None:
        try:
            while True:
                frame = parse_frame(ws.recv())
                if isinstance(frame, Request):
                    ws.send(dump_frame(handler(frame)))
        except ConnectionClosed:
            return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def stuck_client(port: int, path: str, token: str) -> socket.socket:
    """A client that sends one request and never reads the answer (a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


@pytest.fixture
def scoped() -> Iterator[LiveBridge]:
    bridge = LiveBridge(sse_keepalive=0.2, max_subscribers_per_identity=2, max_held_answer_bytes=20 * MIB)
    bridge.server.bridge.tokens = Tokens()
    bridge.start()
    yield bridge
    bridge.stop()


def test_answers_held_for_slow_clients_are_bounded(scoped: LiveBridge) -> None:
    """24 small requests for big answers, never read, pinned 640 MiB (the issue).

    Each answer is larger than what the kernel's socket buffers take, so a client
    that does not read leaves most of it in the bridge."""
    ws = scoped.endpoint()
    big = base64.b64encode(b"\x00" * 8 * MIB).decode()

    def handler(f: Request) -> Response:
        if f.path.endswith("/big"):
            return Response(id=f.id, status=200, body=big, body_encoding="base64")
        return Response(id=f.id, status=200, body="ok")

    answer_with(ws, handler)
    relay = scoped.server.bridge.relay
    stuck = [stuck_client(scoped.port, "/ep1/sysinfo/big", ALICE_TOKEN) for _ in range(2)]
    try:
        wait_until(lambda: relay.held == 16 * MIB)
        with httpx.Client(base_url=scoped.url, timeout=10) as http:
            resp = http.get("/ep1/sysinfo/big", headers=bearer(BOB_TOKEN))  # 24 MiB > 20 MiB
            error = resp.json()
            assert resp.status_code == 503 and error["code"] == "bridge_unavailable", error
            assert resp.headers["retry-after"] == "1" and "max_held_answer_bytes" in error["message"]
            assert relay.held == 16 * MIB  # the refused answer was let go at once
            assert http.get("/ep1/sysinfo/small", headers=bearer(BOB_TOKEN)).text == "ok"  # small ones still fit
            for sock in stuck:
                sock.close()
            wait_until(lambda: relay.held == 0)  # gone with their clients
            assert len(http.get("/ep1/sysinfo/big", headers=bearer(BOB_TOKEN)).content) == 8 * MIB
    finally:
        for sock in stuck:
            sock.close()
        ws.close()


def test_malformed_answers_leave_the_client_connection_up(scoped: LiveBridge) -> None:
    """A CR/LF header value dropped the client's connection (the issue); over a real
    server a 502 comes back on the same keep-alive connection."""
    ws = scoped.endpoint()
    answers = {
        "/sysinfo/crlf": [("x-a", "1\r\nx-injected: 1")],
        "/sysinfo/utf8": [("x-a", "\u2713")],
        "/sysinfo/latin1": [("x-a", "Zo\u00eb")],
    }
    answer_with(ws, lambda f: Response(id=f.id, status=200, headers=answers.get(f.path, []), body="ok"))
    connections: list[Any] = []
    with httpx.Client(base_url=scoped.url, headers=AUTH, timeout=10) as http:
        for path in ("/ep1/sysinfo/crlf", "/ep1/sysinfo/utf8", "/ep1/sysinfo/ok"):
            with http.stream("GET", path) as resp:
                resp.read()
                connections.append(resp.extensions["network_stream"])
                assert resp.status_code == (200 if path.endswith("/ok") else 502)
                assert "x-injected" not in resp.headers
        assert len({id(c) for c in connections}) == 1  # one connection throughout
        resp = http.get("/ep1/sysinfo/latin1")
        assert resp.status_code == 200 and dict(resp.headers.raw)[b"x-a"] == "Zo\u00eb".encode("latin-1")
    ws.close()


def open_stream(http: httpx.Client, token: str, **params: str) -> tuple[Any, Iterator[str]]:
    cm = http.stream("GET", "/events", headers=bearer(token), params=params)
    resp = cm.__enter__()
    return (cm, resp), resp.iter_lines()


def test_event_streams_per_identity_are_capped(scoped: LiveBridge) -> None:
    hub = scoped.server.bridge.hub
    with httpx.Client(base_url=scoped.url, timeout=10) as http:
        (first, resp1), _ = open_stream(http, ALICE_TOKEN)
        (second, resp2), _ = open_stream(http, ALICE_TOKEN)
        assert resp1.status_code == resp2.status_code == 200
        refused = http.get("/events", headers=bearer(ALICE_TOKEN))
        error = refused.json()
        assert refused.status_code == 429 and error["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "1" and "max_subscribers_per_identity" in error["message"]
        (bobs, resp3), _ = open_stream(http, BOB_TOKEN)  # another identity has its own
        assert resp3.status_code == 200
        first.__exit__(None, None, None)
        wait_until(lambda: hub.streams(Tokens.IDENTITIES[ALICE_TOKEN]) == 1)  # the bridge noticed the close
        (third, resp4), _ = open_stream(http, ALICE_TOKEN)
        assert resp4.status_code == 200
        for cm in (second, bobs, third):
            cm.__exit__(None, None, None)


def test_each_identity_sees_its_own_sessions_events(scoped: LiveBridge) -> None:
    ws = scoped.endpoint()
    with httpx.Client(base_url=scoped.url, timeout=10) as http:
        streams = {name: open_stream(http, token) for name, token in (("alice", ALICE_TOKEN), ("bob", BOB_TOKEN), ("admin", AUTH["Authorization"][7:]))}
        for _, lines in streams.values():
            assert read_events(lines, 1)[0]["kind"] == "hello"
        for owner in ("alice", "bob", None, "carol"):
            ws.send(json.dumps({"type": "notification", "plugin": "sysinfo", "topic": "t", "sid": f"s-{owner}", "owner": owner, "payload": {"owner": owner}, "ts": time.time()}))
        ws.send(json.dumps({"type": "notification", "plugin": "sysinfo", "topic": "end", "payload": {"owner": None}, "ts": time.time()}))

        def owners(lines: Iterator[str]) -> list[str | None]:
            seen: list[str | None] = []
            for event in iter(lambda: read_events(lines, 1)[0], None):
                if event.get("kind") != "notification":  # keep-alive comments, topology
                    continue
                if event["topic"] == "end":
                    return seen
                seen.append(event["payload"]["owner"])
            return seen

        assert owners(streams["alice"][1]) == ["alice", None]
        assert owners(streams["bob"][1]) == ["bob", None]
        assert owners(streams["admin"][1]) == ["alice", "bob", None, "carol"]
        for (cm, _), _ in streams.values():
            cm.__exit__(None, None, None)
        # the same on replay
        first = f"{scoped.server.bridge.hub.boot}-0"
        (cm, _), lines = open_stream(http, BOB_TOKEN, last_event_id=first)
        assert read_events(lines, 1)[0]["kind"] == "hello"
        assert owners(lines) == ["bob", None]
        cm.__exit__(None, None, None)
    ws.close()
