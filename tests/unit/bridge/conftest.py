"""Fixtures for the bridge unit tests (helpers live in bridge_helpers.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_helpers import TestClient, make_settings

from radical.orbit.bridge import BridgeSettings, create_app
from radical.orbit.testing import RedisServer, redis_ping, start_redis


@pytest.fixture
def settings() -> BridgeSettings:
    return make_settings()


@pytest.fixture
def client(settings: BridgeSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as tc:
        yield tc


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """``(cert, key)``: a self-signed certificate for 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the backplane tests (fails, never skips, without one)."""
    with start_redis(log_dir=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of that Redis, emptied for this test (and started again if a test stopped it)."""
    if not redis_ping(redis_server.port):
        redis_server.restart()
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as sock:
        sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
    return redis_server.url


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[BridgeSettings]:
    """``radical-orbit bridge`` with the server stubbed: the settings it would serve with."""
    calls: list[BridgeSettings] = []

    def fake_serve(settings: BridgeSettings, **kw: Any) -> None:
        calls.append(settings)

    from radical.orbit.bridge import server

    monkeypatch.setattr(server, "serve", fake_serve)
    return calls
