"""Browser sign-in to the bridge, over plain HTTP with real processes (no browser needed).

``radical-orbit explorer --print-url`` -> the page trades the one-time secret for a
session cookie -> the cookie opens /endpoints, /events and the relay, never reaches an
endpoint, and dies on sign-out; cross-site use of the cookie is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from explorer_browser import PageClient, explorer_link, secret_of
from httpx_sse import connect_sse
from orbit_test_env import scrubbed_environ

from radical.orbit.bridge.ui import CSP

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Stack = Any  # tests/integration/conftest.py: Stack


@pytest.fixture(scope="module")
def stack(sysinfo_stack: Stack) -> Stack:
    """The module's bridge + ep1 (sysinfo; its echo route shows what an endpoint receives)."""
    return sysinfo_stack


def cli_env(stack: Stack, **extra: str) -> dict[str, str]:
    return scrubbed_environ(stack.home, RADICAL_ORBIT_BRIDGE_TOKEN=stack.token, **extra)


@pytest.fixture
def page(stack: Stack) -> Iterator[PageClient]:
    with PageClient(stack.url) as client:
        resp = client.sign_in(explorer_link(stack.url, cli_env(stack)))
        assert resp.status_code == 200, resp.text
        yield client


def test_sign_in_with_the_cli_link(stack: Stack) -> None:
    link = explorer_link(stack.url, cli_env(stack))
    assert link.startswith(f"{stack.url}/ui/#signin=") and stack.token not in link
    with PageClient(stack.url) as client:
        index = client.get("/ui/")
        assert index.status_code == 200 and index.headers["content-security-policy"] == CSP
        assert index.headers["x-content-type-options"] == "nosniff" and index.headers["cache-control"] == "no-store"
        assert client.get("/ui/api/me").status_code == 401
        assert client.get("/endpoints").status_code == 401
        resp = client.sign_in(link)
        assert resp.status_code == 200 and resp.json() == {"identity": "admin", "admin": True}
        attributes = [part.strip() for part in (client.set_cookie or "").split(";")]
        assert "HttpOnly" in attributes and "SameSite=Strict" in attributes and "Path=/" in attributes
        assert "Secure" not in attributes  # plain http
        assert client.get("/ui/api/me").json() == {"identity": "admin", "admin": True}
        names = [e["name"] for e in client.get("/endpoints").json()["endpoints"]]
        assert names == ["ep1"]
        assert client.get("/endpoints/ep1").json()["name"] == "ep1"
        info = client.get("/ep1/sysinfo/")
        assert info.status_code == 200 and info.json()["name"] == "sysinfo"
        # the secret worked once
        again = PageClient(stack.url)
        try:
            refused = again.sign_in(link)
            assert refused.status_code == 401 and "radical-orbit explorer" in refused.json()["message"]
        finally:
            again.close()


def test_cookie_and_csrf_header_never_reach_the_endpoint(stack: Stack, page: PageClient) -> None:
    resp = page.post("/ep1/sysinfo/echo", json={"x": 1})
    assert resp.status_code == 200, resp.text
    seen = resp.json()["headers"]
    assert "cookie" not in seen and "x-orbit-csrf" not in seen and "authorization" not in seen
    assert seen["x-orbit-identity"] == "admin" and seen["origin"] == stack.url
    assert page.cookie is not None and page.cookie not in resp.text


