"""The bridge under a real uvicorn (in a thread): SSE over HTTP, a real WebSocket
endpoint, and a shutdown that ends open streams."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bridge_helpers import AUTH, endpoint_headers, local_key, make_settings
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from radical.orbit.bridge.server import BridgeServer, build_server
from radical.orbit.models.messages import (
    PluginInfo,
    Register,
    Request,
    Response,
    dump_frame,
    parse_frame,
)
from radical.orbit.testing import free_port


class LiveBridge:
    def __init__(self, **overrides: Any) -> None:
        self.port = free_port()
        self.settings = make_settings(port=self.port, **overrides)
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: BridgeServer = build_server(self.settings)
        self.errors: list[BaseException] = []  # what server.run() raised (a traceback in the shutdown path)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.errors.append(exc)

    def start(self) -> LiveBridge:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "bridge did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> float:
        t0 = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()
        assert self.errors == [], self.errors
        return time.monotonic() - t0

    def endpoint(self, name: str = "ep1") -> ClientConnection:
        ws = connect(f"ws://127.0.0.1:{self.port}/ws/endpoint", additional_headers=endpoint_headers(name), open_timeout=5)
        ws.send(dump_frame(Register(name=name, plugins=[PluginInfo(name="sysinfo")])))
        assert json.loads(ws.recv(timeout=5))["type"] == "registered"
        return ws


@pytest.fixture
def live() -> Iterator[LiveBridge]:
    bridge = LiveBridge(sse_keepalive=0.2, event_buffer=5).start()
    yield bridge
    bridge.stop()


def read_events(lines: Iterator[str], n: int) -> list[dict[str, Any]]:
    """The next ``n`` SSE events (keep-alive comments are counted as {"comment": True})."""
    out: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            out.append({"comment": True})
        elif line == "":
            if fields:
                data = json.loads(fields["data"])
                assert data["id"] == fields["id"] and data["kind"] == fields["event"]
                out.append(data)
                fields = {}
        else:
            key, _, value = line.partition(": ")
            fields[key] = value
        if len(out) >= n:
            return out
    return out


def notify(ws: ClientConnection, topic: str, plugin: str = "sysinfo") -> None:
    ws.send(json.dumps({"type": "notification", "plugin": plugin, "topic": topic, "payload": {"t": topic}, "ts": time.time()}))


class TestLiveBridge:
    def test_sse_filter_resume_gap_keepalive(self, live: LiveBridge) -> None:
        ws = live.endpoint()
        with httpx.Client(base_url=live.url, headers=AUTH, timeout=5) as http:
            with http.stream("GET", "/events", params={"topic": "b"}) as resp:
                lines = resp.iter_lines()
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                hello = read_events(lines, 1)[0]
                assert hello["kind"] == "hello"
                for topic in ["a", "b", "a", "b"]:
                    notify(ws, topic)
                got = [e for e in read_events(lines, 3) if not e.get("comment")]
                assert [e["topic"] for e in got[:2]] == ["b", "b"]
                first_b = got[0]["id"]
                # idle: keep-alive comments arrive
                assert any(e.get("comment") for e in read_events(lines, 2))
            # resume after the first "b": only the second one is replayed
            with http.stream("GET", "/events", params={"topic": "b"}, headers={"Last-Event-ID": first_b}) as resp:
                lines = resp.iter_lines()
                events = read_events(lines, 2)
                assert [e["kind"] for e in events] == ["hello", "notification"]
                assert events[1]["id"] != first_b and events[1]["topic"] == "b"
            # overflow the 5-event buffer: resuming from the first id gives a gap first
            for i in range(6):
                notify(ws, f"c{i}")
            time.sleep(0.2)
            with http.stream("GET", "/events", params={"last_event_id": first_b}) as resp:
                lines = resp.iter_lines()
                events = read_events(lines, 3)
                assert [e["kind"] for e in events] == ["hello", "gap", "notification"]
                assert events[1]["payload"]["reason"]
        ws.close()

    @pytest.mark.parametrize("coalesce_writes", [True, False], ids=["coalescing", "plain-uvicorn"])
    def test_relay_and_shutdown_ends_streams(self, coalesce_writes: bool) -> None:
        bridge = LiveBridge(sse_keepalive=30, coalesce_writes=coalesce_writes).start()
        coalescing = bridge.server.config.http_protocol_class.__name__.startswith("Coalescing")
        assert coalescing is coalesce_writes
        ws = bridge.endpoint()

        def answer() -> None:
            try:
                while True:
                    frame = parse_frame(ws.recv())
                    if isinstance(frame, Request):
                        ws.send(dump_frame(Response(id=frame.id, status=200, body=frame.path)))
            except ConnectionClosed:  # the bridge shuts down
                return

        threading.Thread(target=answer, daemon=True).start()
        with httpx.Client(base_url=bridge.url, headers=AUTH, timeout=5) as http:
            assert http.get("/ep1/sysinfo/ping").text == "/sysinfo/ping"
            with http.stream("GET", "/events") as resp:
                lines = resp.iter_lines()
                read_events(lines, 1)
                took = bridge.stop()
                rest = list(lines)  # the stream ends instead of hanging
        assert took < 3, took
        assert rest == [] or all(not line or line.startswith((":", "id", "event", "data")) for line in rest)


def test_tls(self_signed: tuple[Path, Path]) -> None:
    """--cert/--key: the bridge serves HTTPS (self-signed cert made with openssl)."""
    cert, key = self_signed
    bridge = LiveBridge(cert_file=str(cert), key_file=str(key)).start()
    try:
        url = f"https://127.0.0.1:{bridge.port}"
        assert bridge.settings.url == url
        with httpx.Client(verify=str(cert), timeout=5) as http:
            assert http.get(f"{url}/health").json()["status"] == "ok"
            assert http.get(f"{url}/endpoints").status_code == 401
            assert http.get(f"{url}/endpoints", headers=AUTH).json() == {"endpoints": []}
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{bridge.port}/health", timeout=2)
        # an endpoint dials wss:// (verifying the self-signed cert) and serves a relayed call
        _endpoint_over_tls(url, str(cert))
    finally:
        bridge.stop()


def test_tls_shutdown_while_a_hung_up_endpoint_is_still_closing(self_signed: tuple[Path, Path]) -> None:
    """An endpoint closes its socket; its TLS connection is still closing when the bridge
    stops. uvicorn sent a second close frame there, websockets raised InvalidState and
    the server's shutdown ended in a traceback (server.quiet_shutdown)."""
    cert, key = self_signed
    bridge = LiveBridge(cert_file=str(cert), key_file=str(key)).start()
    context = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        client = ClientProtocol(parse_uri(f"wss://127.0.0.1:{bridge.port}/ws/endpoint"))
        request = client.connect()
        request.headers.update(endpoint_headers("ep1"))
        client.send_request(request)
        tls.sendall(b"".join(client.data_to_send()))
        _receive_until(tls, client, lambda: client.state is State.OPEN)
        client.send_text(dump_frame(Register(name="ep1", plugins=[PluginInfo(name="sysinfo")])).encode())
        tls.sendall(b"".join(client.data_to_send()))
        _receive_until(tls, client, lambda: any(getattr(e, "data", b"").startswith(b'{"type":"registered"') for e in client.events_received()))
        client.send_close(1000)
        tls.sendall(b"".join(client.data_to_send()))
        _receive_until(tls, client, lambda: client.close_rcvd is not None)  # answered: the bridge closes its side
        # this side of the TLS connection stays open until the bridge has begun to stop
        bridge.server.should_exit = True
        _wait_until_refused(bridge.port)  # uvicorn closes its listener, then shuts each connection down
    bridge.stop()  # asserts that server.run() raised nothing


