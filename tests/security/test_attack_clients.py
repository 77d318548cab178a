"""A network attacker and client identities against a real bridge and endpoint.

One bridge (token auth) with ``ep1`` (sysinfo, test routes at their default: off) and
a hand-written endpoint ``spy`` that shows what an endpoint receives; client identities
``alice`` and ``bob`` made with ``radical-orbit bridge tokens add``.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attacker import RawEndpoint, add_token, bearer, upgrade_refused
from conftest import module_stack

from radical.orbit.__about__ import __version__

Stack = Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with module_stack(tmp_path_factory) as stack:
        stack.alice = add_token(stack, "alice")
        stack.bob = add_token(stack, "bob")
        with RawEndpoint(stack, "spy") as spy:
            stack.spy = spy
            yield stack


def call(stack: Stack, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    return httpx.request(method, f"{stack.url}{path}", headers=headers, timeout=15, **kwargs)


def test_health_tells_nothing_but_alive(stack: Stack) -> None:
    """A stranger learns that a bridge is alive, nothing else: no version, no endpoint
    names, no server header; the API's own description is not served to strangers."""
    for path in ("/health", "/healthz"):
        resp = httpx.get(f"{stack.url}{path}", timeout=10)
        assert resp.status_code == 200 and resp.json() == {"status": "ok"}
        assert "server" not in resp.headers
        assert __version__ not in resp.text and "ep1" not in resp.text
    for path in ("/openapi.json", "/docs", "/redoc", "/endpoints", "/endpoints/ep1"):
        resp = httpx.get(f"{stack.url}{path}", timeout=10)
        assert resp.status_code == 401, path
        assert "ep1" not in resp.text and __version__ not in resp.text


@pytest.mark.parametrize(
    "credentials",
    ["none", "wrong", "one-char-off", "with-suffix", "endpoint-key", "basic", "as-cookie", "in-query", "lowercase-header-only-value"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/endpoints"), ("GET", "/events"), ("POST", "/ep1/sysinfo/register_session")])
def test_no_route_without_a_client_token(stack: Stack, credentials: str, method: str, path: str) -> None:
    """Near misses, other kinds of secret and other places to put the token are all refused."""
    token = stack.alice
    key = stack.endpoint_headers("x")["Authorization"]
    headers, query = {
        "none": ({}, ""),
        "wrong": (bearer("orbit_ct_" + secrets.token_urlsafe(32)), ""),
        "one-char-off": (bearer(token[:-1] + ("A" if token[-1] != "A" else "B")), ""),
        "with-suffix": (bearer(token + "x"), ""),
        "endpoint-key": ({"Authorization": key}, ""),
        "basic": ({"Authorization": f"Basic {token}"}, ""),
        "as-cookie": ({"Cookie": f"orbit_session={token}"}, ""),
        "in-query": ({}, f"?token={token}&access_token={token}"),
        "lowercase-header-only-value": ({"Authorization": token}, ""),
    }[credentials]
    resp = call(stack, method, path + query, None, headers=headers)
    assert resp.status_code in (401, 403), resp.text  # a cookie is checked for CSRF before it is looked up
    assert token not in resp.text


def test_an_unauthenticated_upgrade_never_becomes_a_websocket(stack: Stack) -> None:
    """The endpoint socket refuses an upgrade request without a key with an HTTP status:
    the attacker never holds an open WebSocket, not even for a moment; other paths do
    not upgrade at all."""
    port = stack.port
    for path, headers in (("/ws/endpoint", ""), ("/ws/endpoint", "X-Orbit-Endpoint: ep9\r\n"), ("/events", ""), ("/ep1/sysinfo", "")):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {secrets.token_urlsafe(16)}==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
                ).encode()
            )
            head = sock.recv(4096).split(b"\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 4"), (path, head)
    status, body = upgrade_refused(stack.ws_url, {"X-Orbit-Endpoint": "ep9"})
    assert status == 401 and "endpoint key" in body["message"]


def test_a_client_token_cannot_register_an_endpoint(stack: Stack) -> None:
    """Neither a user's token nor the default (admin) one opens the endpoint socket, for a
    new name or a taken one."""
    for token in (stack.alice, stack.token):
        for name in ("newname", "ep1", "spy"):
            status, body = upgrade_refused(stack.ws_url, {**bearer(token), "X-Orbit-Endpoint": name})
            assert status == 403, body
            assert "a client token cannot register an endpoint" in body["message"]
            assert token not in json.dumps(body)
    names = [e["name"] for e in stack.get("/endpoints").json()["endpoints"]]
    assert sorted(names) == ["ep1", "spy"]


