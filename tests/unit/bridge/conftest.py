"""Fixtures for the bridge unit tests (helpers live in bridge_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

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