def _wait_until_refused(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        assert time.monotonic() < deadline, "the bridge did not stop listening"
        time.sleep(0.02)


def _receive_until(tls: ssl.SSLSocket, client: ClientProtocol, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not done():
        assert time.monotonic() < deadline, "the bridge did not answer"
        client.receive_data(tls.recv(65536))


def _endpoint_over_tls(url: str, cert: str) -> None:
    import asyncio

    from pydantic import SecretStr

    from radical.orbit.endpoint.agent import EndpointAgent
    from radical.orbit.endpoint.settings import EndpointSettings
    from radical.orbit.plugins.registry import discover_plugins

    settings = EndpointSettings(name="tls-ep", url=url, key=SecretStr(local_key()), cert=cert)
    agent = EndpointAgent(settings, discover_plugins(["sysinfo"]))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(agent.run(),), daemon=True)
    runner.start()
    try:
        with httpx.Client(verify=cert, timeout=10, headers=AUTH) as http:
            deadline = time.monotonic() + 10
            while not any(e["name"] == "tls-ep" for e in http.get(f"{url}/endpoints").json()["endpoints"]):
                assert time.monotonic() < deadline, "endpoint did not register over wss"
                time.sleep(0.05)
            assert http.get(f"{url}/tls-ep/sysinfo/ping").json() == {"pong": True}
        _client_calls_over_tls(url, cert)
    finally:
        agent.stop()
        runner.join(10)
        loop.close()


def _client_calls_over_tls(url: str, cert: str) -> None:
    """The SDK's plugin calls (http.client path and httpx path) verify the bridge's cert alike."""
    from radical.orbit import BridgeClient, errors

    token = AUTH["Authorization"].split()[1]
    for transport in (None, httpx.HTTPTransport(verify=ssl.create_default_context(cafile=cert))):
        with BridgeClient(url, token=token, cert=cert, transport=transport) as bc:
            assert bc.get_endpoint_client("tls-ep").get_plugin("sysinfo").info()["cpu_count"] >= 1
    messages = []
    for transport in (None, httpx.HTTPTransport()):
        with BridgeClient(url, token=token, transport=transport) as bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("tls-ep", "sysinfo", "info", {})
        messages.append(info.value.message)
    assert "CERTIFICATE_VERIFY_FAILED" in messages[0] and "CERTIFICATE_VERIFY_FAILED" in messages[1]
