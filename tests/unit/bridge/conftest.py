"""Fixtures for the bridge unit tests (helpers live in bridge_helpers.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_helpers import TestClient, make_settings

from radical.orbit.bridge import BridgeSettings, create_app


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
