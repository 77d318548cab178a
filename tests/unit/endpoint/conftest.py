"""Fixtures of the endpoint tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from endpoint_fakes import FakeBridge


@pytest.fixture
def fake_bridge() -> Callable[..., FakeBridge]:
    """Factory: ``async with fake_bridge(heartbeat=0.2) as bridge: ...``."""
    return FakeBridge


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """``(cert, key)``: a self-signed certificate for 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key
