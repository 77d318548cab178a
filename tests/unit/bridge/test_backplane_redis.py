"""Two bridge apps in one process sharing a real redis-server: forwarding, the shared
directory and identities, events through the stream, a stale owner, degraded mode.

(The same with real processes, kill -9 and a Redis restart: tests/integration/test_ha_*.py.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from bridge_helpers import (
    AUTH,
    FakeEndpoint,
    TestClient,
    echo,
    endpoint_headers,
    make_settings,
)
from starlette.websockets import WebSocketDisconnect
from test_bridge_identities import refused

from radical.orbit.bridge import BridgeApp, create_app
from radical.orbit.bridge.backplane import redis_scripts as rs
from radical.orbit.bridge.backplane.redis_identities import RedisIdentityStore
from radical.orbit.errors import BridgeUnavailableError
from radical.orbit.models.messages import CLOSE_REPLACED, Notification, dump_frame
from radical.orbit.testing import free_port

pytestmark = pytest.mark.timeout(60)


def wait_for(cond: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := cond()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return found


@pytest.fixture
def replicas(redis_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Replicas A and B (apps in TestClients) on one Redis."""
    settings = make_settings(redis_url=redis_url, lease_ttl=2.0)
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        yield a, b


def app_of(client: TestClient) -> BridgeApp:
    app = client.app
    assert isinstance(app, BridgeApp)
    return app


def test_requests_through_the_other_replica_are_forwarded(replicas: tuple[TestClient, TestClient]) -> None:
    a, b = replicas
    with FakeEndpoint(a, "ep1") as ep:
        ep.serve(echo)
        resp = b.post("/EP1/sysinfo/x/y?q=1", headers=AUTH, content=b"hello")
        assert resp.status_code == 200 and resp.headers["x-echo"] == "yes"
        seen = resp.json()
        assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("POST", "/sysinfo/x/y", "q=1", "hello")
        assert ["x-orbit-identity", "admin"] in seen["headers"]
        assert [e["name"] for e in b.get("/endpoints", headers=AUTH).json()["endpoints"]] == ["ep1"]
        assert b.get("/endpoints/ep1", headers=AUTH).json()["plugins"][0]["name"] == "sysinfo"
        missing = b.get("/nope/sysinfo/x", headers=AUTH)
        assert missing.status_code == 404 and "any replica" in missing.json()["message"]
        no_plugin = b.get("/ep1/globus/x", headers=AUTH)
        assert no_plugin.status_code == 404 and no_plugin.json()["code"] == "plugin_not_found"
        assert b.get("/endpoints/nope", headers=AUTH).status_code == 404
    for client in (a, b):
        health = client.get("/health").json()
        assert health == {"status": "ok", "replica": app_of(client).backplane.replica, "redis": "ok"}
    # gone from the directory once it disconnected
    wait_for(lambda: b.get("/endpoints", headers=AUTH).json()["endpoints"] == [])


def test_notifications_reach_every_replica_with_the_stream_ids(replicas: tuple[TestClient, TestClient]) -> None:
    a, b = replicas
    with FakeEndpoint(a, "ep1") as ep:
        assert ep.ws is not None
        ep.ws.send_text(dump_frame(Notification(plugin="sysinfo", topic="load", payload={"n": 1}, sid=None, ts=1.0)))
        for client in (a, b):
            hub = app_of(client).hub
            chunks = wait_for(lambda hub=hub: [ev.chunk for ev in hub.buffer if '"topic":"load"' in ev.chunk])
            assert '"payload":{"n":1}' in chunks[0]
        ids = [[ev.chunk.split("\n", 1)[0] for ev in app_of(client).hub.buffer] for client in (a, b)]
        assert ids[0] == ids[1] and ids[0][0].startswith("id: ") and "-" in ids[0][0]  # the same stream ids


def test_a_notification_resent_to_the_other_replica_is_stored_once(replicas: tuple[TestClient, TestClient]) -> None:
    """A died (or the ack was lost) after storing 2 and 3: the endpoint sends them to B again."""
    a, b = replicas

    def send(ws: Any, seq: int) -> None:
        ws.send_text(dump_frame(Notification(plugin="sysinfo", topic="load", payload={"n": seq}, ts=1.0, seq=seq)))

    def until_acked(ws: Any, seq: int) -> None:
        acked = 0
        while acked < seq:
            frame = ws.receive_json()
            if frame["type"] == "ack":
                acked = frame["seq"]

    def loads(client: TestClient) -> list[int]:
        return [json.loads(ev.chunk.split("data: ", 1)[1])["payload"]["n"] for ev in app_of(client).hub.buffer if '"topic":"load"' in ev.chunk]

    with FakeEndpoint(a, "ep1", run="r1") as ep:
        assert ep.ws is not None and ep.registered["acks"] is True
        for seq in (1, 2, 3):
            send(ep.ws, seq)
        until_acked(ep.ws, 3)  # acknowledged only once in the stream
        with FakeEndpoint(b, "ep1", run="r1") as moved:  # takes the name over on B
            assert moved.ws is not None
            for seq in (2, 3, 4):
                send(moved.ws, seq)
            until_acked(moved.ws, 4)
            for client in (a, b):
                wait_for(lambda client=client: loads(client) == [1, 2, 3, 4])
            time.sleep(0.2)  # nothing more arrives
            assert loads(a) == loads(b) == [1, 2, 3, 4]


