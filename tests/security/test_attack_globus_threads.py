"""One client identity trying to take every Globus thread of an endpoint.

The globus plugin runs every session's blocking globus-sdk calls on one pool of
``workers`` threads (16). An attacker with a bridge token of its own opens a session
and sends more calls than there are threads, each one hanging on a slow Globus
answer (the emulator adds 5 s to every ``ls``): another identity's Globus call must
still be answered at once, not after the attacker's calls. Real processes: the Globus
emulator, a bridge, an endpoint hosting globus; the attacker speaks raw HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from attacker import bearer, until
from integration.globus_stack import TUTORIAL_1, GlobusStack

from radical.orbit import testing as procs

SLOW = 5.0  # seconds the emulator holds every ls
CALLS = 24  # more than the plugin's 16 threads


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    stack = GlobusStack(Path(tmp_path_factory.mktemp("globus-threads")))
    try:
        yield stack.start()
    finally:
        stack.stop()


def open_session(stack: GlobusStack, token: str) -> str:
    assert stack.bridge is not None
    resp = httpx.post(
        f"{stack.bridge.url}/ep-globus/globus/register_session", headers=bearer(token),
        json={"access_token": stack.token()["access_token"]}, timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["sid"])


def ls_requests(stack: GlobusStack) -> int:
    counters = stack.admin("GET", "counters")["counters"]
    return sum(n for route, n in counters.items() if route.endswith("/ls"))


def test_one_identity_whose_globus_calls_hang_cannot_take_every_thread(stack: GlobusStack) -> None:
    assert stack.bridge is not None
    url = f"{stack.bridge.url}/ep-globus/globus"
    mallory = procs.bridge_admin(stack.bridge, "tokens", "add", "mallory").strip()
    alice = procs.bridge_admin(stack.bridge, "tokens", "add", "alice").strip()
    evil, good = open_session(stack, mallory), open_session(stack, alice)
    stack.faults(latency=SLOW, routes=r"/ls$")
    answers: list[int] = []

    def hang() -> None:
        resp = httpx.post(f"{url}/ls", headers=bearer(mallory), json={"sid": evil, "collection": TUTORIAL_1, "path": "/~/"}, timeout=60)
        answers.append(resp.status_code)

    threads = [threading.Thread(target=hang) for _ in range(CALLS)]
    try:
        for t in threads:
            t.start()
        # mallory's calls hold every thread she may have: 12 of the 16 reached Globus
        until(lambda: ls_requests(stack) >= 12, "mallory's calls reached Globus")
        time.sleep(0.5)  # and the rest of hers are queued at the endpoint by now
        assert ls_requests(stack) == 12  # no more of hers run, however many she sends
        started = time.monotonic()
        resp = httpx.post(f"{url}/get_endpoint", headers=bearer(alice), json={"sid": good, "endpoint_id": TUTORIAL_1}, timeout=60)
        took = time.monotonic() - started
        assert resp.status_code == 200, resp.text
        assert took < SLOW / 2, f"alice waited {took:.1f} s behind mallory's calls"  # no thread of hers to wait for
    finally:
        for t in threads:
            t.join(120)
        stack.reset_faults()
    assert answers == [200] * CALLS  # mallory's calls are slow, not lost
