"""``transport.tune_transport``: what it relies on in globus-sdk, the connection pool it
sizes (against a real HTTP server on 127.0.0.1) and the proxies it resolves once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import globus_sdk
import pytest
import requests
from globus_sdk.transport import RequestsTransport, RetryConfig

from radical.orbit.plugins.globus.transport import tune_transport

ENDPOINT = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"


def _client(base_url: str | None = None) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer("not-a-real-token"), base_url=base_url, retry_config=RetryConfig(max_retries=0)
    )


def test_what_the_tuning_relies_on_is_still_in_globus_sdk() -> None:
    """If this fails, globus-sdk moved or retyped what tune_transport reaches (at run time
    the tuning would then only log a warning): adapt the tuning or drop it."""
    tc = _client()
    try:
        assert isinstance(tc.transport, RequestsTransport)
        session = tc.transport.session
        assert isinstance(session, requests.Session)
        assert session.trust_env is True  # requests' default, which looks proxies up per call
        assert isinstance(tc.base_url, str) and tc.base_url.startswith("https://")
        assert tune_transport(tc, 4) is True
        assert session.trust_env is False
    finally:
        tc.close()


class _Server:
    """Answers every GET with a JSON endpoint document once ``concurrency`` requests are in
    flight together; counts the TCP connections it was given."""

    def __init__(self, concurrency: int) -> None:
        self.barrier = threading.Barrier(concurrency, timeout=20)
        self.peers: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: connections are reused when the client pools them

            def do_GET(self) -> None:
                with server.lock:
                    server.peers.add(self.client_address)
                server.barrier.wait()
                body = json.dumps({"DATA_TYPE": "endpoint", "id": ENDPOINT}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"


@contextmanager
def _serving(concurrency: int) -> Iterator[_Server]:
    server = _Server(concurrency)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join()


@pytest.mark.parametrize("tuned", [True, False])
def test_concurrent_calls_keep_their_connections(tuned: bool, caplog: pytest.LogCaptureFixture) -> None:
    """12 calls at once, twice: tuned, the second round reuses the 12 connections of the
    first; with requests' default pool (10 per host) connections are discarded with a
    warning and reopened -- what the tuning is for (if the untuned case stops showing
    it, the tuning no longer buys anything)."""
    n = 12
    with _serving(n) as server:
        tc = _client(server.url)
        if tuned:
            assert tune_transport(tc, n)
        try:
            with ThreadPoolExecutor(max_workers=n) as pool:
                for _ in range(2):
                    docs = list(pool.map(lambda _: tc.get_endpoint(ENDPOINT)["id"], range(n)))
                    assert docs == [ENDPOINT] * n
        finally:
            tc.close()
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    if tuned:
        assert len(server.peers) == n and not discarded
    else:
        assert len(server.peers) > n and discarded


def test_proxy_from_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    tc = _client()
    tune_transport(tc, 4)
    assert tc.transport.session.proxies == {"https": "http://proxy.example:3128"}
    assert tc.transport.session.trust_env is False  # no per-request scan of os.environ any more
    tc.close()


def test_no_proxy_for_the_transfer_host_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "transfer.api.globus.org")
    tc = _client()
    tune_transport(tc, 4)
    assert tc.transport.session.proxies == {}
    tc.close()


def test_no_proxy_configured() -> None:
    tc = _client()
    tune_transport(tc, 4)
    assert tc.transport.session.proxies == {}
    assert tc.transport.session.trust_env is False
    tc.close()
