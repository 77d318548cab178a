"""The Explorer's Globus panel in Chromium against the emulator, a bridge and an
endpoint (real processes): connecting with each credential kind and with "Log in with
Globus", browsing both panes, transfers seen live, faults, cancel, file operations,
reloads, keyboard-only use, and what must never be on the page (tokens, live markup).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chromium_guard import Guard, sign_in
from explorer_page import (
    activity,
    choose_collection,
    entry,
    go_to,
    open_connected,
    pane,
    record_row_texts,
    row_texts,
    select,
    task_row,
)
from explorer_stack import (
    BRIDGE_TOKEN,
    HOSTILE_NAME,
    HTML_NAME,
    LOCAL,
    MAPPED,
    TUTORIAL_1,
    TUTORIAL_2,
    ExplorerStack,
    unique,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.timeout(180)


def t2_dir(stack: ExplorerStack, name: str) -> Path:
    """A fresh folder in Tutorial Collection 2's home (the emulator serves the disk as it is)."""
    path = stack.collection_dir("t2") / "home" / "dev" / name
    path.mkdir(parents=True)
    return path


# -- connecting ------------------------------------------------------------------------
def fill_and_connect(page: Page, **fields: str) -> None:
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Connect", exact=True).click()


def credential_fields(page: Page) -> list[str]:
    return [page.get_by_label(name, exact=True).input_value() for name in ("Access token", "Refresh token", "Client ID", "Client secret", "Local collection")]


@pytest.mark.parametrize("kind", ["access_token", "refresh_token", "client_credentials"])
def test_connect_with_each_credential_kind(page: Page, stack: ExplorerStack, kind: str) -> None:
    stack.drop_globus_sessions()
    sign_in(page, stack)
    expect(page.get_by_role("button", name="Log in with Globus")).to_be_visible()
    secrets: list[str]
    if kind == "access_token":
        tok = stack.token()
        secrets = [tok["access_token"]]
        fill_and_connect(page, **{"Access token": tok["access_token"]})
        expected = "an access token"
    elif kind == "refresh_token":
        tok = stack.token(refresh=True)
        secrets = [tok["refresh_token"]]
        fill_and_connect(page, **{"Refresh token": tok["refresh_token"], "Client ID": tok["client_id"], "Local collection": LOCAL})
        expected = "a refresh token"
    else:
        client = stack.new_client()
        secrets = [client["client_secret"]]
        fill_and_connect(page, **{"Client ID": client["client_id"], "Client secret": client["client_secret"]})
        expected = "client credentials"
    expect(page.get_by_text(f"Connected to Globus with {expected}")).to_be_visible()
    expect(entry(pane(page, "left"), "runs")).to_be_visible()  # the local collection, listed
    modes = [s["auth_mode"] for s in stack.relay("sessions", {})["sessions"]]
    assert modes == [kind]
    assert_no_secret_in_browser(page, [*secrets, BRIDGE_TOKEN])


def test_a_refused_credential_is_explained_and_cleared(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    guard.allow(console=r"status of 401")
    stack.drop_globus_sessions()
    sign_in(page, stack)
    # nothing sent yet: a missing client id is named and the fields stay for fixing
    fill_and_connect(page, **{"Refresh token": "Agxyz-not-a-real-token"})
    expect(page.get_by_role("alert")).to_contain_text("needs the Client ID")
    assert credential_fields(page)[1] == "Agxyz-not-a-real-token"
    fill_and_connect(page, **{"Access token": "", "Refresh token": "", "Client ID": "", "Client secret": ""})
    fill_and_connect(page, **{"Access token": "AgWrongAccessToken"})
    expect(page.get_by_role("alert")).to_contain_text("Globus did not accept it")
    assert credential_fields(page) == ["", "", "", "", ""]


def test_log_in_with_globus(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    assert stack.emulator is not None and stack.emulator.url
    guard.allow(origin=stack.emulator.url)  # the browser visits "Globus Auth" (the emulator)
    stack.drop_globus_sessions()
    sign_in(page, stack)
    page.get_by_role("button", name="Log in with Globus").click()
    page.wait_for_url(f"{stack.emulator.url}/**")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"/ui/#/e/ep1$"))
    expect(page.get_by_text("Connected to Globus with a refresh token")).to_be_visible()
    expect(entry(pane(page, "left"), "runs")).to_be_visible()
    assert "code=" not in page.url
    assert [s["auth_mode"] for s in stack.relay("sessions", {})["sessions"]] == ["refresh_token"]
    assert_no_secret_in_browser(page, [BRIDGE_TOKEN])


