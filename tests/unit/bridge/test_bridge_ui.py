"""The bridge's /ui: the Explorer's files, security headers, sign-in API and cookie sessions (TestClient)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from bridge_helpers import (
    AUTH,
    TOKEN,
    FakeEndpoint,
    TestClient,
    echo,
    local_key,
    make_settings,
)
from starlette.testclient import WebSocketDenialResponse

from radical.orbit.bridge import create_app
from radical.orbit.bridge.ui import CSP, with_security_headers
from radical.orbit.models.messages import (
    RESERVED_NAMES,
    decode_body,
)

CSRF = {"X-Orbit-CSRF": "1"}
ORIGIN = "http://testserver"


def sign_in(client: TestClient) -> str:
    """Sign the TestClient in as a browser would; returns the cookie value (also in its jar)."""
    link = client.post("/ui/api/signin-link", headers=AUTH).json()["url"]
    secret = link.split("#signin=", 1)[1]
    resp = client.post("/ui/api/session", json={"secret": secret}, headers={**CSRF, "Origin": ORIGIN})
    assert resp.status_code == 200, resp.text
    return str(resp.cookies["orbit_session"])


def assert_security_headers(headers: Any) -> None:
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


class TestFiles:
    def test_index_with_headers_and_no_token(self, client: TestClient) -> None:
        resp = client.get("/ui/")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.headers["cache-control"] == "no-store"
        assert_security_headers(resp.headers)
        assert "<html" in resp.text
        assert client.get("/ui/index.html").text == resp.text

    def test_csp_is_strict(self) -> None:
        rules = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
        assert rules["default-src"] == "'none'"
        assert rules["script-src"] == "'self'" and rules["style-src"] == "'self'"
        assert rules["connect-src"] == "'self'" and rules["frame-ancestors"] == "'none'"
        assert "unsafe" not in CSP and "http" not in CSP

    def test_bare_ui_redirects(self, client: TestClient) -> None:
        resp = client.get("/ui", follow_redirects=False)
        assert resp.status_code in (301, 302, 307, 308)
        assert resp.headers["location"].endswith("/ui/")

    @pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/%2e%2e/%2e%2e/pyproject.toml", "/ui/..%2fbridge%2fapp.py"])
    def test_missing_or_outside_is_404_json(self, client: TestClient, path: str) -> None:
        resp = client.get(path)
        assert resp.status_code == 404
        assert resp.json()["code"] == "not_found"
        assert_security_headers(resp.headers)

    def test_post_on_files_is_405(self, client: TestClient) -> None:
        resp = client.post("/ui/index.html")
        assert resp.status_code == 405 and resp.json()["message"]

    def test_module_content_type_whatever_mime_types_says(self) -> None:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        wrapped = with_security_headers("/ui/js/app.js", send)
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-javascript"), (b"etag", b"x")]}
        asyncio.run(wrapped(start))
        headers = dict(sent[0]["headers"])
        assert headers[b"content-type"] == b"text/javascript; charset=utf-8"
        assert headers[b"cache-control"] == b"no-cache" and headers[b"etag"] == b"x"
        assert headers[b"content-security-policy"] == CSP.encode()

    def test_ui_is_a_reserved_name(self, client: TestClient) -> None:
        assert "ui" in RESERVED_NAMES
        for name in ("ui", "UI"):
            headers = {"Authorization": f"Bearer {local_key()}", "X-Orbit-Endpoint": name}
            with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws/endpoint", headers=headers):
                raise AssertionError("the bridge accepted the WebSocket")
            assert info.value.status_code == 400 and "reserved" in info.value.json()["message"]


class TestSignIn:
    def test_link_needs_the_token(self, client: TestClient) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            resp = client.post("/ui/api/signin-link", headers=headers)
            assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
        resp = client.post("/ui/api/signin-link", headers=AUTH)
        body = resp.json()
        assert body["expires_in"] == 300
        assert body["url"].startswith(f"{ORIGIN}/ui/#signin=")
        assert resp.headers["cache-control"] == "no-store"
        assert TOKEN not in resp.text

    def test_session_cookie_and_me(self, client: TestClient) -> None:
        assert client.get("/ui/api/me").status_code == 401
        link = client.post("/ui/api/signin-link", headers=AUTH).json()["url"]
        resp = client.post("/ui/api/session", json={"secret": link.split("#signin=")[1]}, headers=CSRF)
        assert resp.status_code == 200
        assert resp.json() == {"identity": "admin", "admin": True}
        set_cookie = resp.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
            assert attribute in set_cookie
        assert "Secure" not in set_cookie  # plain http: a Secure cookie would never come back
        assert TOKEN not in set_cookie and TOKEN not in resp.text
        assert client.get("/ui/api/me").json() == {"identity": "admin", "admin": True}

    def test_secret_is_single_use(self, client: TestClient) -> None:
        secret = client.post("/ui/api/signin-link", headers=AUTH).json()["url"].split("#signin=")[1]
        assert client.post("/ui/api/session", json={"secret": secret}, headers=CSRF).status_code == 200
        client.cookies.clear()
        again = client.post("/ui/api/session", json={"secret": secret}, headers=CSRF)
        assert again.status_code == 401 and "radical-orbit explorer" in again.json()["message"]
        assert "set-cookie" not in again.headers

    @pytest.mark.parametrize(
        ("headers", "word"),
        [({}, "X-Orbit-CSRF"), ({"X-Orbit-CSRF": "1", "Origin": "http://evil.example"}, "Origin"), ({"X-Orbit-CSRF": "1", "Sec-Fetch-Site": "cross-site"}, "cross-site")],
    )
    def test_session_exchange_csrf(self, client: TestClient, headers: dict[str, str], word: str) -> None:
        secret = client.post("/ui/api/signin-link", headers=AUTH).json()["url"].split("#signin=")[1]
        resp = client.post("/ui/api/session", json={"secret": secret}, headers=headers)
        assert resp.status_code == 403 and word in resp.json()["message"]
        # refused before the secret was looked at: it still works from the page
        assert client.post("/ui/api/session", json={"secret": secret}, headers=CSRF).status_code == 200

    @pytest.mark.parametrize(
        ("content", "status", "word"),
        [(b"not json", 400, "JSON"), (b"[]", 400, "secret"), (b'{"secret": 5}', 400, "secret"), (b"{}", 400, "secret"), (b"x" * 5000, 413, "bytes")],
    )
    def test_bad_session_bodies(self, client: TestClient, content: bytes, status: int, word: str) -> None:
        resp = client.post("/ui/api/session", content=content, headers=CSRF)
        assert resp.status_code == status and word in resp.json()["message"]

    def test_signout_revokes(self, client: TestClient) -> None:
        cookie = sign_in(client)
        assert client.post("/ui/api/signout").status_code == 403  # CSRF header needed here too
        resp = client.post("/ui/api/signout", headers=CSRF)
        assert resp.status_code == 200 and resp.json() == {"signed_out": True}
        assert "Max-Age=0" in resp.headers["set-cookie"]
        client.cookies.clear()
        # the old cookie, replayed, is dead
        stale = {"Cookie": f"orbit_session={cookie}"}
        resp = client.get("/endpoints", headers=stale)
        assert resp.status_code == 401 and "ended" in resp.json()["message"]
        assert client.get("/ui/api/me", headers=stale).status_code == 401

    def test_unknown_api_route(self, client: TestClient) -> None:
        assert client.get("/ui/api/nope").status_code == 404
        assert client.get("/ui/api/session").status_code == 405

    def test_lifetimes_from_the_settings(self) -> None:
        with TestClient(create_app(make_settings(signin_lifetime=7, browser_idle=60))) as tc:
            assert tc.post("/ui/api/signin-link", headers=AUTH).json()["expires_in"] == 7

    def test_no_auth_bridge_is_anonymous(self) -> None:
        with TestClient(create_app(make_settings(auth=False, token=None))) as tc:
            assert tc.get("/ui/api/me").json() == {"identity": "anonymous", "admin": True}


class TestCookieRequests:
    def test_cookie_opens_endpoints(self, client: TestClient) -> None:
        assert client.get("/endpoints").status_code == 401
        sign_in(client)
        assert client.get("/endpoints").json() == {"endpoints": []}
        assert client.get("/endpoints", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert client.get("/endpoints/ep9").json()["code"] == "endpoint_not_found"
        resp = client.post("/endpoint/list", headers=CSRF)  # operator-style routes stay token-only
        assert resp.status_code == 403 and "bridge token" in resp.json()["message"]
        assert client.get("/endpoints", headers={"Origin": "http://127.0.0.1:1"}).status_code == 403

    def test_relay_with_cookie_drops_it(self, client: TestClient) -> None:
        sign_in(client)
        with FakeEndpoint(client, "ep1") as ep:
            ep.serve(echo)
            resp = client.post("/ep1/sysinfo/echo", json={"a": 1}, headers={**CSRF, "Origin": ORIGIN, "X-Other": "kept"})
            assert resp.status_code == 200, resp.text
            got = resp.json()
            names = {name.lower(): value for name, value in got["headers"]}
            assert "cookie" not in names and "x-orbit-csrf" not in names and "authorization" not in names
            assert names["x-other"] == "kept" and names["x-orbit-identity"] == "admin"
            assert json.loads(decode_body(got["body"], got["body_encoding"])) == {"a": 1}
            # a bearer client's cookies are dropped too
            resp = client.get("/ep1/sysinfo/echo", headers={**AUTH, "Cookie": "orbit_session=x; other=y"})
            assert "cookie" not in {name.lower() for name, _ in resp.json()["headers"]}

    def test_relay_csrf_refused_before_the_endpoint(self, client: TestClient) -> None:
        sign_in(client)
        with FakeEndpoint(client, "ep1") as ep:
            calls: list[Any] = []
            ep.serve(lambda frame: calls.append(frame) or echo(frame))
            for headers in ({}, {"X-Orbit-CSRF": "1", "Origin": "http://evil.example"}):
                resp = client.post("/ep1/sysinfo/echo", json={}, headers=headers)
                assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
            assert client.get("/ep1/sysinfo/echo").status_code == 200  # a safe method needs no header
            assert len(calls) == 1

    def test_cookie_does_not_register_endpoints(self, client: TestClient) -> None:
        cookie = sign_in(client)
        headers = {"Cookie": f"orbit_session={cookie}", "X-Orbit-Endpoint": "ep1"}
        with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws/endpoint", headers=headers):
            raise AssertionError("the bridge accepted the WebSocket")
        assert info.value.status_code == 401
