"""Fixtures for the globus plugin's unit tests (helpers live in globus_unit_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_globus import FakeTransfer
from globus_unit_helpers import EXECUTORS, Recorder

from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.globus.plugin import PluginGlobus


@pytest.fixture(autouse=True)
def shut_down_executors() -> Iterator[None]:
    yield
    while EXECUTORS:
        EXECUTORS.pop().shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def fake() -> FakeTransfer:
    return FakeTransfer()


@pytest.fixture
def plugin(recorder: Recorder) -> PluginGlobus:
    return PluginGlobus(PluginContext(endpoint="ep", notify=recorder))
