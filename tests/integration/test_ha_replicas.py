"""Two bridge replicas on one Redis, an endpoint on the first, clients on both (real processes).

A request through the replica without the endpoint is forwarded; both list it; events
carry the stream's ids, so a stream cut on one replica resumes on the other with
Last-Event-ID; scoping by identity holds across replicas; another identity cannot
take the endpoint's name on the other replica; a token revoked through one replica's
operator is refused by the other at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ha_helpers import cluster, read_events, until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import Replicas, ServiceProcess, start_endpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[tuple[Replicas, ServiceProcess]]:
    """Replicas A and B; endpoint ep1 (sysinfo with its test routes) connected to A."""
    with cluster(tmp_path_factory, request) as replicas:
        key = replicas.enroll("ep1")
        ep = start_endpoint("ep1", replicas.bridges[0], key=key, plugins=["sysinfo"], home=replicas.home("ep1"),
                            log_dir=replicas.logs, args=["-o", "sysinfo.test_routes=true"])
        try:
            yield replicas, ep
        finally:
            ep.stop()


def test_a_request_through_the_other_replica_is_forwarded(ha: tuple[Replicas, ServiceProcess]) -> None:
    replicas, _ep = ha
    a, b = replicas.urls
    for url in (a, b):
        listed = httpx.get(f"{url}/endpoints", headers=replicas.headers, timeout=10).json()["endpoints"]
        assert [e["name"] for e in listed] == ["ep1"]
        assert httpx.get(f"{url}/ep1/sysinfo/ping", headers=replicas.headers, timeout=10).json() == {"pong": True}
    echoed = httpx.post(f"{b}/ep1/sysinfo/echo/x?y=1", headers=replicas.headers, content=b"through B", timeout=10)
    assert echoed.status_code == 200
    seen = echoed.json()
    assert seen["path"] == "/echo/x" and seen["query"] == "y=1"
    assert seen["headers"]["x-orbit-identity"] == "admin" and "authorization" not in seen["headers"]
    # the SDK, pointed at the replica without the endpoint, works as against one bridge
    with BridgeClient(url=b, token=replicas.token) as bc:
        assert bc.list_endpoints() == ["ep1"]
        assert "hostname" in bc.get_endpoint_client("ep1").get_plugin("sysinfo").info()
    missing = httpx.get(f"{b}/nope/sysinfo/ping", headers=replicas.headers, timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == "endpoint_not_found"
    for i in (0, 1):
        assert replicas.health(i)["status"] == "ok" and replicas.health(i)["redis"] == "ok"


def test_events_resume_on_the_other_replica_and_stay_scoped(ha: tuple[Replicas, ServiceProcess]) -> None:
    replicas, _ep = ha
    a, b = replicas.urls
    bob = replicas.admin(1, "tokens", "add", "bob").strip()
    with BridgeClient(url=a, token=replicas.token) as bc:
        sysinfo = bc.get_endpoint_client("ep1").get_plugin("sysinfo")
        start = read_events(a, replicas.headers, stop=lambda evs: True)[0][0]  # the hello's id: now
        assert sysinfo.watch(interval=0.2, count=8)

        def loads(events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
            return [e for e in events if e[2].get("topic") == "load"]

        # three on A, then the stream is cut; the rest on B, resuming after the last id seen
        first = loads(read_events(a, replicas.headers, last_event_id=start, stop=lambda evs: len(loads(evs)) >= 3))[:3]
        rest = loads(read_events(b, replicas.headers, last_event_id=first[-1][0],
                                 stop=lambda evs: any(e[2]["payload"].get("last") for e in loads(evs))))
        seqs = [e[2]["payload"]["seq"] for e in first + rest]
        assert seqs == list(range(1, 9)), seqs  # every one, once, in order
        ids = [e[0] for e in first + rest]
        assert all(event_id == data["id"] for event_id, _, data in first + rest)
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        # the same history read on A from the start: the same ids (they are the stream's)
        again = loads(read_events(a, replicas.headers, last_event_id=start,
                                  stop=lambda evs: len(loads(evs)) >= 8))
        assert [e[0] for e in again] == ids
        # bob (not admin) sees none of admin's session's events, on either replica
        for url in (a, b):
            theirs = read_events(url, {"Authorization": f"Bearer {bob}"}, last_event_id=start, idle=1.0)
            assert not loads(theirs) and theirs[0][1] == "hello"


def test_another_identity_cannot_take_the_name_on_the_other_replica(ha: tuple[Replicas, ServiceProcess]) -> None:
    replicas, _ep = ha
    # B's own local key is a valid endpoint key, but not ep1's
    local_b = (replicas.home("1") / ".radical" / "orbit" / "endpoint.key").read_text().strip()
    ws_url = replicas.urls[1].replace("http://", "ws://") + "/ws/endpoint"
    with pytest.raises(InvalidStatus) as refused, connect(
        ws_url, additional_headers={"Authorization": f"Bearer {local_b}", "X-Orbit-Endpoint": "EP1"}, open_timeout=10
    ):
        raise AssertionError("replica B accepted another key for ep1")
    assert refused.value.response.status_code == 409
    assert "claimed by another endpoint key" in json.loads(refused.value.response.body or b"{}")["message"]
    # ep1 itself is untouched, through either replica
    for url in replicas.urls:
        assert httpx.get(f"{url}/ep1/sysinfo/ping", headers=replicas.headers, timeout=10).status_code == 200


def test_a_token_revoked_through_one_replica_is_refused_by_the_other_at_once(ha: tuple[Replicas, ServiceProcess]) -> None:
    replicas, _ep = ha
    a, b = replicas.urls
    carol = replicas.admin(0, "tokens", "add", "carol").strip()
    carol_auth = {"Authorization": f"Bearer {carol}"}
    for url in (a, b):  # made through A's operator: accepted by both at once
        assert httpx.get(f"{url}/ep1/sysinfo/ping", headers=carol_auth, timeout=10).status_code == 200
    replicas.admin(1, "tokens", "revoke", "carol")
    for url in (a, b):  # the command returned after both replicas applied it
        refused = httpx.get(f"{url}/ep1/sysinfo/ping", headers=carol_auth, timeout=10)
        assert refused.status_code == 401
    until(lambda: "carol" not in replicas.admin(0, "tokens", "list"), "carol gone from the list")
