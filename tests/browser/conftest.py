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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_guard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPECT_TIMEOUT_MS,
    VIEWPORT,
    Guard,
    sign_in,
)
from explorer_stack import ExplorerStack, explorer_stack
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests here ``browser``, and run the ones that drive Chromium last.

    While Playwright's sync API is started, its asyncio loop stays the running loop of
    the main thread, so a later test's ``asyncio.run()`` fails ("cannot be called from a
    running event loop"; microsoft/playwright-pytest#167). The browser lives for the
    whole session (one launch), so nothing may run after it starts.
    """
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium); .ci/run installs it", pytrace=False)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerStack]:
    with explorer_stack(tmp_path_factory.mktemp("explorer")) as st:
        yield st


@pytest.fixture
def guard(stack: ExplorerStack) -> Guard:
    return Guard(origin=stack.url)


@pytest.fixture
def context(request: pytest.FixtureRequest, browser: Browser, stack: ExplorerStack, guard: Guard) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=stack.url)
    ctx.on("request", guard.on_request)
    ctx.on("console", guard.on_console)
    ctx.on("weberror", lambda err: guard.on_page_error(err.error))
    try:
        yield ctx
    finally:
        ctx.close()
        if request.node.stash.get(FAILED, False):
            print(stack.logs_tail())  # shown with the failure report
    guard.check()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def signed_in(page: Page, stack: ExplorerStack) -> Page:
    sign_in(page, stack)
    return page
