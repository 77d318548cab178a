"""Transfer and delete tasks through the real SDK: bytes, sync levels, options, task docs."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_emu_helpers import make_tree, md5, root_of

from radical.orbit.emulators.globus import RunningEmulator


def run(tc: globus_sdk.TransferClient, data: globus_sdk.TransferData | globus_sdk.DeleteData, timeout: int = 20) -> dict[str, Any]:
    """Submit and poll get_task until the task is no longer ACTIVE (task_wait has a 1 s floor)."""
    res = tc.submit_transfer(data) if isinstance(data, globus_sdk.TransferData) else tc.submit_delete(data)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = tc.get_task(res["task_id"])
        if doc["status"] != "ACTIVE":
            return dict(doc.data)
        time.sleep(0.02)
    raise AssertionError(f"task {res['task_id']} still ACTIVE after {timeout} s")


def run_wait(tc: globus_sdk.TransferClient, tid: str, timeout: float = 10) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = tc.get_task(tid)
        if doc["status"] != "ACTIVE":
            return dict(doc.data)
        time.sleep(0.02)
    raise AssertionError(f"task {tid} still ACTIVE after {timeout} s")


@pytest.fixture
def area(emu: RunningEmulator, request: pytest.FixtureRequest) -> tuple[str, Path, str]:
    """(local collection id, its root on disk, a fresh Globus dir name for this test)."""
    name = f"/t_{request.node.name.replace('[', '_').replace(']', '')[:40]}_{uuid.uuid4().hex[:6]}"
    return emu.local_collection, root_of(emu, emu.local_collection), name


MIXED = {
    "a.bin": os.urandom(300_000),
    "empty": b"",
    "sub": {"b.txt": "hello\n", "deep": {"c.bin": os.urandom(70_000)}, "skip.tmp": "tmp"},
    ".dot": "hidden",
}


class TestTransfer:
    def test_recursive_copy_is_byte_identical(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:] / "src", MIXED)
        td = globus_sdk.TransferData(ep, ep, label="mixed tree", verify_checksum=True, preserve_timestamp=True)
        td.add_item(f"{d}/src/", f"{d}/dst/", recursive=True)
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and task["label"] == "mixed tree"
        src_files = sorted(p.relative_to(root / d[1:] / "src") for p in (root / d[1:] / "src").rglob("*") if p.is_file())
        assert len(src_files) == 6
        for rel in src_files:
            s, t = root / d[1:] / "src" / rel, root / d[1:] / "dst" / rel
            assert md5(s) == md5(t), rel
            assert int(s.stat().st_mtime) == int(t.stat().st_mtime)
        assert task["files"] == 6 and task["files_transferred"] == 6 and task["files_skipped"] == 0
        assert task["directories"] == 3
        assert task["bytes_transferred"] == sum((root / d[1:] / "src" / r).stat().st_size for r in src_files)
        assert task["subtasks_total"] == task["subtasks_succeeded"] == 7 and task["subtasks_pending"] == 0
        assert task["completion_time"] and task["fatal_error"] is None and task["nice_status"] is None
        assert task["verify_checksum"] is True and task["preserve_timestamp"] is True and task["type"] == "TRANSFER"
        ok = list(tc.paginated.task_successful_transfers(task["task_id"]).items())
        assert len(ok) == 6 and all(x["checksum_algorithm"] == "MD5" and len(x["checksum"]) == 32 for x in ok)

    def test_single_file_auto_detected_and_parent_created(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"one.txt": "1"})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/one.txt", f"{d}/new/parent/one.txt")
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and (root / d[1:] / "new/parent/one.txt").read_text() == "1"
        assert task["subtasks_total"] == 2

    def test_sync_levels_skip_exactly_what_they_should(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        base = root / d[1:]
        make_tree(base / "src", {"same": "same", "missing": "m", "size": "longer", "older": "old!", "newer": "new!", "content": "AAAA"})
        make_tree(base / "dst", {"same": "same", "size": "short", "older": "old!", "newer": "new!", "content": "BBBB"})
        now = time.time()
        os.utime(base / "src/older", (now - 100, now - 100))
        os.utime(base / "dst/older", (now, now))  # destination newer -> mtime skips
        os.utime(base / "src/newer", (now, now))
        os.utime(base / "dst/newer", (now - 100, now - 100))  # source newer -> mtime copies
        for name in ("same", "content", "size", "missing"):
            os.utime(base / "src" / name, (now - 50, now - 50))
            if (base / "dst" / name).exists():
                os.utime(base / "dst" / name, (now, now))

        def copied(level: str) -> set[str]:
            td = globus_sdk.TransferData(ep, ep, sync_level=level)
            td.add_item(f"{d}/src/", f"{d}/dst_{level}/", recursive=True)
            # each level starts from the same destination state
            make_tree(base / f"dst_{level}", {})
            for p in (base / "dst").iterdir():
                (base / f"dst_{level}" / p.name).write_bytes(p.read_bytes())
                st = p.stat()
                os.utime(base / f"dst_{level}" / p.name, (st.st_atime, st.st_mtime))
            task = run(tc, td)
            assert task["status"] == "SUCCEEDED"
            ok = tc.task_successful_transfers(task["task_id"])
            names = {os.path.basename(x["destination_path"]) for x in ok["DATA"]}
            assert task["files_skipped"] + task["files_transferred"] == task["files"] == 6
            if level == "checksum":
                assert task["bytes_checksummed"] > 0
            return names

        assert copied("exists") == {"missing"}
        assert copied("size") == {"missing", "size"}
        assert copied("mtime") == {"missing", "newer"}
        assert copied("checksum") == {"missing", "size", "content"}

    def test_filter_rules_and_delete_destination_extra(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        base = root / d[1:]
        make_tree(base / "src", MIXED)
        make_tree(base / "dst", {"extra.txt": "x", "olddir": {"f": "f"}, "keep.tmp": "excluded names are kept"})
        td = globus_sdk.TransferData(ep, ep, delete_destination_extra=True)
        td.add_filter_rule("*.tmp", method="exclude", type="file")
        td.add_filter_rule("deep", method="exclude", type="dir")
        td.add_item(f"{d}/src/", f"{d}/dst/", recursive=True)
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED"
        assert task["filter_rules"] and task["filter_rules"][0]["name"] == "*.tmp"
        got = sorted(str(p.relative_to(base / "dst")) for p in (base / "dst").rglob("*"))
        assert got == [".dot", "a.bin", "empty", "keep.tmp", "sub", "sub/b.txt"]

    def test_destination_inside_source_and_onto_a_file(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:] / "src", {"f": "f", "sub": {"g": "g"}})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/src/", f"{d}/src/backup/", recursive=True)
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and task["files_transferred"] == 2
        assert sorted(str(p.relative_to(root / d[1:])) for p in (root / d[1:]).rglob("*") if p.is_file()) == [
            "src/backup/f",
            "src/backup/sub/g",
            "src/f",
            "src/sub/g",
        ]
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/src/", f"{d}/src/f/", recursive=True)
        task = run(tc, td)
        assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "NOT_A_DIRECTORY"
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/src/f", f"{d}/src/f")
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and (root / d[1:] / "src/f").read_text() == "f"

    def test_symlink_items(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"target.txt": "t"})
        os.symlink("target.txt", root / d[1:] / "link")
        td = globus_sdk.TransferData(ep, ep)
        td["DATA"].append({"DATA_TYPE": "transfer_symlink_item", "source_path": f"{d}/link", "destination_path": f"{d}/out/link"})
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and task["symlinks"] == 1
        assert os.readlink(root / d[1:] / "out/link") == "target.txt"
        td = globus_sdk.TransferData(ep, ep)
        td["DATA"].append({"DATA_TYPE": "transfer_symlink_item", "source_path": f"{d}/target.txt", "destination_path": f"{d}/out/other"})
        task = run(tc, td)
        assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "NOT_A_SYMLINK"

    def test_submission_id_is_idempotent(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        sid = tc.get_submission_id()["value"]
        td = globus_sdk.TransferData(ep, ep, submission_id=sid)
        td.add_item(f"{d}/f", f"{d}/g")
        first = tc.submit_transfer(td)
        again = tc.submit_transfer(td)
        assert first.http_status == 202 and first["code"] == "Accepted"
        assert again.http_status == 200 and again["code"] == "Duplicate"
        assert again["task_id"] == first["task_id"] and again["submission_id"] == sid

    def test_missing_source_fails_or_is_skipped(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"real": "r"})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/ghost", f"{d}/out/ghost")
        task = run(tc, td)
        assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "FILE_NOT_FOUND"
        # regression: event details named the emulator's host folder instead of the Globus path
        details = " ".join(str(ev.get("details")) for ev in tc.task_event_list(task["task_id"]))
        assert str(root) not in details and f"{d}/ghost" in details
        td = globus_sdk.TransferData(ep, ep, skip_source_errors=True)
        td.add_item(f"{d}/ghost", f"{d}/out/ghost")
        td.add_item(f"{d}/real", f"{d}/out/real")
        task = run(tc, td)
        assert task["status"] == "SUCCEEDED" and task["subtasks_skipped_errors"] == 1 and task["files_transferred"] == 1
        assert task["subtasks_total"] == task["subtasks_succeeded"] + task["subtasks_skipped_errors"] and task["subtasks_pending"] == 0
        skipped = list(tc.paginated.task_skipped_errors(task["task_id"]).items())
        assert [(s["error_code"], s["source_path"]) for s in skipped] == [("FILE_NOT_FOUND", f"{d}/ghost")]
        assert skipped[0]["DATA_TYPE"] == "skipped_error"

    def test_no_items_and_bad_deadline(self, tc: globus_sdk.TransferClient, local: str) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(globus_sdk.TransferData(local, local))
        assert info.value.http_status == 400 and info.value.code == "ClientError.BadRequest.NoTransferItems"
        td = globus_sdk.TransferData(local, local, deadline="2001-01-01T00:00:00Z")
        td.add_item("/a", "/b")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(td)
        assert info.value.http_status == 400

    def test_cancel_ends_as_a_user_cancel(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"big": os.urandom(2_000_000)})
        emu.admin("PATCH", "faults", json={"bandwidth": {ep: 200_000}})
        try:
            td = globus_sdk.TransferData(ep, ep, label="to cancel")
            td.add_item(f"{d}/big", f"{d}/copy")
            tid = tc.submit_transfer(td)["task_id"]
            deadline = time.time() + 5
            while tc.get_task(tid)["bytes_transferred"] == 0 and time.time() < deadline:
                time.sleep(0.05)
            live = tc.get_task(tid)
            assert live["status"] == "ACTIVE" and live["nice_status"] == "OK" and live["is_ok"] is True
            assert 0 < live["bytes_transferred"] < 2_000_000 and live["completion_time"] is None
            resp = tc.cancel_task(tid)
            assert resp["code"] == "Canceled" and resp["DATA_TYPE"] == "result"
            task = tc.get_task(tid)
            assert task["status"] == "FAILED" and task["fatal_error"] == {"code": "CANCELED", "description": "canceled"}
            assert task["nice_status"] is None and task["canceled_by_admin"] is None and task["subtasks_canceled"] >= 1
            newest = tc.task_event_list(tid, limit=1)["DATA"][0]
            assert newest["code"] == "CANCELED" and newest["is_error"] is True and newest["details"] == "Canceled by the task owner"
            assert tc.cancel_task(tid)["code"] == "TaskComplete"
        finally:
            emu.admin("PATCH", "faults", json={"bandwidth": {}})

    def test_deadline_expires(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        fault = emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/f", "kind": "permission"})
        try:
            soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
            td = globus_sdk.TransferData(ep, ep, deadline=soon)
            td.add_item(f"{d}/f", f"{d}/g")
            task = run(tc, td, timeout=10)
            assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "EXPIRED" and task["subtasks_expired"] >= 1
        finally:
            emu.admin("DELETE", f"faults/paths/{fault['id']}")

    def test_update_task_while_active(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        fault = emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/f", "kind": "permission"})
        try:
            td = globus_sdk.TransferData(ep, ep, label="before")
            td.add_item(f"{d}/f", f"{d}/g")
            tid = tc.submit_transfer(td)["task_id"]
            resp = tc.update_task(tid, {"DATA_TYPE": "task", "label": "after", "deadline": "2099-01-02 03:04:05"})
            assert resp["code"] == "Updated"
            doc = tc.get_task(tid)
            assert doc["label"] == "after" and doc["deadline"] == "2099-01-02T03:04:05+00:00"
        finally:
            emu.admin("DELETE", f"faults/paths/{fault['id']}")
        assert run_wait(tc, tid)["status"] == "SUCCEEDED"

    def test_update_task_label_and_conflict(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        td = globus_sdk.TransferData(ep, ep, label="before")
        td.add_item(f"{d}/f", f"{d}/g")
        task = run(tc, td)
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.update_task(task["task_id"], {"DATA_TYPE": "task", "label": "after"})
        assert info.value.http_status == 409 and info.value.code == "Conflict"
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.get_task(str(uuid.uuid4()))
        assert info.value.http_status == 404 and info.value.code == "TaskNotFound"


class TestDelete:
    def test_recursive_delete_globs_and_missing(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"tree": MIXED, "x1.log": "1", "x2.log": "2", "keep.txt": "k"})
        dd = globus_sdk.DeleteData(endpoint=ep, recursive=True, interpret_globs=True, ignore_missing=True, label="cleanup")
        dd.add_item(f"{d}/tree")
        dd.add_item(f"{d}/x*.log")
        dd.add_item(f"{d}/not-there")
        task = run(tc, dd)
        assert task["status"] == "SUCCEEDED" and task["type"] == "DELETE" and task["label"] == "cleanup"
        assert sorted(p.name for p in (root / d[1:]).iterdir()) == ["keep.txt"]
        assert task["files"] == 8 and task["bytes_transferred"] == 0 and task["destination_endpoint_id"] is None
        assert task["source_endpoint_id"] == ep and task["effective_bytes_per_second"] == 0

    def test_missing_path_fails_and_dir_needs_recursive(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"dir": {"f": "f"}})
        dd = globus_sdk.DeleteData(endpoint=ep)
        dd.add_item(f"{d}/nope")
        task = run(tc, dd)
        assert task["status"] == "FAILED" and task["fatal_error"] == {"code": "FILE_NOT_FOUND", "description": "file not found"}
        assert task["faults"] == 1
        dd = globus_sdk.DeleteData(endpoint=ep)
        dd.add_item(f"{d}/dir")
        assert run(tc, dd)["status"] == "FAILED"
        assert (root / d[1:] / "dir/f").exists()

    def test_delete_escape_is_refused(self, tc: globus_sdk.TransferClient, local: str) -> None:
        dd = globus_sdk.DeleteData(endpoint=local, recursive=True)
        dd.add_item("/../../")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_delete(dd)
        assert info.value.http_status == 403


class TestTaskQueries:
    def test_task_list_filters_paging_orderby(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        label = f"list-{uuid.uuid4().hex[:8]}"
        ids = []
        for i in range(3):
            td = globus_sdk.TransferData(ep, ep, label=f"{label}-{i}")
            td.add_item(f"{d}/f", f"{d}/g{i}")
            ids.append(run(tc, td)["task_id"])
        dd = globus_sdk.DeleteData(endpoint=ep, label=f"{label}-del")
        dd.add_item(f"{d}/g0")
        ids.append(run(tc, dd)["task_id"])
        mine = tc.task_list(filter=f"label:~{label}*", orderby="request_time ASC", limit=100)
        assert mine["DATA_TYPE"] == "task_list" and mine["total"] == 4
        assert [t["task_id"] for t in mine["DATA"]] == ids
        only = tc.task_list(filter={"task_id": ids[:2], "type": "TRANSFER"})
        assert sorted(t["task_id"] for t in only) == sorted(ids[:2])
        assert tc.task_list(filter=f"label:~{label}*/type:DELETE")["total"] == 1
        assert tc.task_list(filter=f"label:~{label}*/status:FAILED")["total"] == 0
        page = tc.task_list(filter=f"label:~{label}*", limit=2, offset=1, orderby="label")
        assert page["limit"] == 2 and page["offset"] == 1 and page["length"] == 2 and page["total"] == 4
        assert [t["label"] for t in page["DATA"]] == [f"{label}-1", f"{label}-2"]
        everything = list(tc.paginated.task_list(filter=f"label:~{label}*").items())
        assert len(everything) == 4

    def test_tasks_submitted_in_one_second_list_newest_first(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        """Globus writes request_time to the second but orders by the time itself: the
        CLI's ``globus task list`` (``orderby=request_time DESC``) shows the last one first."""
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        label = f"burst-{uuid.uuid4().hex[:8]}"
        ids = []
        for i in range(5):  # back to back: nearly always within one second
            td = globus_sdk.TransferData(ep, ep, label=f"{label}-{i}")
            td.add_item(f"{d}/f", f"{d}/g{i}")
            ids.append(tc.submit_transfer(td)["task_id"])
        newest_first = tc.task_list(filter=f"label:~{label}*", orderby="request_time DESC", limit=100)
        assert [t["task_id"] for t in newest_first["DATA"]] == ids[::-1]
        by_default = tc.task_list(filter=f"label:~{label}*", limit=100)
        assert [t["task_id"] for t in by_default["DATA"]] == ids[::-1]
        oldest_first = tc.task_list(filter=f"label:~{label}*", orderby="request_time ASC", limit=100)
        assert [t["task_id"] for t in oldest_first["DATA"]] == ids
        for tid in ids:
            run_wait(tc, tid)

    def test_event_list_pause_info(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/f", f"{d}/g")
        tid = run(tc, td)["task_id"]
        events = tc.task_event_list(tid)
        assert events["DATA_TYPE"] == "event_list" and [e["code"] for e in events["DATA"]] == ["SUCCEEDED", "STARTED"]
        assert all(e["DATA_TYPE"] == "event" and "T" in e["time"] for e in events["DATA"])
        assert tc.task_event_list(tid, query_params={"filter": "is_error:1"})["total"] == 0
        assert len(list(tc.paginated.task_event_list(tid).items())) == 2
        info = tc.task_pause_info(tid)
        assert info["DATA_TYPE"] == "pause_info_limited" and info["pause_rules"] == []

    def test_successful_transfers_paging(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:] / "many", {f"f{i:02d}": str(i) for i in range(7)})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/many/", f"{d}/copy/", recursive=True)
        tid = run(tc, td)["task_id"]
        pages = list(tc.paginated.task_successful_transfers(tid, query_params={"limit": 3}))
        assert [len(p["DATA"]) for p in pages] == [3, 3, 1]
        assert pages[-1]["next_marker"] is None
        for bad in ("-1", "x", "\u00b2", "9" * 5000):  # a marker is a position this API handed out
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                tc.task_successful_transfers(tid, query_params={"marker": bad})
            assert info.value.http_status == 400 and "Invalid marker" in info.value.message, bad[:10]

    def test_queue_limit_three_active_transfers(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        make_tree(root / d[1:], {"f": "f"})
        fault = emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/f", "kind": "permission"})
        try:
            tids = []
            for i in range(4):
                td = globus_sdk.TransferData(ep, ep)
                td.add_item(f"{d}/f", f"{d}/q{i}")
                tids.append(tc.submit_transfer(td)["task_id"])
            end = time.monotonic() + 5
            while True:
                docs = [tc.get_task(t) for t in tids]
                if all(x["nice_status"] == "PERMISSION_DENIED" for x in docs[:3]) or time.monotonic() > end:
                    break
                time.sleep(0.05)
            assert [x["status"] for x in docs] == ["ACTIVE"] * 4
            assert docs[3]["nice_status"] == "Queued" and docs[3]["is_ok"] is True
            assert [x["nice_status"] for x in docs[:3]] == ["PERMISSION_DENIED"] * 3
            assert all(x["is_ok"] is False and x["subtasks_retrying"] == 1 and x["faults"] >= 1 for x in docs[:3])
        finally:
            emu.admin("DELETE", f"faults/paths/{fault['id']}")
        assert tc.task_wait(tids[3], timeout=10, polling_interval=1)  # INACTIVE/SUCCEEDED/FAILED end a wait
        for tid in tids:
            assert run_wait(tc, tid)["status"] == "SUCCEEDED"
