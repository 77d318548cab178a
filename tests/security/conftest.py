"""The attack suite: every "cannot" of docs/threat-model.md, tried as an attacker would.

Each module shares one stack of real processes (bridge, endpoint) among its tests, so
the suite stays fast; the tests talk to it over the network the way an attacker
would: raw HTTP with httpx, raw WebSocket handshakes with websockets' client, endpoints
written by hand (:mod:`attacker`). Every test here carries the ``security`` marker
(``pytest -m security`` runs just this suite).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import OrbitStack, running_stack

__all__ = ["OrbitStack", "module_stack"]


@contextlib.contextmanager
def module_stack(factory: pytest.TempPathFactory, **kwargs: Any) -> Iterator[OrbitStack]:
    """A started stack in a fresh HOME of its own (see ``running_stack`` for ``kwargs``)."""
    base = Path(tempfile.mkdtemp(prefix="orbit-sec-", dir=factory.getbasetemp()))
    (base / "home").mkdir()
    kwargs.setdefault("env", {})
    kwargs["env"].setdefault("RADICAL_ORBIT_BRIDGE_SSE_KEEPALIVE", "0.5")  # readers wake up often
    with running_stack(base / "home", base / "logs", **kwargs) as stack:
        yield stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.integration)
