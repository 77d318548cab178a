"""The Explorer's shell in Chromium: signing in and out, the security headers, the
Endpoints landmark following topology events live, one event stream per page, and the
System view of an endpoint."""

from __future__ import annotations

import re

import httpx
from chromium_guard import Guard, sign_in
from explorer_stack import BRIDGE_TOKEN, ExplorerStack
from playwright.sync_api import Locator, Page, expect

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def endpoints(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Endpoints")


def test_sign_in_and_out(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    # signed out, and again after signing out: /ui/api/me answers 401 (the browser logs it)
    guard.allow(console=r"status of 401")
    url = stack.signin_url()
    assert "#signin=" in url and BRIDGE_TOKEN not in url
    page.goto(url)
    expect(endpoints(page).get_by_role("link", name="ep1", exact=True)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    assert "signin" not in page.url  # the one-time secret left the address bar at once
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["orbit_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it

    page.reload()  # the cookie keeps the page signed in
    expect(endpoints(page).get_by_role("link", name="ep1", exact=True)).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    expect(page.get_by_text("radical-orbit explorer", exact=True)).to_be_visible()
    assert page.context.cookies() == []
    page.reload()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    # the revoked cookie is refused by the bridge, not just forgotten by the browser
    resp = httpx.get(f"{stack.url}/endpoints", cookies={"orbit_session": cookies[0]["value"]}, timeout=10)
    assert resp.status_code == 401


def test_a_sign_in_link_works_once(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    guard.allow(console=r"status of 401")
    url = stack.signin_url()
    page.goto(url)
    expect(endpoints(page).get_by_role("link", name="ep1", exact=True)).to_be_visible()
    other = page.context.browser.new_context(base_url=stack.url)  # type: ignore[union-attr]
    try:
        second = other.new_page()
        second.goto(url)
        expect(second.get_by_role("heading", name="Signed out")).to_be_visible()
        expect(second.get_by_role("alert")).to_contain_text("sign-in link did not work")
    finally:
        other.close()


def test_security_headers_on_every_page_file(page: Page, stack: ExplorerStack) -> None:
    answers = []
    page.on("response", lambda resp: answers.append(resp))
    sign_in(page, stack)
    ui = [r for r in answers if "/ui/" in r.url and "/ui/api/" not in r.url]
    kinds = {r.url.rsplit(".", 1)[-1] for r in ui if "." in r.url.rsplit("/", 1)[-1]}
    assert {"js", "css", "svg"} <= kinds
    for resp in ui:
        headers = resp.all_headers()
        assert headers["content-security-policy"] == CSP, resp.url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    page_answer = next(r for r in ui if r.url.endswith("/ui/"))
    assert page_answer.all_headers()["cache-control"] == "no-store"


def test_markup_cannot_run_even_if_it_got_in(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    """The CSP itself: an inline script injected into the page does not run."""
    guard.allow(console=r"Content Security Policy")
    sign_in(page, stack)
    page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'document.body.dataset.pwned = 1';
                   document.body.appendChild(s); }"""
    )
    assert page.evaluate("document.body.dataset.pwned") is None


def test_endpoint_list_follows_the_bridge_live(signed_in: Page, stack: ExplorerStack) -> None:
    page = signed_in
    nav = endpoints(page)
    expect(nav.get_by_role("link")).to_have_count(1)
    stack.add_endpoint("ep2", plugins=("sysinfo",))
    try:
        link = nav.get_by_role("link", name="ep2", exact=True)
        expect(link).to_be_visible()  # no reload: a topology event brought it
        expect(nav.get_by_role("list", name="Plugins of ep2")).to_have_text("sysinfo")
        link.click()
        expect(page).to_have_url(re.compile(r"#/e/ep2$"))
        expect(page.get_by_role("heading", name="ep2")).to_be_visible()
        expect(page.get_by_text("does not run the globus plugin")).to_be_visible()
    finally:
        stack.stop_endpoint("ep2")
    expect(nav.get_by_role("link", name="ep2", exact=True)).to_have_count(0)
    expect(page.get_by_role("alert").filter(has_text="not connected")).to_be_visible()


def test_one_event_stream_per_page(page: Page, stack: ExplorerStack) -> None:
    streams = []
    page.on("request", lambda req: streams.append(req.url) if req.url.split("?")[0].endswith("/events") else None)
    sign_in(page, stack)
    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="Host")).to_be_visible()
    page.get_by_role("link", name="Globus").click()
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
    assert len(streams) == 1


def test_system_view(signed_in: Page) -> None:
    page = signed_in
    page.get_by_role("link", name="System").click()
    for heading in ("Host", "CPU and load", "Memory", "Disks"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    host = page.get_by_role("region", name="Host")
    expect(host).to_contain_text("Python")
    expect(host).to_contain_text("standalone host")  # no batch system here
    disks = page.get_by_role("table", name="Disks")
    expect(disks.get_by_role("row").nth(1)).to_contain_text("/")
    expect(page.get_by_text("1 min", exact=True)).to_be_visible()
    # live load notifications draw the line within a few seconds
    expect(page.locator("svg.spark polyline")).to_have_count(1, timeout=30_000)
