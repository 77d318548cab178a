"""What an idle Globus session costs the endpoint: no thread of its own, little memory.

Every session's globus-sdk calls run on the plugin's one pool of ``workers`` threads,
so clients that register and go quiet (or that register many sessions on purpose)
cannot grow the endpoint's thread count. Registering with an access token needs no
Globus call, so junk tokens stand in for a thousand clients; one session with a real
token proves the shared pool serves calls against the (in-process) emulator.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from globus_unit_helpers import Recorder

from radical.orbit.emulators.globus import (
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)
from radical.orbit.endpoint.dispatch import build_scope, call_asgi
from radical.orbit.models.messages import Request
from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.caller import calling_as
from radical.orbit.plugins.globus.plugin import PluginGlobus

SESSIONS = 1000
WORKERS = 4
#: the issue's bound for 1,000 idle sessions (Python allocations, traced)
MAX_MIB = 20.0


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = run_in_thread(EmulatorSettings(root=Path(tmp_path_factory.mktemp("emuroot"))))
    yield running
    running.stop()


async def call(plugin: PluginGlobus, route: str, body: dict[str, Any], identity: str) -> tuple[int, Any]:
    frame = Request(id="r", method="POST", path=f"/globus{route}", headers=[("content-type", "application/json")])
    with calling_as(identity):
        status, _, out = await call_asgi(plugin.app, build_scope(frame, route), json.dumps(body).encode())
    return status, json.loads(out)


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("globus_")]


def test_a_thousand_idle_sessions_cost_no_thread_and_little_memory(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)
    token = str(emu.dev_token()["access_token"])

    async def main() -> None:
        plugin = PluginGlobus(PluginContext(endpoint="ep", notify=Recorder(), settings={"workers": WORKERS}))
        await plugin.start()
        try:
            status, body = await call(plugin, "/register_session", {"access_token": token}, "alice")
            assert status == 200, body
            real = body["sid"]
            # fill the pool to its size, so the baseline holds every thread it may ever start
            listings = [call(plugin, "/ls", {"sid": real, "collection": emu.local_collection, "path": "/~/"}, "alice")
                        for _ in range(3 * WORKERS)]
            assert all(status == 200 for status, _ in await asyncio.gather(*listings))
            assert 1 <= len(pool_threads()) <= WORKERS
            gc.collect()
            threads_before = threading.active_count()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(SESSIONS):  # two clients, each within the default cap of 500
                    junk = {"access_token": f"junk-access-token-{i:06d}"}
                    status, body = await call(plugin, "/register_session", junk, "bob" if i % 2 else "carol")
                    assert status == 200, body
                gc.collect()
                grown = (tracemalloc.get_traced_memory()[0] - before) / 2**20
            finally:
                tracemalloc.stop()
            assert len(plugin.sessions) == SESSIONS + 1
            assert threading.active_count() <= threads_before, [t.name for t in threading.enumerate()]
            assert grown <= MAX_MIB, f"{SESSIONS} idle sessions took {grown:.1f} MiB"
            # the shared pool still serves the one that does work
            status, _ = await call(plugin, "/ls", {"sid": real, "collection": emu.local_collection, "path": "/~/"}, "alice")
            assert status == 200
        finally:
            await plugin.stop()
        assert not plugin.sessions

    asyncio.run(main())
    deadline = time.monotonic() + 10
    while pool_threads() and time.monotonic() < deadline:  # stop() shut the pool down
        time.sleep(0.05)
    assert not pool_threads()


def test_closing_a_session_leaves_the_pool_to_the_others(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)
    token = str(emu.dev_token()["access_token"])

    async def main() -> None:
        plugin = PluginGlobus(PluginContext(endpoint="ep", notify=Recorder(), settings={"workers": WORKERS}))
        await plugin.start()
        try:
            sids = [(await call(plugin, "/register_session", {"access_token": token}, "alice"))[1]["sid"] for _ in range(2)]
            gone, kept = sids
            assert plugin.sessions[gone].executor is plugin.sessions[kept].executor  # type: ignore[attr-defined]
            stop_retrying = plugin.sessions[gone].stop_retrying  # type: ignore[attr-defined]
            assert (await call(plugin, "/unregister_session", {"sid": gone}, "alice"))[1] == {"closed": True}
            assert stop_retrying.is_set()  # its calls still in the pool give up instead of retrying
            status, _ = await call(plugin, "/ls", {"sid": kept, "collection": emu.local_collection, "path": "/~/"}, "alice")
            assert status == 200
        finally:
            await plugin.stop()

    asyncio.run(main())
