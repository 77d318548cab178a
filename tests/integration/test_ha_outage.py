"""Redis goes away and comes back (killed, then a new empty one): the replicas say they are
degraded, keep relaying for the endpoints connected to them, refuse with a clear 503
what needs Redis, and recover by themselves, putting back what the empty Redis lost
(real processes)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ha_helpers import cluster, read_events, until

from radical.orbit.testing import Replicas, ServiceProcess, start_endpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[tuple[Replicas, ServiceProcess]]:
    with cluster(tmp_path_factory, request) as replicas:
        key = replicas.enroll("ep1")
        ep = start_endpoint("ep1", replicas.bridges[0], key=key, plugins=["sysinfo"], home=replicas.home("ep1"),
                            log_dir=replicas.logs)
        try:
            yield replicas, ep
        finally:
            ep.stop()


def test_degraded_while_redis_is_away_then_recovered(ha: tuple[Replicas, ServiceProcess]) -> None:
    replicas, _ep = ha
    a, b = replicas.urls
    assert replicas.redis is not None
    ping = "/ep1/sysinfo/ping"
    assert httpx.get(f"{b}{ping}", headers=replicas.headers, timeout=10).status_code == 200  # forwarded
    before = read_events(a, replicas.headers, stop=lambda evs: True)[0][0]
    dave = {"Authorization": f"Bearer {replicas.admin(0, 'tokens', 'add', 'dave').strip()}"}

    replicas.redis.kill()
    for i in (0, 1):
        health = until(lambda i=i: replicas.health(i).get("status") == "degraded" and replicas.health(i), f"replica {i} degraded")
        assert health["redis"] == "unreachable" and health["replica"]
    # A still relays for the endpoint connected to it; B cannot reach it and says why, at once
    assert httpx.get(f"{a}{ping}", headers=replicas.headers, timeout=10).json() == {"pong": True}
    refused = httpx.get(f"{b}{ping}", headers=replicas.headers, timeout=10)
    assert refused.status_code == 503 and refused.json()["code"] == "bridge_unavailable"
    assert "cannot reach Redis" in refused.json()["message"] and refused.headers["retry-after"] == "1"
    assert [e["name"] for e in httpx.get(f"{a}/endpoints", headers=replicas.headers, timeout=10).json()["endpoints"]] == ["ep1"]
    # the default token of each replica still works (it is not in Redis)
    assert httpx.get(f"{b}/endpoints", headers=replicas.headers, timeout=10).status_code == 200

    replicas.redis.restart()  # empty: the replicas put back what they hold
    for i in (0, 1):
        until(lambda i=i: replicas.health(i).get("status") == "ok", f"replica {i} recovered", timeout=30)
    until(lambda: httpx.get(f"{b}{ping}", headers=replicas.headers, timeout=10).status_code == 200,
          "forwarding through B again (A took ep1's name again)", timeout=15)
    listed = httpx.get(f"{b}/endpoints", headers=replicas.headers, timeout=10).json()["endpoints"]
    assert [e["name"] for e in listed] == ["ep1"]
    # the identities the empty Redis lost were put back by the replicas; changes work as before
    for url in (a, b):
        assert httpx.get(f"{url}/endpoints", headers=dave, timeout=10).status_code == 200
    erin = {"Authorization": f"Bearer {replicas.admin(1, 'tokens', 'add', 'erin').strip()}"}
    replicas.admin(1, "tokens", "revoke", "dave")
    for url in (a, b):
        assert httpx.get(f"{url}/endpoints", headers=erin, timeout=10).status_code == 200
        assert httpx.get(f"{url}/endpoints", headers=dave, timeout=10).status_code == 401
    # a resume from before the outage is honest about what the new stream cannot hold
    events = read_events(b, replicas.headers, last_event_id=before, idle=1.0)
    assert [kind for _, kind, _ in events][:2] == ["hello", "gap"]
    for i in (0, 1):
        log = replicas.bridges[i].log_text()
        assert log.count("DEGRADED") == 1 and log.count("recovered") == 1  # once per change of state
