"""``/events``: identity A never sees identity B's task ids, labels or byte counts, live
or replayed, whatever filters or ``Last-Event-ID`` it sends.

A hand-written endpoint ``tasks`` publishes notifications the way the Globus plugin
does (task id, label, bytes), each attributed to the identity whose session raised
it; the real ``ep1`` (sysinfo) raises session notifications of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attacker import EventReader, RawEndpoint, add_token, bearer, until
from conftest import module_stack

from radical.orbit.models.messages import session_tag

Stack = Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with module_stack(tmp_path_factory) as stack:
        stack.alice = add_token(stack, "alice")
        stack.bob = add_token(stack, "bob")
        stack.ops = add_token(stack, "ops", admin=True)
        with RawEndpoint(stack, "tasks") as tasks:
            stack.tasks = tasks
            yield stack


def task_events(tasks: RawEndpoint, owner: str | None, count: int) -> list[str]:
    """``count`` task notifications of ``owner``'s session; their task ids."""
    ids = []
    for i in range(count):
        task_id = f"{owner}-task-{secrets.token_hex(8)}"
        ids.append(task_id)
        payload = {"task_id": task_id, "label": f"{owner}-secret-label-{i}", "bytes_transferred": 1000 + i, "status": "ACTIVE"}
        tasks.notify("task_status", payload, owner=owner, sid=f"{owner}-sid")
    return ids


def notifications(reader: EventReader) -> list[dict[str, Any]]:
    return [e for e in reader.events if e["event"] == "notification"]


def test_live_streams_show_each_identity_its_own_tasks_only(stack: Stack) -> None:
    readers = {name: EventReader(stack.url, bearer(getattr(stack, name))) for name in ("alice", "bob", "ops")}
    try:
        bob_ids = task_events(stack.tasks, "bob", 20)
        alice_ids = task_events(stack.tasks, "alice", 5)
        task_events(stack.tasks, None, 2)  # plugin-wide: everyone's
        readers["ops"].wait_for(lambda ev: len([e for e in ev if e["event"] == "notification"]) >= 27, "the admin sees all")
        readers["alice"].wait_for(lambda ev: len([e for e in ev if e["event"] == "notification"]) >= 7, "alice sees hers")
        readers["bob"].wait_for(lambda ev: len([e for e in ev if e["event"] == "notification"]) >= 22, "bob sees his")
        alice_text = readers["alice"].text()
        assert "bob-" not in alice_text and session_tag("bob-sid") not in alice_text
        assert {e["payload"]["task_id"] for e in notifications(readers["alice"])} >= set(alice_ids)
        assert all(e["payload"]["task_id"].startswith(("alice-", "None-")) for e in notifications(readers["alice"]))
        assert "alice-" not in readers["bob"].text()
        assert {e["payload"]["task_id"] for e in notifications(readers["ops"])} >= set(bob_ids) | set(alice_ids)
    finally:
        for reader in readers.values():
            reader.close()


def test_real_session_notifications_reach_their_owner_only(stack: Stack) -> None:
    """A sysinfo watch of bob's session on the real endpoint: alice's stream, even filtered
    on bob's session tag, gets none of it; bob's gets all of it."""
    resp = httpx.post(f"{stack.url}/ep1/sysinfo/register_session", headers=bearer(stack.bob), json={}, timeout=15)
    sid = resp.json()["sid"]
    tag = session_tag(sid)
    with (
        EventReader(stack.url, bearer(stack.alice)) as alice,
        EventReader(stack.url, bearer(stack.alice), query=f"?session={tag}") as alice_filtered,
        EventReader(stack.url, bearer(stack.bob), query=f"?session={tag}") as bob,
    ):
        watch = httpx.post(f"{stack.url}/ep1/sysinfo/watch", headers=bearer(stack.bob), json={"sid": sid, "interval": 0.05, "count": 5}, timeout=15)
        assert watch.status_code == 200, watch.text
        bob.wait_for(lambda ev: len([e for e in ev if e["event"] == "notification"]) >= 5, "bob's watch reaches bob")
        until(lambda: len(alice.events) >= 1, "alice's stream is up")
        assert not [e for e in notifications(alice) if e["session"] == tag]
        assert not notifications(alice_filtered)


def test_replay_shows_each_identity_its_own_tasks_only(stack: Stack) -> None:
    """Resuming from the first id, from an unknown id (a gap, then the whole buffer) or
    from another boot replays alice's events and everyone's, never bob's."""
    task_events(stack.tasks, "bob", 10)
    task_events(stack.tasks, "alice", 2)
    with EventReader(stack.url, bearer(stack.alice)) as probe:
        until(lambda: bool(probe.events), "hello")
        boot = probe.events[0]["payload"]["boot"]
    for last_id in (f"{boot}-0", f"{boot}-1", "nonsense", "deadbeef-1", f"{boot}-99999999"):
        with EventReader(stack.url, bearer(stack.alice), last_event_id=last_id) as replay:
            replay.wait_for(lambda ev: len([e for e in ev if e["event"] == "notification"]) >= 2, f"alice's replay from {last_id}")
            assert "bob-" not in replay.text(), last_id
    with EventReader(stack.url, bearer(stack.ops), last_event_id=f"{boot}-0") as admin:
        admin.wait_for(lambda ev: "bob-secret-label" in str(ev), "the admin's replay has bob's tasks")