def test_the_test_routes_are_off_unless_enabled(stack: Stack) -> None:
    """echo, echo/bytes and sleep, which let a client make the bridge hold big answers or
    many requests, answer 404 on an endpoint started without the option."""
    sid = call(stack, "POST", "/ep1/sysinfo/register_session", stack.alice, json={}).json()["sid"]
    for method, path, body in (
        ("GET", "/ep1/sysinfo/echo/bytes?n=10000000", None),
        ("POST", "/ep1/sysinfo/echo", {"x": 1}),
        ("GET", "/ep1/sysinfo/echo/deep/path", None),
        ("POST", "/ep1/sysinfo/sleep", {"sid": sid, "seconds": 30}),
    ):
        resp = call(stack, method, path, stack.alice, json=body)
        assert resp.status_code == 404, (path, resp.text)
        assert "sysinfo.test_routes=true" in resp.json()["message"]


def test_an_endpoint_never_sees_a_client_credential_or_a_forged_identity(stack: Stack) -> None:
    """What a client sends to be someone else, or its own secrets, never reach an endpoint:
    the bridge names the caller itself."""
    spy = stack.spy
    forged = {
        "X-Orbit-Identity": "admin",
        "x-orbit-identity": "bob",
        "Cookie": "orbit_session=stolen-cookie-value",
        "X-Orbit-CSRF": "1",
        "X-Request-Id": "forged-request-id",
        "Proxy-Authorization": "Basic c2VjcmV0",
    }
    before = len(spy.requests)
    resp = call(stack, "POST", "/spy/spy/anything?q=1", stack.alice, headers=forged, json={"a": 1})
    assert resp.status_code == 200, resp.text
    frame = spy.requests[before]
    names = [name.lower() for name, _ in frame["headers"]]
    assert [value for name, value in frame["headers"] if name.lower() == "x-orbit-identity"] == ["alice"]
    for dropped in ("authorization", "cookie", "x-orbit-csrf", "proxy-authorization"):
        assert dropped not in names
    assert stack.alice not in json.dumps(frame) and "stolen-cookie-value" not in json.dumps(frame)
    assert [value for name, value in frame["headers"] if name == "x-request-id"] != ["forged-request-id"]


def _register(stack: Stack, token: str) -> str:
    resp = call(stack, "POST", "/ep1/sysinfo/register_session", token, json={})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["sid"])


def _shape(resp: httpx.Response, sid: str) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status_code, body["code"], body["message"].replace(sid[:8], "<sid>")


def test_another_identitys_session_is_exactly_an_unknown_one(stack: Stack) -> None:
    """alice holding bob's sid (leaked, or guessed) gets what a made-up sid gets, the
    admin too; her unregister closes nothing; bob's session goes on working."""
    def held(token: str) -> int:
        return int(call(stack, "GET", "/ep1/sysinfo/", token).json()["sessions"])

    alice_held = held(stack.alice)
    bob_sid = _register(stack, stack.bob)
    made_up = secrets.token_urlsafe(24)
    unknown = _shape(call(stack, "POST", "/ep1/sysinfo/info", stack.alice, json={"sid": made_up}), made_up)
    assert unknown[0] == 404
    for token in (stack.alice, stack.token):
        assert _shape(call(stack, "POST", "/ep1/sysinfo/info", token, json={"sid": bob_sid}), bob_sid) == unknown
        assert _shape(call(stack, "POST", "/ep1/sysinfo/watch", token, json={"sid": bob_sid, "interval": 1}), bob_sid)[0] == 404
        closed = call(stack, "POST", "/ep1/sysinfo/unregister_session", token, json={"sid": bob_sid})
        assert closed.status_code == 200 and closed.json() == {"closed": False}
    assert call(stack, "POST", "/ep1/sysinfo/info", stack.bob, json={"sid": bob_sid}).status_code == 200
    assert held(stack.alice) == alice_held  # how many sessions others hold is not shown either


@pytest.mark.parametrize(
    "sid",
    ["", "x" * 20_000, "../../etc/passwd", "%00", "\u202e\u0000", "' OR 1=1 --", "0" * 32, "*", "null"],
    ids=["empty", "huge", "path", "pct", "control", "sql", "zeros", "star", "null"],
)
def test_guessed_sids_are_4xx_never_a_crash(stack: Stack, sid: str) -> None:
    resp = call(stack, "POST", "/ep1/sysinfo/info", stack.alice, json={"sid": sid})
    assert 400 <= resp.status_code < 500, resp.text
    assert "Traceback" not in resp.text


def test_no_route_manages_identities(stack: Stack) -> None:
    """Tokens and endpoint keys are managed only on the bridge host (``radical-orbit
    bridge tokens|endpoints``): not even the admin token finds a route for it."""
    described = call(stack, "GET", "/openapi.json", stack.token)
    assert described.status_code == 200
    paths = " ".join(described.json()["paths"]).lower()
    for word in ("token", "key", "enrol", "identit", "claim", "forget", "revoke"):
        assert word not in paths, word
    for method, path in (("POST", "/tokens"), ("GET", "/tokens"), ("POST", "/ui/api/tokens"), ("POST", "/endpoints/enroll"), ("DELETE", "/endpoints/ep1")):
        assert call(stack, method, path, stack.token).status_code in (404, 405), path
