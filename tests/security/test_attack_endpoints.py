"""Endpoints as attackers, or impostors: taking another endpoint's name, answering its
requests, crashing or filling the bridge with what they send.

One bridge (``--max-body 1 MiB``, so its frame limit is the protocol's 64 MiB, and a
4 MiB event buffer); endpoints written by hand (:class:`attacker.RawEndpoint`) with the
bridge host's key or keys enrolled with ``radical-orbit bridge endpoints enroll``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attacker import (
    EventReader,
    RawEndpoint,
    add_token,
    bearer,
    rss_mib,
    until,
    upgrade_refused,
)
from conftest import module_stack
from websockets.exceptions import ConnectionClosed

from radical.orbit import testing as procs

Stack = Any
MIB = 2**20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RADICAL_ORBIT_BRIDGE_EVENT_BUFFER_BYTES": str(4 * MIB)}
    with module_stack(tmp_path_factory, endpoint=None, env=env, bridge_args=["--max-body", str(MIB)]) as stack:
        stack.alice = add_token(stack, "alice")
        yield stack


def listed(stack: Stack) -> list[str]:
    return sorted(e["name"] for e in stack.get("/endpoints").json()["endpoints"])


def test_an_impostor_cannot_take_a_name_while_its_endpoint_is_down(stack: Stack) -> None:
    """``dtn`` (enrolled) is down. Nobody else gets the name, in any case: not another
    enrolled key (403), not the bridge host's own key (409), not a client token (403),
    not a made-up key or none (401). ``dtn`` comes back with its own key."""
    key = stack.enrolled("dtn")
    with RawEndpoint(stack, "dtn", key=key):
        assert "dtn" in listed(stack)
    until(lambda: "dtn" not in listed(stack), "dtn is down")
    other = stack.enrolled("other")
    for name in ("dtn", "DTN", "Dtn"):
        assert upgrade_refused(stack.ws_url, stack.endpoint_headers(name, other))[0] == 403
        status, body = upgrade_refused(stack.ws_url, stack.endpoint_headers(name))  # the local key
        assert status == 409 and "endpoints forget dtn" in body["message"]
        for token in (stack.token, stack.alice):
            assert upgrade_refused(stack.ws_url, {**bearer(token), "X-Orbit-Endpoint": name})[0] == 403
        assert upgrade_refused(stack.ws_url, stack.endpoint_headers(name, "orbit_ek_" + secrets.token_urlsafe(32)))[0] == 401
        assert upgrade_refused(stack.ws_url, {"X-Orbit-Endpoint": name})[0] == 401
    assert "dtn" not in listed(stack)
    with RawEndpoint(stack, "dtn", key=key) as back:
        assert back.registered["type"] == "registered"
        resp = httpx.get(f"{stack.url}/DTN/spy/hello", headers=bearer(stack.alice), timeout=15)
        assert resp.status_code == 200 and back.requests[-1]["path"] == "/spy/hello"
    logs = stack.logs(tail=100_000)
    assert key not in logs and other not in logs


def test_ep1_and_EP1_are_one_name(stack: Stack) -> None:
    """A second connection under another case of a name is the same name: only the key
    that holds it may take it over (the old socket is closed with 4009); another key is
    refused; the bridge lists the case first claimed."""
    with RawEndpoint(stack, "ep1") as first, RawEndpoint(stack, "EP1") as second:
        assert first.wait_closed() == 4009
        assert second.registered["name"] == "ep1"
        assert [n for n in listed(stack) if n.casefold() == "ep1"] == ["ep1"]
        status, _ = upgrade_refused(stack.ws_url, stack.endpoint_headers("Ep1", stack.enrolled("ep2")))
        assert status == 403


@pytest.mark.parametrize("name", ["ui", "UI", "events", "health", "ws", "endpoints", "../x", "a b", "", "x" * 65, "é", "a/b", "-x"])
def test_reserved_and_malformed_names_are_refused_before_the_upgrade(stack: Stack, name: str) -> None:
    headers = stack.endpoint_headers("placeholder")
    headers["X-Orbit-Endpoint"] = name
    if not name.isascii():  # a header carries bytes: send the UTF-8 of it
        headers["X-Orbit-Endpoint"] = name.encode("utf-8").decode("latin-1")
    assert upgrade_refused(stack.ws_url, headers)[0] == 400


def test_the_register_frame_cannot_name_another_endpoint(stack: Stack) -> None:
    """The upgrade request claims ``honest``; the register frame then says ``victim``."""
    with RawEndpoint(stack, "honest", register_as="victim") as liar:
        assert liar.registered["type"] == "error" and liar.registered["code"] == "name_mismatch"
        assert liar.wait_closed() == 4000
    assert "victim" not in listed(stack)


def test_a_forgotten_endpoint_is_cut_off_and_its_key_refused(stack: Stack) -> None:
    key = stack.enrolled("gone")
    with RawEndpoint(stack, "gone", key=key) as gone:
        procs.bridge_admin(stack.bridge, "endpoints", "forget", "gone")
        assert gone.wait_closed() == 4001
    assert upgrade_refused(stack.ws_url, stack.endpoint_headers("gone", key))[0] == 401


def test_an_endpoint_cannot_answer_another_endpoints_requests(stack: Stack) -> None:
    """``thief`` sees its own request ids and answers the request pending on ``victim``
    under its exact id and every id near it: the victim's client never gets that answer."""
    with RawEndpoint(stack, "victim", answer=None) as victim, RawEndpoint(stack, "thief") as thief:
        assert httpx.get(f"{stack.url}/thief/spy/x", headers=bearer(stack.alice), timeout=15).status_code == 200
        seen: dict[str, httpx.Response] = {}

        def victims_client() -> None:
            seen["resp"] = httpx.get(f"{stack.url}/victim/spy/secret", headers={**bearer(stack.alice), "X-Orbit-Timeout": "3"}, timeout=30)

        caller = threading.Thread(target=victims_client)
        caller.start()
        until(lambda: bool(victim.requests), "the victim got the request")
        wanted = victim.requests[0]["id"]
        own = thief.requests[0]["id"]
        prefix, count = own[:16], int(own[16:], 16)
        for ref in {wanted, *(f"{prefix}{n:016x}" for n in range(count, count + 20))}:
            thief.send({"type": "response", "id": ref, "status": 200, "headers": [], "body": "stolen answer"})
        caller.join(30)
        assert seen["resp"].status_code == 504 and "stolen" not in seen["resp"].text


