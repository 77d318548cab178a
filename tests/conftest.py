"""Fixtures for every test: a clean environment and a private HOME.

Orbit reads its settings from ``RADICAL_ORBIT_*`` variables and ``~/.radical/orbit/``,
the Globus SDK from ``GLOBUS_*``, and httpx, websockets and the endpoint honour the
proxy and CA variables (``HTTPS_PROXY``, ``SSL_CERT_FILE`` ...); a developer's own
settings must never leak into a test, and no test may touch the real ``~``. So each
test starts with those variables removed (as httpx's own suite does for proxies and
certificates) and ``HOME`` pointing at a fresh temporary directory.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from orbit_test_env import scrubbed, scrubbed_environ

from radical.orbit.testing import free_port as _free_port

__all__ = ["scrubbed_environ"]


def pytest_configure(config: pytest.Config) -> None:
    """Tests that press Ctrl-C (SIGINT) on a child process need it to act on SIGINT.

    A shell starts a background job (``.ci/run &``) with SIGINT ignored (POSIX, when
    job control is off), children inherit an ignored signal across exec, and Python
    then installs no KeyboardInterrupt handler: those children would never see the
    test's Ctrl-C. A handler, unlike an ignore, is reset to the default by exec.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Remove Orbit, Globus, proxy and CA variables; ``HOME`` is a fresh temp dir.

    Yields that HOME, so a test can write ``~/.radical/orbit/...`` files into it.
    """
    for key in list(os.environ):
        if scrubbed(key):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    yield home


@pytest.fixture
def home(clean_environ: Path) -> Path:
    """The temporary HOME of this test."""
    return clean_environ


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    return _free_port()
