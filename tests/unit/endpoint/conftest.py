"""Fixtures of the endpoint tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from endpoint_fakes import FakeBridge


@pytest.fixture
def fake_bridge() -> Callable[..., FakeBridge]:
    """Factory: ``async with fake_bridge(heartbeat=0.2) as bridge: ...``."""
    return FakeBridge