ROGUE_ANSWERS: dict[str, dict[str, Any]] = {
    "bad-base64": {"status": 200, "body": "!!!not base64!!!", "body_encoding": "base64"},
    "crlf-header": {"status": 200, "headers": [["x-a", "v\r\nSet-Cookie: orbit_session=evil"]]},
    "lf-header": {"status": 200, "headers": [["x-a", "v\nx"]]},
    "not-latin1-header": {"status": 200, "headers": [["x-a", "\u2713"]]},
    "bad-header-name": {"status": 200, "headers": [["bad name:", "v"]]},
    "status-99": {"status": 99},
    "status-1000": {"status": 1000},
    "status-101": {"status": 101},
    "status-text": {"status": "abc"},
    "headers-not-a-list": {"status": 200, "headers": "x"},
}


def rogue_answer(frame: dict[str, Any]) -> dict[str, Any]:
    kind = frame["path"].rsplit("/", 1)[-1]
    answer: dict[str, Any] = {"type": "response", "id": frame["id"], "status": 200, "headers": [], "body": "fine"}
    answer.update(ROGUE_ANSWERS.get(kind, {}))
    return answer


def test_malformed_answers_are_502_and_the_client_connection_stays_up(stack: Stack) -> None:
    """Whatever an endpoint answers, its client gets a 502 naming the fault on a
    connection that stays usable, and the bridge logs one line, never a traceback."""
    with RawEndpoint(stack, "rogue", answer=rogue_answer), httpx.Client(headers=bearer(stack.alice), timeout=15) as client:
        for kind in ROGUE_ANSWERS:
            resp = client.get(f"{stack.url}/rogue/spy/{kind}")
            assert resp.status_code == 502, (kind, resp.status_code, resp.text)
            assert "rogue" in resp.json()["message"] and "set-cookie" not in resp.headers
            good = client.get(f"{stack.url}/rogue/spy/fine")
            assert good.status_code == 200 and good.text == "fine", kind
    assert "Traceback" not in stack.bridge.log_text()
    assert "orbit_session=evil" not in stack.bridge.log_text()


def test_oversized_notifications_are_dropped_and_memory_stays_bounded(stack: Stack) -> None:
    """40 notifications of 2 MiB (over the 256 KiB limit) are dropped, the endpoint told
    each time; 400 of 200 KiB (within it, 80 MiB in all) go through a 4 MiB buffer: the
    bridge's memory grows by a fraction of what was sent, and a reader resuming from
    the first of them is told of the gap."""
    pid = stack.bridge.pid
    with EventReader(stack.url, bearer(stack.token)) as probe:
        until(lambda: bool(probe.events), "hello")
        first = probe.events[0]["payload"]["last_id"]
    before = rss_mib(pid)
    with RawEndpoint(stack, "flood") as flood:
        big = "x" * (2 * MIB)
        for _ in range(40):
            flood.notify("big", {"blob": big}, owner=None)
        for _ in range(40):
            frame = flood.next_frame(timeout=30)
            assert frame["type"] == "error" and frame["code"] == "notification_too_large", frame
        chunk = "y" * (200 * 1024)
        for i in range(400):
            flood.notify("ok", {"blob": chunk, "i": i}, owner=None)
        flood.notify("ok", {"last": True}, owner=None)
        with EventReader(stack.url, bearer(stack.token), last_event_id=first, query="?topic=ok") as late:
            late.wait_for(lambda ev: any(e["payload"].get("last") for e in ev if e["event"] == "notification"), "the newest event")
            assert late.events[1]["event"] == "gap" and late.events[1]["payload"]["reason"] == "events no longer buffered"
            replayed = [e for e in late.events if e["event"] == "notification"]
            assert 1 < len(replayed) < 100  # what 4 MiB hold (and any still arriving), not 400
    grown = rss_mib(pid) - before
    assert grown < 48, f"the bridge grew by {grown:.0f} MiB for 80 MiB of notifications through a 4 MiB buffer"


def test_an_oversized_frame_closes_only_its_own_socket(stack: Stack) -> None:
    """A frame over the bridge's frame limit (64 MiB here) ends that endpoint's socket
    (1009, or a reset while the frame is still being sent), nothing else."""
    with RawEndpoint(stack, "steady") as steady, RawEndpoint(stack, "huge") as huge:
        frame = json.dumps({"type": "notification", "plugin": "spy", "topic": "t", "payload": {"x": "z" * (64 * MIB + 1024)}, "ts": 1.0})
        with pytest.raises(ConnectionClosed):
            huge.ws.send(frame)
            huge.ws.recv(timeout=20)
        assert huge.wait_closed() in (1006, 1009)
        del frame
        until(lambda: "huge" not in listed(stack), "huge dropped")
        assert httpx.get(f"{stack.url}/steady/spy/x", headers=bearer(stack.alice), timeout=15).status_code == 200
        assert steady.close_code is None
