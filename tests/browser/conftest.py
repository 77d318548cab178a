"""Fixtures of the Explorer's browser tests: Playwright's sync API driving the system
Chromium (``/usr/bin/chromium``; Playwright's own browser download is never used).

* ``browser`` (session): one Chromium for the whole run.
* ``stack`` (module): emulator + bridge + ``ep1`` as real processes.
* ``context`` / ``page`` (test): a fresh profile per test, 1280x800, with guards that
  fail the test on any console error, uncaught page error, or request to an origin
  other than the bridge's (a test that expects one says so with ``guard.allow``).

Every test here is marked ``browser``; a missing Chromium fails the run, it never skips.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from explorer_stack import ExplorerStack, explorer_stack
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
#: a loaded 2-core CI machine: wait generously for what the page shows
EXPECT_TIMEOUT_MS = 20_000

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium); .ci/run installs it", pytrace=False)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerStack]:
    with explorer_stack(tmp_path_factory.mktemp("explorer")) as st:
        yield st


@dataclass
class Guard:
    """What the page did that it must not: console errors, page errors, foreign requests."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    allowed_origins: set[str] = field(default_factory=set)
    allowed_errors: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, *, origin: str | None = None, console: str | None = None) -> None:
        """Let this test reach ``origin`` (the emulator's login page) or log ``console`` (a regex)."""
        if origin:
            self.allowed_origins.add(origin.rstrip("/"))
        if console:
            self.allowed_errors.append(re.compile(console))

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def on_page_error(self, exc: Exception) -> None:
        self.errors.append(f"page error: {exc}")

    def on_request(self, request: Request) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin != self.origin and origin not in self.allowed_origins:
            self.foreign.append(f"{request.method} {url}")

    def check(self) -> None:
        errors = [e for e in self.errors if not any(p.search(e) for p in self.allowed_errors)]
        assert not self.foreign, f"requests left the bridge's origin {self.origin}: {self.foreign}"
        assert not errors, "the page logged errors:\n" + "\n".join(errors)


@pytest.fixture
def guard(stack: ExplorerStack) -> Guard:
    return Guard(origin=stack.url)


@pytest.fixture
def context(browser: Browser, stack: ExplorerStack, guard: Guard) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
    ctx.on("request", guard.on_request)
    ctx.on("console", guard.on_console)
    ctx.on("weberror", lambda err: guard.on_page_error(err.error))
    try:
        yield ctx
    finally:
        ctx.close()
    guard.check()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, stack: ExplorerStack) -> None:
    """Open a fresh sign-in link and wait until the page shows the endpoints."""
    page.goto(stack.signin_url())
    expect(page.get_by_role("navigation", name="Endpoints").get_by_role("link", name="ep1", exact=True)).to_be_visible()


@pytest.fixture
def signed_in(page: Page, stack: ExplorerStack) -> Page:
    sign_in(page, stack)
    return page
