"""Helpers for the globus plugin's unit tests: a notification recorder and sessions
whose TransferClient talks to :mod:`fake_globus`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fake_globus import FakeTransfer, fake_transfer_client, mount

from radical.orbit.plugins.globus.options import PollSettings
from radical.orbit.plugins.globus.plugin import PluginGlobus
from radical.orbit.plugins.globus.session import GlobusSession

#: executors of the sessions make_session built; the conftest shuts them down after each
#: test (a session only uses the executor it is given, its owner shuts it down)
EXECUTORS: list[ThreadPoolExecutor] = []


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, str, dict[str, Any]]] = []
        self.owners: list[str | None] = []

    def __call__(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None) -> None:
        self.events.append((plugin, sid, topic, payload))
        self.owners.append(owner)

    def topic(self, topic: str) -> list[dict[str, Any]]:
        return [p for (_, _, t, p) in self.events if t == topic]


def make_session(plugin: PluginGlobus, fake: FakeTransfer, **settings: Any) -> GlobusSession:
    """Build a GlobusSession (must be called inside a running loop)."""
    tc = fake_transfer_client(fake)
    ps = PollSettings(**{"min_interval": 0.05, "max_interval": 0.2, **settings})
    executor = ThreadPoolExecutor(max_workers=ps.workers)
    EXECUTORS.append(executor)
    s = GlobusSession(
        plugin,
        "sid-" + "x" * 28,
        transfer_client=tc,
        auth_mode="access_token",
        local_collection="6c54cade-bde5-45c1-bdea-f4bd71dba2cc",
        local_source="session",
        executor=executor,
        settings=ps,
    )
    mount(tc, fake)
    plugin.sessions[s.sid] = s
    return s
