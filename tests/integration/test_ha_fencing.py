"""A stale owner never answers for a name it lost (real processes).

Replica A holds ep1 (a scripted endpoint that answers "first"). A is paused
(SIGSTOP) past its lease; the endpoint's key registers ep1 again on B ("second"),
which takes the name over. When A runs again (SIGCONT), every request through A is
answered by "second" (forwarded to B), never by A's old connection, which A closes
as replaced (4009).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from ha_helpers import RawEndpoint, cluster, until

from radical.orbit.models.messages import CLOSE_REPLACED
from radical.orbit.testing import Replicas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LEASE = 1.0


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Replicas]:
    with cluster(tmp_path_factory, request, env={"RADICAL_ORBIT_BRIDGE_LEASE_TTL": str(LEASE)}) as started:
        yield started


def marker(replicas: Replicas, url: str) -> str:
    resp = httpx.get(f"{url}/ep1/sysinfo/who", headers=replicas.headers, timeout=10)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["marker"])


def test_a_paused_owner_that_lost_its_lease_does_not_answer_when_it_resumes(replicas: Replicas) -> None:
    a, b = replicas.urls
    key = replicas.enroll("ep1")
    first = RawEndpoint(a, "ep1", key, "first").start()
    second: RawEndpoint | None = None
    try:
        assert marker(replicas, a) == "first" and marker(replicas, b) == "first"
        replicas.kill(0, signal.SIGSTOP)
        try:
            time.sleep(LEASE * 1.5)  # A's lease runs out while it cannot renew it
            second = RawEndpoint(b, "ep1", key, "second").start()  # same key: B takes the name at once
            assert marker(replicas, b) == "second"
        finally:
            replicas.kill(0, signal.SIGCONT)
        answers = [marker(replicas, a) for _ in range(20)]
        assert set(answers) == {"second"}, answers
        assert first.answered == 2  # only the two calls before the pause
        assert first.wait_closed() == CLOSE_REPLACED
        until(lambda: "no longer owns its name" in replicas.bridges[0].log_text(), "A logged that it let ep1 go")
        listed = httpx.get(f"{a}/endpoints", headers=replicas.headers, timeout=10).json()["endpoints"]
        assert [e["name"] for e in listed] == ["ep1"]  # listed once: B's
    finally:
        first.close()
        if second is not None:
            second.close()
