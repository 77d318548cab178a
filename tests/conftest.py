"""Fixtures for every test: a clean environment and a private HOME.

Orbit reads its settings from ``RADICAL_ORBIT_*`` variables and ``~/.radical/orbit/``,
and the Globus SDK from ``GLOBUS_*``; a developer's own settings must never leak into
a test, and no test may touch the real ``~``. So each test starts with those
variables removed and ``HOME`` pointing at a fresh temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from radical.orbit.procs import free_port as _free_port

_PREFIXES = ("RADICAL_ORBIT_", "GLOBUS_")


def scrubbed_environ(home: Path | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``os.environ`` without Orbit/Globus settings, for child processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Remove ``RADICAL_ORBIT_*`` / ``GLOBUS_*`` variables; ``HOME`` is a fresh temp dir.

    Yields that HOME, so a test can write ``~/.radical/orbit/...`` files into it.
    """
    for key in list(os.environ):
        if key.startswith(_PREFIXES):
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
