"""What the browser tests do on the Explorer, named as a person would say it.

Everything goes through accessible names (the page's interface for tests and assistive
tools alike): regions "Left pane" / "Right pane", fields "Collection" and "Path",
rows named by entry name, the "Activity" region.
"""

from __future__ import annotations

import re
from typing import Any

from chromium_guard import sign_in
from explorer_stack import ExplorerStack
from playwright.sync_api import Locator, Page, expect


def pane(page: Page, side: str) -> Locator:
    return page.get_by_role("region", name=f"{side.capitalize()} pane")


def activity(page: Page) -> Locator:
    return page.get_by_role("region", name="Activity")


def task_row(page: Page, label: str) -> Locator:
    return activity(page).get_by_role("row").filter(has_text=label)


def entry(p: Locator, name: str) -> Locator:
    return p.get_by_role("row", name=name, exact=True)


def choose_collection(page: Page, side: str, text: str, option: str | None = None) -> None:
    """Type into the pane's Collection field and pick the matching option."""
    p = pane(page, side)
    field = p.get_by_label("Collection", exact=True)
    field.click()
    field.fill(text)
    page.get_by_role("option", name=re.compile(re.escape(option or text))).first.click()
    expect(field).to_have_value(option or text)


def go_to(page: Page, side: str, path: str) -> None:
    p = pane(page, side)
    field = p.get_by_label("Path", exact=True)
    field.fill(path)
    field.press("Enter")
    expect(field).to_have_value(path)


def select(p: Locator, *names: str) -> None:
    for name in names:
        entry(p, name).get_by_role("checkbox").check()


def connect_session(stack: ExplorerStack, **credential: Any) -> str:
    """Open a Globus session on ep1 for the page's identity (default: a refresh token)."""
    stack.drop_globus_sessions()
    if not credential:
        tok = stack.token(refresh=True)
        credential = {"refresh_token": tok["refresh_token"], "client_id": tok["client_id"]}
    return str(stack.relay("register_session", credential)["sid"])


def open_connected(page: Page, stack: ExplorerStack) -> None:
    """Sign in with a Globus session already open: the page finds it by itself."""
    connect_session(stack)
    sign_in(page, stack)
    expect(page.get_by_text("Connected to Globus")).to_be_visible()
    expect(entry(pane(page, "left"), "runs")).to_be_visible()


def record_row_texts(page: Page, label: str) -> None:
    """From now on, keep every text the task row shows (to see transient states)."""
    page.evaluate(
        """(label) => {
            window.__rowTexts = [];
            const look = () => {
              for (const tr of document.querySelectorAll('[data-task]')) {
                if (tr.textContent.includes(label)) window.__rowTexts.push(tr.textContent);
              }
            };
            new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
            look();
        }""",
        label,
    )


def row_texts(page: Page) -> list[str]:
    return list(page.evaluate("window.__rowTexts || []"))