def test_consent_required_starts_the_login_that_grants_it(page: Page, stack: ExplorerStack, guard: Guard) -> None:
    assert stack.emulator is not None and stack.emulator.url
    guard.allow(origin=stack.emulator.url, console=r"status of 401")
    open_connected(page, stack)
    choose_collection(page, "right", "Facility Archive", "Facility Archive (mapped)")
    right = pane(page, "right")
    expect(right.get_by_role("heading", name="Consent required")).to_be_visible()
    expect(right.get_by_role("alert")).to_contain_text(f"https://auth.globus.org/scopes/{MAPPED}/data_access")
    right.get_by_role("button", name="Grant consent").click()
    page.wait_for_url(f"{stack.emulator.url}/**")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"/ui/#/e/ep1$"))
    expect(page.get_by_text("Connected to Globus with a refresh token")).to_be_visible()
    choose_collection(page, "right", "Facility Archive", "Facility Archive (mapped)")
    expect(entry(pane(page, "right"), "archive")).to_be_visible()


# -- secrets and markup ----------------------------------------------------------------
def assert_no_secret_in_browser(page: Page, secrets: list[str]) -> None:
    """No credential in storage, cookies, the DOM or any field's value."""
    found = page.evaluate(
        """async (secrets) => {
            const places = {
              localStorage: JSON.stringify({...localStorage}),
              sessionStorage: JSON.stringify({...sessionStorage}),
              cookie: document.cookie,
              dom: document.documentElement.outerHTML,
              values: [...document.querySelectorAll('input, textarea, select')].map((e) => e.value).join('\\n'),
              title: document.title,
              url: location.href,
            };
            const dbs = indexedDB.databases ? await indexedDB.databases() : [];
            places.indexedDB = JSON.stringify(dbs);
            return Object.entries(places).filter(([, text]) => secrets.some((s) => text.includes(s))).map(([k]) => k);
        }""",
        secrets,
    )
    assert found == [], f"a credential is in the browser: {found}"
    for cookie in page.context.cookies():
        assert not any(s in cookie["value"] for s in secrets)
    storage = page.context.storage_state()
    assert not any(s in str(storage) for s in secrets)


