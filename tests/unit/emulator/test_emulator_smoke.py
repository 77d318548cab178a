"""The basic loop through the real SDK: ls, mkdir, transfer, wait, task docs, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import globus_sdk
from globus_emu_helpers import root_of

from radical.orbit.emulators.globus import TUTORIAL_1, RunningEmulator


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


class TestSmoke:
    def test_tutorial_listing(self, tc: globus_sdk.TransferClient) -> None:
        names = [f["name"] for f in tc.operation_ls(TUTORIAL_1, path="/home/share/godata/")]
        assert names == ["file1.txt", "file2.txt", "file3.txt"]

    def test_transfer_and_delete(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, local: str) -> None:
        tc.operation_mkdir(local, "/smoke")
        td = globus_sdk.TransferData(TUTORIAL_1, local, label="smoke")
        td.add_item("/home/share/godata/", "/smoke/godata/", recursive=True)
        res = tc.submit_transfer(td)
        assert res.http_status == 202 and res["code"] == "Accepted"
        assert tc.task_wait(res["task_id"], timeout=10, polling_interval=1)
        task = tc.get_task(res["task_id"])
        assert task["status"] == "SUCCEEDED" and task["files_transferred"] == 3
        src = root_of(emu, TUTORIAL_1) / "home/share/godata"
        dst = root_of(emu, local) / "smoke/godata"
        for n in (1, 2, 3):
            assert _md5(src / f"file{n}.txt") == _md5(dst / f"file{n}.txt")
        dd = globus_sdk.DeleteData(endpoint=local, recursive=True)
        dd.add_item("/smoke")
        res = tc.submit_delete(dd)
        assert tc.task_wait(res["task_id"], timeout=10, polling_interval=1)
        assert tc.get_task(res["task_id"])["status"] == "SUCCEEDED"
        assert not (root_of(emu, local) / "smoke").exists()
