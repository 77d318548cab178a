"""The browser the Explorer's tests drive, and the guards every page runs under.

Playwright's sync API on the system Chromium (``/usr/bin/chromium``, Debian's package);
Playwright's own browser download is never used. Shared by ``conftest.py`` and the
screenshot script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from explorer_stack import ExplorerStack
from playwright.sync_api import ConsoleMessage, Page, Request, expect

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


def sign_in(page: Page, stack: ExplorerStack) -> None:
    """Open a fresh sign-in link and wait until the page shows the endpoints."""
    page.goto(stack.signin_url())
    expect(page.get_by_role("navigation", name="Endpoints").get_by_role("link", name="ep1", exact=True)).to_be_visible()
