"""A web page of another origin, open in the browser of a signed-in Explorer user.

The browser sends the Explorer's cookie along with whatever such a page asks it to
request (as far as SameSite allows); the page cannot read answers without CORS and
cannot add custom headers without a preflight. Simulated with raw httpx requests
carrying exactly what a browser would send (``Origin``, ``Sec-Fetch-Site``, the cookie).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attacker import add_token, bearer
from conftest import module_stack
from integration.explorer_browser import PageClient, secret_of

Stack = Any
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with module_stack(tmp_path_factory) as stack:
        stack.alice = add_token(stack, "alice")
        yield stack


def link(stack: Stack) -> str:
    return str(httpx.post(f"{stack.url}/ui/api/signin-link", headers=bearer(stack.alice), timeout=10).json()["url"])


@pytest.fixture
def page(stack: Stack) -> Iterator[PageClient]:
    with PageClient(stack.url) as page:
        assert page.sign_in(link(stack)).status_code == 200
        yield page


def as_browser(stack: Stack, page: PageClient, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    """A request the browser makes on another page's behalf: the cookie, plus ``headers``."""
    return httpx.request(method, f"{stack.url}{path}", headers={"Cookie": f"orbit_session={page.cookie}", **headers}, timeout=10, **kwargs)


def test_the_cookie_is_httponly_strict_and_not_the_token(stack: Stack, page: PageClient) -> None:
    attributes = [part.strip() for part in (page.set_cookie or "").split(";")]
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes and "Path=/" in attributes
    assert page.cookie and page.cookie != stack.alice and stack.alice not in (page.set_cookie or "")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/ep1/sysinfo/register_session", {"Origin": EVIL, "X-Orbit-CSRF": "1"}),
        ("POST", "/ep1/sysinfo/register_session", {"Origin": EVIL}),
        ("POST", "/ep1/sysinfo/register_session", {}),  # a form post where no Origin is sent
        ("POST", "/ep1/sysinfo/register_session", {"Sec-Fetch-Site": "cross-site", "X-Orbit-CSRF": "1"}),
        ("DELETE", "/ep1/sysinfo/x", {"Sec-Fetch-Site": "same-site", "X-Orbit-CSRF": "1"}),  # another port of the host
        ("POST", "/ep1/sysinfo/register_session", {"Origin": "http://127.0.0.1:1", "X-Orbit-CSRF": "1"}),
        ("GET", "/events", {"Sec-Fetch-Site": "cross-site"}),
        ("GET", "/endpoints", {"Origin": EVIL}),
        ("GET", "/ep1/sysinfo/", {"Sec-Fetch-Site": "same-site"}),
    ],
    ids=["foreign-origin", "no-csrf-header", "form-post", "cross-site", "same-site", "other-port", "events", "endpoints", "relay-get"],
)
def test_another_page_cannot_use_the_cookie(stack: Stack, page: PageClient, method: str, path: str, headers: dict[str, str]) -> None:
    resp = as_browser(stack, page, method, path, headers, json={} if method == "POST" else None)
    assert resp.status_code == 403, resp.text
    assert resp.json()["details"]["reason"] == "csrf"
    assert page.get("/endpoints").status_code == 200  # the session itself is untouched


def test_no_cross_origin_reads_are_granted(stack: Stack, page: PageClient) -> None:
    """No answer carries CORS grants, preflights included: another page can never read
    what the bridge answers, with or without the cookie."""
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-orbit-csrf"}
    for method, path, headers in (
        ("OPTIONS", "/ep1/sysinfo/register_session", preflight),
        ("OPTIONS", "/events", preflight),
        ("OPTIONS", "/ui/api/session", preflight),
        ("GET", "/endpoints", {"Origin": EVIL, "Sec-Fetch-Site": "same-origin"}),
        ("GET", "/ui/", {"Origin": EVIL}),
    ):
        resp = as_browser(stack, page, method, path, headers)
        assert not any(name.lower().startswith("access-control-allow") for name in resp.headers), (path, resp.headers)


def test_another_page_cannot_sign_the_browser_in_as_someone_else(stack: Stack) -> None:
    """Login CSRF: a page holding its own sign-in secret posts it from another origin;
    refused, and the secret is not used up by the attempt."""
    mine = link(stack)
    for headers in ({"Origin": EVIL, "X-Orbit-CSRF": "1"}, {"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site", "X-Orbit-CSRF": "1"}, {}):
        resp = httpx.post(f"{stack.url}/ui/api/session", json={"secret": secret_of(mine)}, headers=headers, timeout=10)
        assert resp.status_code == 403 and "set-cookie" not in resp.headers, headers
    with PageClient(stack.url) as page:
        assert page.sign_in(mine).status_code == 200


def test_a_sign_in_secret_works_once_and_cannot_be_guessed(stack: Stack) -> None:
    once = link(stack)
    with PageClient(stack.url) as first, PageClient(stack.url) as replay, PageClient(stack.url) as guess:
        assert first.sign_in(once).status_code == 200
        assert replay.sign_in(once).status_code == 401
        assert guess.sign_in(once[:-1] + ("A" if once[-1] != "A" else "B")).status_code == 401
        assert replay.cookie is None and guess.cookie is None


def test_the_cookie_cannot_mint_links_or_reach_operator_routes(stack: Stack, page: PageClient) -> None:
    """A browser session cannot extend itself (sign-in links need the bearer token) nor
    use routes outside the Explorer's (the API description among them)."""
    assert page.post("/ui/api/signin-link").status_code == 401
    for path in ("/openapi.json", "/docs"):
        assert page.get(path).status_code in (403, 404), path


def test_a_signed_out_cookie_is_dead(stack: Stack, page: PageClient) -> None:
    cookie = page.cookie
    assert page.post("/ui/api/signout").status_code == 200
    for path in ("/endpoints", "/events", "/ep1/sysinfo/", "/ui/api/me"):
        resp = httpx.get(f"{stack.url}{path}", headers={"Cookie": f"orbit_session={cookie}", "Sec-Fetch-Site": "same-origin"}, timeout=10)
        assert resp.status_code == 401, path


def test_the_explorer_cannot_be_framed_or_fed_outside_code(stack: Stack) -> None:
    resp = httpx.get(f"{stack.url}/ui/", timeout=10)
    csp = resp.headers["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert rule in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert resp.headers["x-frame-options"] == "DENY" and resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