def test_markup_in_collection_and_file_names_shows_as_text(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    right = pane(page, "right")
    field = right.get_by_label("Collection", exact=True)
    field.click()
    field.fill("Evil")
    option = page.get_by_role("option").filter(has_text="<i>Evil</i>")
    expect(option).to_contain_text(HOSTILE_NAME)
    option.click()
    expect(field).to_have_value(HOSTILE_NAME)
    row = entry(right, HTML_NAME)
    expect(row).to_be_visible()
    expect(row).to_contain_text(HTML_NAME)
    expect(right.get_by_role("navigation")).to_contain_text(HOSTILE_NAME)  # breadcrumb
    assert page.locator("main img, main script, main b, main i").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


# -- browsing and transfers ------------------------------------------------------------
def test_browse_both_panes(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    left, right = pane(page, "left"), pane(page, "right")
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/dev/")
    entry(left, "runs").dblclick()
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/dev/runs/")
    entry(left, "run-42").get_by_text("run-42").click()  # a folder's name opens it
    expect(entry(left, "part-00.dat")).to_be_visible()
    expect(left.get_by_role("row")).to_have_count(1 + 7)  # header + 6 parts + notes/
    # folders first; sort by size, largest first, with two clicks
    expect(left.get_by_role("row").nth(1)).to_have_accessible_name("notes")
    left.get_by_role("button", name="Size").click()
    left.get_by_role("button", name="Size").click()
    expect(left.get_by_role("columnheader", name="Size")).to_have_attribute("aria-sort", "descending")
    left.get_by_role("button", name="Up one folder").click()
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/dev/runs/")
    left.get_by_role("navigation").get_by_role("button", name="home").click()
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/")

    # a pasted collection id opens at once and then shows the collection's name
    field = right.get_by_label("Collection", exact=True)
    field.fill(TUTORIAL_1)
    field.press("Enter")
    expect(right.get_by_label("Path", exact=True)).to_have_value("/home/dev/")
    expect(field).to_have_value("Globus Tutorial Collection 1")
    go_to(page, "right", "/home/dev/share/godata/")
    for name in ("file1.txt", "file2.txt", "file3.txt"):
        expect(entry(right, name)).to_be_visible()
    select(right, "file1.txt", "file3.txt")
    expect(right.get_by_text("2 of 3 selected")).to_be_visible()
    expect(right.get_by_role("button", name="Transfer to left")).to_be_enabled()
    # the collection just used is offered again as a recent one
    field = left.get_by_label("Collection", exact=True)
    field.click()
    expect(page.get_by_role("group", name="Recent").get_by_role("option", name=re.compile("Tutorial Collection 1"))).to_be_visible()
    field.press("Escape")


def test_recursive_transfer_is_seen_active_then_succeeded(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    target = unique("stage")
    dest = t2_dir(stack, target)
    left, right = pane(page, "left"), pane(page, "right")
    entry(left, "runs").dblclick()
    select(left, "run-42")
    choose_collection(page, "right", "Tutorial Collection 2", "Globus Tutorial Collection 2")
    go_to(page, "right", f"/home/dev/{target}/")
    label = f"stage run 42 {target}"
    page.get_by_text("Transfer options").click()
    page.get_by_label("Label", exact=True).fill(label)
    page.get_by_label("Sync level", exact=True).select_option("checksum")
    expect(page.get_by_label("Verify checksum", exact=True)).to_be_checked()
    record_row_texts(page, label)
    left.get_by_role("button", name="Transfer to right").click()
    row = task_row(page, label)
    expect(row).to_contain_text("SUCCEEDED", timeout=60_000)
    expect(row).to_contain_text("7 / 7 files")
    expect(row).to_contain_text("1.20 MB")
    texts = row_texts(page)
    assert any("ACTIVE" in t for t in texts), texts
    moving = [t for t in texts if "ACTIVE" in t and re.search(r"[1-9][\d.]* [kM]B", t)]
    assert moving, f"no progress was shown while ACTIVE: {texts}"
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    # the destination pane refreshed by itself when the task ended
    expect(entry(right, "run-42")).to_be_visible()
    assert (dest / "run-42" / "notes" / "README.txt").read_text() == "inputs of run 42\n"
    # the detail view: facts, the event log
    row.get_by_role("button", name=f"Details of {label}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("checksum")
    expect(dialog.get_by_role("table", name="Event log")).to_contain_text("SUCCEEDED")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_fault_shown_while_active_and_cancel_with_confirmation(page: Page, stack: ExplorerStack) -> None:
    page.clock.install()  # the page's clock, so "stalled" can be seen without waiting minutes
    open_connected(page, stack)
    target = unique("locked")
    t2_dir(stack, target)
    fault = stack.path_fault(TUTORIAL_2, f"/home/dev/{target}/")
    try:
        left = pane(page, "left")
        entry(left, "inbox").dblclick()
        select(left, "keep.txt")
        choose_collection(page, "right", "Tutorial Collection 2", "Globus Tutorial Collection 2")
        go_to(page, "right", f"/home/dev/{target}/")
        page.get_by_text("Transfer options").click()
        label = f"locked {target}"
        page.get_by_label("Label", exact=True).fill(label)
        left.get_by_role("button", name="Transfer to right").click()
        row = task_row(page, label)
        expect(row).to_contain_text("PERMISSION_DENIED")
        expect(row).to_contain_text("ACTIVE")  # Globus keeps retrying: still active, with the fault shown
        expect(row).not_to_contain_text("stalled")
        page.clock.fast_forward("03:00")
        expect(row).to_contain_text("stalled: no progress for 3 min")

        row.get_by_role("button", name="Cancel").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(label)
        dialog.get_by_role("button", name="Keep running").click()
        expect(row).to_contain_text("ACTIVE")

        row.get_by_role("button", name="Cancel").click()
        page.get_by_role("dialog").get_by_role("button", name="Cancel task").click()
        expect(row).to_contain_text("FAILED")
        expect(row).to_contain_text("CANCELED")
        activity(page).get_by_role("tab", name=re.compile("Failed")).click()
        expect(task_row(page, label)).to_be_visible()
        activity(page).get_by_role("tab", name=re.compile("Succeeded")).click()
        expect(task_row(page, label)).to_have_count(0)
    finally:
        stack.clear_path_fault(fault)


def test_new_folder_rename_and_delete(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    target = unique("ops")
    home = t2_dir(stack, target)
    choose_collection(page, "right", "Tutorial Collection 2", "Globus Tutorial Collection 2")
    go_to(page, "right", f"/home/dev/{target}/")
    right = pane(page, "right")
    expect(right.get_by_text("This folder is empty.")).to_be_visible()

    right.get_by_role("button", name="New folder").click()
    page.get_by_role("dialog").get_by_label("Folder name").fill("results")
    page.get_by_role("dialog").get_by_role("button", name="Create").click()
    expect(entry(right, "results")).to_be_visible()
    assert (home / "results").is_dir()

    right.get_by_role("button", name="Rename").click()  # the new folder is selected
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New name").fill("results-v2")
    dialog.get_by_role("button", name="Rename").click()
    expect(entry(right, "results-v2")).to_be_visible()
    expect(entry(right, "results")).to_have_count(0)

    right.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("results-v2")
    dialog.get_by_role("button", name="Delete").click()
    row = task_row(page, "Delete results-v2")
    expect(row).to_contain_text("SUCCEEDED")
    expect(entry(right, "results-v2")).to_have_count(0)  # refreshed when the delete task ended
    assert not (home / "results-v2").exists()


def test_reload_and_another_browser_keep_the_activity(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    target = unique("again")
    t2_dir(stack, target)
    left = pane(page, "left")
    entry(left, "inbox").dblclick()
    select(left, "keep.txt")
    choose_collection(page, "right", "Tutorial Collection 2", "Globus Tutorial Collection 2")
    go_to(page, "right", f"/home/dev/{target}/")
    page.get_by_text("Transfer options").click()
    label = f"kept {target}"
    page.get_by_label("Label", exact=True).fill(label)
    left.get_by_role("button", name="Transfer to right").click()
    expect(task_row(page, label)).to_contain_text("SUCCEEDED")

    page.reload()
    expect(task_row(page, label)).to_contain_text("SUCCEEDED")
    assert page.get_by_label("Access token", exact=True).count() == 0  # no credential asked again

    other = page.context.browser.new_context(base_url=stack.url)  # type: ignore[union-attr]
    try:
        second = other.new_page()
        sign_in(second, stack)
        expect(task_row(second, label)).to_contain_text("SUCCEEDED")
    finally:
        other.close()


def test_keyboard_only(page: Page, stack: ExplorerStack) -> None:
    open_connected(page, stack)
    left = pane(page, "left")
    # pick a collection with the keyboard: type, arrow to the option, Enter
    field = pane(page, "right").get_by_label("Collection", exact=True)
    field.focus()
    page.keyboard.type("Tutorial Collection 1")
    expect(page.get_by_role("option", name=re.compile("Tutorial Collection 1"))).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(field).to_have_value("Globus Tutorial Collection 1")
    # rows: Tab reaches the list; arrows move; Enter opens a folder; Space selects
    left.get_by_role("button", name="Refresh").focus()
    page.keyboard.press("Tab")  # the "Select all" box
    page.keyboard.press("Tab")  # first column header
    for _ in range(3):
        page.keyboard.press("Tab")
    expect(entry(left, "inbox")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(entry(left, "runs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/dev/runs/")
    expect(entry(left, "run-42")).to_be_focused()  # the new listing takes the focus
    page.keyboard.press("Space")
    expect(entry(left, "run-42")).to_have_attribute("aria-selected", "true")
    expect(left.get_by_text("1 of 1 selected")).to_be_visible()
    # Delete asks first; Escape closes the dialog and deletes nothing
    page.keyboard.press("Delete")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(entry(left, "run-42")).to_be_focused()
    # Backspace goes up; the options drawer opens with Enter on its summary
    page.keyboard.press("Backspace")
    expect(left.get_by_label("Path", exact=True)).to_have_value("/home/dev/")
    expect(entry(left, "inbox")).to_be_focused()
    page.locator("details > summary").filter(has_text="Transfer options").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Sync level", exact=True)).to_be_visible()


def test_an_endpoint_restart_is_noticed(page: Page, stack: ExplorerStack) -> None:
    """Last in this module: it restarts ep1 (its Globus sessions die with the process)."""
    open_connected(page, stack)
    stack.stop_endpoint("ep1")
    expect(page.get_by_role("alert").filter(has_text="ep1 is not connected")).to_be_visible()
    stack.add_endpoint("ep1")
    expect(page.get_by_role("alert").filter(has_text="Globus session on this endpoint has ended")).to_be_visible()
    expect(page.get_by_role("button", name="Log in with Globus")).to_be_visible()