@pytest.mark.parametrize(
    ("headers", "word"),
    [
        ({"X-Orbit-CSRF": "0"}, "X-Orbit-CSRF"),
        ({"Origin": "http://127.0.0.1:1"}, "Origin"),
        ({"Origin": "http://evil.example"}, "Origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({"Sec-Fetch-Site": "same-site"}, "same-site"),
    ],
)
def test_cross_site_use_of_the_cookie_is_refused(page: PageClient, headers: dict[str, str], word: str) -> None:
    for method, path in (("POST", "/ep1/sysinfo/echo"), ("DELETE", "/ep1/sysinfo/echo"), ("POST", "/ui/api/signout")):
        resp = page.request(method, path, headers=headers, json={})
        assert resp.status_code == 403, (method, path, resp.text)
        assert word in resp.json()["message"] and resp.json()["details"]["reason"] == "csrf"
    assert page.get("/ui/api/me").status_code == 200  # nothing was signed out


def test_no_csrf_header_at_all(page: PageClient) -> None:
    resp = page.http.post("/ep1/sysinfo/echo", json={}, headers={"Cookie": f"orbit_session={page.cookie}"})
    assert resp.status_code == 403 and "X-Orbit-CSRF: 1" in resp.json()["message"]


def test_events_with_the_cookie_show_topology_live(stack: Stack, page: PageClient) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        # ends at the first event after stop is set (ep-live leaving is one)
        with httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client, connect_sse(
            client, "GET", f"{stack.url}/events", headers=page.headers("GET")
        ) as source:
            assert source.response.status_code == 200
            for sse in source.iter_sse():
                seen.append((sse.event, json.loads(sse.data)))
                ready.set()
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(15) and seen[0][0] == "hello"
    stack.add_endpoint("ep-live", ("sysinfo",))
    try:
        deadline = time.monotonic() + 20
        while not any(kind == "topology" and "ep-live" in json.dumps(data) for kind, data in seen):
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
    finally:
        stop.set()
        stack.endpoints.pop("ep-live").stop()
        thread.join(15)


def test_sign_out_revokes_the_cookie(stack: Stack, page: PageClient) -> None:
    cookie = page.cookie
    resp = page.post("/ui/api/signout")
    assert resp.status_code == 200 and resp.json() == {"signed_out": True}
    assert "Max-Age=0" in resp.headers["set-cookie"]
    for method, path in (("GET", "/endpoints"), ("GET", "/ep1/sysinfo/"), ("GET", "/ui/api/me"), ("GET", "/events")):
        replay = httpx.request(method, f"{stack.url}{path}", headers={"Cookie": f"orbit_session={cookie}"}, timeout=10)
        assert replay.status_code == 401, (path, replay.text)
        assert "radical-orbit explorer" in replay.json()["message"]


def test_nothing_secret_in_the_logs(stack: Stack, page: PageClient) -> None:
    link = explorer_link(stack.url, cli_env(stack))
    with PageClient(stack.url) as other:
        assert other.sign_in(link).status_code == 200
        assert other.get("/ep1/sysinfo/").status_code == 200
        logs = stack.logs(tail=100_000)
        for secret in (secret_of(link), other.cookie, page.cookie, stack.token):
            assert secret and secret not in logs


def test_cli_opens_a_browser_where_there_is_one(stack: Stack) -> None:
    def run(browser: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "radical.orbit.cli.main", "explorer", "--url", stack.url],
            env=cli_env(stack, BROWSER=browser), capture_output=True, text=True, timeout=60, check=False,
        )
        assert out.returncode == 0, out.stderr
        assert f"{stack.url}/ui/#signin=" in out.stdout and "within 5 minutes" in out.stdout
        return out.stdout

    assert "Opened it in your browser" in run("true")
    assert "No browser found" in run("/nonexistent/browser")


def test_cli_without_the_token_says_so(stack: Stack) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "radical.orbit.cli.main", "explorer", "--print-url", "--url", stack.url],
        env=scrubbed_environ(stack.home / "elsewhere"), capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 1 and "token" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_links_expire(orbit_stack: Any) -> None:
    short = orbit_stack(endpoint=None, env={"RADICAL_ORBIT_BRIDGE_SIGNIN_LIFETIME": "1"})
    bc = short.client()
    link = bc.explorer_link()
    assert link["expires_in"] == 1
    time.sleep(1.5)
    with PageClient(short.url) as client:
        resp = client.sign_in(link["url"])
        assert resp.status_code == 401 and "older than 1 seconds" in resp.json()["message"]