def test_tokens_are_shared_and_a_revocation_holds_everywhere_when_the_command_returns(
    replicas: tuple[TestClient, TestClient], redis_url: str
) -> None:
    a, b = replicas
    store = RedisIdentityStore(redis_url)
    try:
        token = store.add_token("alice")
        for client in (a, b):  # works at once on every replica
            assert client.get("/endpoints", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        store.revoke_token("alice")
        assert store.unconfirmed == 0  # both replicas confirmed before revoke_token returned
        for client in (a, b):
            assert client.get("/endpoints", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        store.close()


def test_a_name_another_key_holds_is_refused_on_every_replica(replicas: tuple[TestClient, TestClient], redis_url: str) -> None:
    a, b = replicas
    store = RedisIdentityStore(redis_url)
    try:
        key = store.enroll("ep1")
    finally:
        store.close()
    with FakeEndpoint(a, "ep1", headers=endpoint_headers("ep1", key)):
        with pytest.raises(WebSocketDisconnect):  # b's local key is another identity
            FakeEndpoint(b, "ep1").register()
        with FakeEndpoint(b, "ep1", headers=endpoint_headers("ep1", key)):  # the same key takes it over at once
            assert a.get("/endpoints/ep1", headers=AUTH).status_code == 200


def test_a_stale_owner_does_not_answer_for_a_name_it_lost(replicas: tuple[TestClient, TestClient], redis_url: str) -> None:
    a, _b = replicas
    with FakeEndpoint(a, "ep1") as ep:
        conn = app_of(a).registry.get("ep1")
        assert conn.fence >= 1
        # another replica took the name over while A was not looking; A's own clock says its lease ran out
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        r.set(rs.lease_key("ep1"), f'{{"replica": "elsewhere", "fence": {conn.fence + 1}, "key": "local", "since": 0}}')
        r.close()
        conn.lease_until = 0.0
        resp = a.get("/ep1/sysinfo/x", headers=AUTH)
        assert resp.status_code == 503 and "does not answer" in resp.json()["message"]  # forwarded, not answered by A
        assert ep.ws is not None
        with pytest.raises(WebSocketDisconnect) as closed:
            ep.ws.receive_text()
        assert closed.value.code == CLOSE_REPLACED
        assert conn.closed and conn.moved


def test_without_redis_a_replica_is_degraded_and_serves_its_own_endpoints(redis_url: str) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with TestClient(create_app(make_settings(redis_url=redis_url))) as first:
        with FakeEndpoint(first, "ep1"):  # ep1's claim is recorded (in Redis) while it is reachable
            pass
        claims = app_of(first).tokens.store.read().claims
    with TestClient(create_app(settings)) as a:
        health = a.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "degraded", "replica": app_of(a).backplane.replica, "redis": "unreachable"}
        # a new name cannot be claimed without Redis: a clear 503
        denied = refused(a, endpoint_headers("ep2"))
        assert denied.status_code == 503 and "retry later" in denied.json()["message"]
        # a name this replica knows is held by its key registers, and relays
        app_of(a).tokens.store.install(1, app_of(a).tokens.store.document.model_copy(update={"claims": claims}))
        app_of(a).tokens.refresh()
        with FakeEndpoint(a, "ep1") as ep:
            ep.serve(echo)
            assert a.get("/ep1/sysinfo/x", headers=AUTH).status_code == 200
            assert [e["name"] for e in a.get("/endpoints", headers=AUTH).json()["endpoints"]] == ["ep1"]
            elsewhere = a.get("/ep9/sysinfo/x", headers=AUTH)
            assert elsewhere.status_code == 503 and "cannot reach Redis" in elsewhere.json()["message"]


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    store = RedisIdentityStore(f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(BridgeUnavailableError) as failed:
            store.read()
    finally:
        store.close()
    assert "cannot reach Redis at redis://:***@127.0.0.1" in failed.value.message and "s3cret" not in failed.value.message


def test_an_owner_that_goes_away_mid_request_is_a_503_not_a_wait(replicas: tuple[TestClient, TestClient], redis_url: str) -> None:
    """The lease names a replica that hears the request and then vanishes: the waiting
    requester notices (its channel has no listener any more) and answers 503."""
    _a, b = replicas
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    ghost = r.pubsub()
    try:
        ghost.subscribe(rs.REPLICA_CHANNEL + "ghost")
        ghost.get_message(timeout=1.0)
        r.set(rs.lease_key("ep1"), '{"replica": "ghost", "fence": 1, "key": "local", "since": 0}')
        threading.Timer(0.5, ghost.unsubscribe).start()
        started = time.monotonic()
        resp = b.get("/ep1/sysinfo/x", headers={**AUTH, "X-Orbit-Timeout": "30"})
        assert resp.status_code == 503 and "went away before answering" in resp.json()["message"]
        assert time.monotonic() - started < 10  # the sweep's second, not the 30 s deadline
    finally:
        ghost.close()
        r.close()
