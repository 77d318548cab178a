"""Take the screenshots of docs/explorer.md (regenerate them after changing the page).

    .venv/bin/python tests/browser/screenshots.py [--out docs/images]

Starts the same stack as the browser tests (emulator, bridge, endpoint as processes),
stages a few transfers so the activity has something to show, and saves PNGs of the
main views at 1280x800 in Chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from chromium_guard import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, sign_in
from explorer_page import (
    choose_collection,
    connect_session,
    entry,
    go_to,
    pane,
    select,
    task_row,
)
from explorer_stack import TUTORIAL_2, ExplorerStack, explorer_stack
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright


def stage(page: Page, st: ExplorerStack, source_dir: str, names: list[str], target: str, label: str, **options: bool) -> None:
    """Transfer ``names`` from the local collection's ``source_dir`` into T2's ``target``."""
    (st.collection_dir("t2") / "home" / "dev" / target).mkdir(parents=True, exist_ok=True)
    left = pane(page, "left")
    go_to(page, "left", source_dir)
    select(left, *names)
    choose_collection(page, "right", "Tutorial Collection 2", "Globus Tutorial Collection 2")
    go_to(page, "right", f"/home/dev/{target}/")
    drawer = page.locator("details > summary").filter(has_text="Transfer options")
    if page.get_by_label("Label", exact=True).is_hidden():
        drawer.click()
    page.get_by_label("Label", exact=True).fill(label)
    for name, on in options.items():
        box = page.get_by_label(name.replace("_", " ").capitalize(), exact=True)
        box.set_checked(on)
    left.get_by_role("button", name="Transfer to right").click()
    expect(task_row(page, label)).to_be_visible()


def quiet(page: Page) -> None:
    """Dismiss the messages in the corner (they would cover the views)."""
    buttons = page.get_by_role("button", name="Dismiss message")
    for _ in range(20):
        if buttons.count() == 0:
            break
        with contextlib.suppress(PlaywrightError):  # it may fade away by itself meanwhile
            buttons.first.click(timeout=2000)
    page.mouse.move(0, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent.parent / "docs" / "images")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="explorer-shots-") as tmp, explorer_stack(Path(tmp)) as st, sync_playwright() as pw:
        # a bigger run to watch while it moves (the local collection is bandwidth-capped)
        big = st.collection_dir("local") / "home" / "dev" / "runs" / "run-43"
        for n in range(40):
            (big / "frames").mkdir(parents=True, exist_ok=True)
            (big / "frames" / f"frame-{n:03d}.h5").write_bytes(b"\0" * 250_000)
        (big / "config.yaml").write_text("steps: 4000\n")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = ctx.new_page()

            st.drop_globus_sessions()
            sign_in(page, st)
            expect(page.get_by_role("button", name="Log in with Globus")).to_be_visible()
            page.screenshot(path=str(out / "explorer-connect.png"))

            connect_session(st)
            page.reload()  # the page finds the session by itself
            expect(entry(pane(page, "left"), "runs")).to_be_visible()
            stage(page, st, "/home/dev/runs/", ["run-42"], "inputs", "run 42 inputs", verify_checksum=True)
            expect(task_row(page, "run 42 inputs")).to_contain_text("SUCCEEDED", timeout=60_000)
            fault = st.path_fault(TUTORIAL_2, "/home/dev/locked/")
            stage(page, st, "/home/dev/inbox/", ["keep.txt"], "locked", "to the locked folder")
            expect(task_row(page, "to the locked folder")).to_contain_text("PERMISSION_DENIED")
            stage(page, st, "/home/dev/runs/", ["run-43"], "campaign", "run 43 frames", verify_checksum=True)
            expect(task_row(page, "run 43 frames")).to_contain_text("files")
            go_to(page, "left", "/home/dev/runs/run-43/frames/")
            select(pane(page, "left"), "frame-000.h5", "frame-001.h5", "frame-002.h5")
            go_to(page, "right", "/home/dev/inputs/run-42/")
            page.locator("details > summary").filter(has_text="Transfer options").click()  # closed: room for the activity
            time.sleep(2.5)  # let the big run show some progress and rate
            quiet(page)
            page.screenshot(path=str(out / "explorer-transfer.png"))

            quiet(page)
            task_row(page, "to the locked folder").get_by_role("button", name="Details of to the locked folder").click()
            expect(page.get_by_role("dialog").get_by_role("table", name="Event log")).to_contain_text("PERMISSION_DENIED")
            page.screenshot(path=str(out / "explorer-task.png"))
            page.keyboard.press("Escape")
            task_row(page, "to the locked folder").get_by_role("button", name="Cancel").click()
            page.get_by_role("dialog").get_by_role("button", name="Cancel task").click()
            st.clear_path_fault(fault)

            choose_collection(page, "right", "Facility Archive", "Facility Archive (mapped)")
            expect(pane(page, "right").get_by_role("heading", name="Consent required")).to_be_visible()
            quiet(page)
            page.screenshot(path=str(out / "explorer-consent.png"))

            page.get_by_role("link", name="System").click()
            expect(page.locator("svg.spark polyline")).to_have_count(1, timeout=30_000)
            time.sleep(4)
            page.screenshot(path=str(out / "explorer-system.png"))
            ctx.close()
        finally:
            browser.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
