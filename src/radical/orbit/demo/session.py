"""The demo's staging session, written the way a user's script would use the SDK.

Everything goes through the seed's client API (``BridgeClient`` → ``EndpointClient`` →
``get_plugin('globus')``); progress bars are driven by the plugin's notifications
(``transfer_status`` / ``transfer_progress`` / ``transfer_fault``), not by polling.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ..client.bridge import BridgeClient
from ..emulators.globus import TUTORIAL_1, dev_token
from .stack import DemoStack

TERMINAL = {"SUCCEEDED", "FAILED"}


class DemoFailure(Exception):
    """A step of the demo did not do what it should; the message says what to do."""


@dataclass
class TaskView:
    """What the notifications have told us about one task."""

    task_id: str
    label: str | None = None
    status: str = "ACTIVE"
    bytes_transferred: int = 0
    files_transferred: int = 0
    nice_status: str | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0


class NotificationTracker:
    """Collects the globus plugin's notifications (called on the SDK's listener thread)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tasks: dict[str, TaskView] = {}
        self.received = 0

    def view(self, task_id: str) -> TaskView:
        with self.cond:
            return self.tasks.setdefault(task_id, TaskView(task_id))

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        task_id = payload.get("task_id")
        if not isinstance(task_id, str):
            return
        with self.cond:
            self.received += 1
            view = self.tasks.setdefault(task_id, TaskView(task_id))
            view.events += 1
            if topic in ("transfer_status", "transfer_progress"):
                view.status = payload.get("status") or view.status
                view.label = payload.get("label") or view.label
                view.bytes_transferred = int(payload.get("bytes_transferred") or view.bytes_transferred)
                view.files_transferred = int(payload.get("files_transferred") or view.files_transferred)
                if topic == "transfer_status":
                    view.nice_status = payload.get("nice_status")
            elif topic == "transfer_fault":
                view.faults.append(payload)
            self.cond.notify_all()

    def wait(self, task_id: str, until: Callable[[TaskView], bool], timeout: float, tick: Callable[[TaskView], None] | None = None) -> TaskView:
        """Block until ``until(view)`` holds (re-checked on every notification)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            view = self.tasks.setdefault(task_id, TaskView(task_id))
            while not until(view):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DemoFailure(
                        f"task {task_id} did not get there within {timeout:.0f} s (last status {view.status}); "
                        "see the logs under the demo's work directory"
                    )
                self.cond.wait(min(left, 0.25))
                if tick is not None:
                    tick(view)
            return view


# -- the generated dataset -----------------------------------------------------------------


@dataclass
class Dataset:
    files: dict[str, int]  # relative path -> size

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


#: the demo's sizes are decimal, as rich's progress bars and Globus show them
MB = 10**6

def make_dataset(base: Path, n_files: int, total_mb: float, progress: Progress) -> Dataset:
    """A nested tree of mixed file sizes: a few large, many medium, a long tail of small."""
    rng = random.Random(20261129)
    total = int(total_mb * MB)
    n_large = max(1, n_files // 40)
    n_small = max(1, n_files // 3)
    n_medium = max(0, n_files - n_large - n_small)
    small = [rng.randint(512, 64 * 1024) for _ in range(n_small)]
    rest = max(0, total - sum(small))
    large = [int(rest * 0.6 / n_large)] * n_large
    medium = [int(rest * 0.4 / n_medium)] * n_medium if n_medium else []
    sizes = large + medium + small
    rng.shuffle(sizes)
    files: dict[str, int] = {}
    job = progress.add_task("generating dataset", total=sum(sizes), files=f"{len(sizes)} files")
    chunk = os.urandom(1 << 20)
    for i, size in enumerate(sizes):
        rel = f"run{i % 4:02d}/step{(i // 4) % 6:02d}/part-{i:04d}.dat"
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            left = size
            salt = i.to_bytes(4, "little")
            fh.write(salt)
            left -= min(left, 4)
            while left > 0:
                n = min(left, len(chunk))
                fh.write(chunk[:n])
                left -= n
        files[rel] = size
        progress.advance(job, size)
    return Dataset(files)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- the session -----------------------------------------------------------------------------


@dataclass
class DemoOptions:
    files: int = 300
    size_mb: float = 256.0
    bandwidth_mb: float = 100.0
    timeout: float = 600.0


class StagingDemo:
    """Runs the scripted staging session against a started :class:`DemoStack`."""

    SRC_ROOT = "/home/share/"
    DEST = "/~/staged/"

    def __init__(self, stack: DemoStack, options: DemoOptions, console: Console) -> None:
        self.stack = stack
        self.opts = options
        self.console = console
        self.tracker = NotificationTracker()
        self.rows: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.console.print(f"[bold cyan]▶[/] {text}")

    def progress(self) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeElapsedColumn(),
            console=self.console,
        )

    def run(self) -> int:
        stack, opts = self.stack, self.opts
        src_root = stack.collection_root(TUTORIAL_1)
        with self.progress() as progress:
            dataset = make_dataset(src_root / "home/share/dataset", opts.files, opts.size_mb, progress)
        self.say(
            f"generated [bold]{len(dataset.files)}[/] files, {filesize.decimal(dataset.total_bytes)} on "
            "'Globus Tutorial Collection 1' under /home/share/dataset/"
        )
        if opts.bandwidth_mb > 0:
            stack.set_bandwidth(TUTORIAL_1, opts.bandwidth_mb * MB)
            self.say(f"the emulated source collection moves at most {opts.bandwidth_mb:g} MB/s (like a real DTN link)")

        # 1. a Globus login (the emulator stands in for Globus Auth) and a session
        tokens = dev_token(stack.emulator_url, refresh=True)
        bc = BridgeClient(stack.bridge_url, token=stack.bridge_token)
        try:
            ec = bc.get_endpoint_client(bc.list_endpoints()[0])
            globus: Any = ec.get_plugin("globus")
            globus.register_notification_callback(self.tracker)
            globus.register_session(refresh_token=tokens["refresh_token"], client_id=tokens["client_id"])
            info = globus.session_info()
            self.say(
                f"session on endpoint [bold]{ec.name}[/] (refresh-token auth, renewed by the endpoint); "
                f"local collection {info.get('local_collection')} (found via {info.get('local_source', 'discovery')})"
            )
            return self._stage(globus, dataset)
        finally:
            bc.close()

    # -- steps ---------------------------------------------------------------------------------
    def _transfer(self, globus: Any, label: str, items: list[dict[str, Any]], total_bytes: int, total_files: int, **options: Any) -> TaskView:
        sub = globus.submit_transfer(source=TUTORIAL_1, destination="local", items=items, label=label, **options)
        task_id = sub["task_id"]
        with self.progress() as progress:
            bar = progress.add_task(label, total=total_bytes or None, files=f"0/{total_files} files")

            def tick(view: TaskView) -> None:
                progress.update(bar, completed=view.bytes_transferred, files=f"{view.files_transferred}/{total_files} files")

            view = self.tracker.wait(task_id, lambda v: v.status in TERMINAL, self.opts.timeout, tick)
            tick(view)
        self._record(globus, task_id)
        return view

    def _record(self, globus: Any, task_id: str) -> dict[str, Any]:
        doc = globus.get_task(task_id)
        row = {
            "label": doc.get("label"),
            "type": doc.get("type"),
            "status": doc.get("status"),
            "files": doc.get("files_transferred", 0) if doc.get("type") == "TRANSFER" else doc.get("subtasks_succeeded", 0),
            "skipped": doc.get("files_skipped", 0),
            "bytes": doc.get("bytes_transferred", 0),
            "seconds": _duration(doc),
            "task_id": task_id,
        }
        self.rows.append(row)
        return row

    def _stage(self, globus: Any, dataset: Dataset) -> int:
        n_files = len(dataset.files) + 3
        items = [
            {"source": f"{self.SRC_ROOT}godata/", "destination": f"{self.DEST}godata/", "recursive": True},
            {"source": f"{self.SRC_ROOT}dataset/", "destination": f"{self.DEST}dataset/", "recursive": True},
        ]
        godata_bytes = sum(p.stat().st_size for p in (self.stack.collection_root(TUTORIAL_1) / "home/share/godata").iterdir())

        self.say("stage-in: godata + dataset → local, sync_level='checksum' (live progress from notifications)")
        view = self._transfer(globus, "demo stage-in", items, dataset.total_bytes + godata_bytes, n_files, sync_level="checksum")
        if view.status != "SUCCEEDED":
            raise DemoFailure(f"the stage-in ended {view.status}; see the endpoint log")
        self._verify(dataset)

        self.say("the same transfer again: sync compares checksums and skips everything unchanged")
        self._transfer(globus, "demo re-sync", items, 0, n_files, sync_level="checksum")
        resync = self.rows[-1]
        if resync["status"] != "SUCCEEDED" or resync["files"] != 0:
            raise DemoFailure(f"the re-sync should copy nothing but copied {resync['files']} files")
        self.console.print(f"   skipped {resync['skipped']} unchanged files, copied {resync['files']}")

        self.say("a fault surfaced at once: a source path that does not exist")
        sub = globus.submit_transfer(
            source=TUTORIAL_1,
            destination="local",
            items=[{"source": f"{self.SRC_ROOT}no-such-run/", "destination": f"{self.DEST}missing/", "recursive": True}],
            label="demo missing source",
        )
        view = self.tracker.wait(sub["task_id"], lambda v: bool(v.faults) or v.status in TERMINAL, self.opts.timeout)
        for fault in view.faults[:1]:
            self.console.print(
                f"   [yellow]transfer_fault[/] {fault.get('code')}: {fault.get('description')} "
                "(reported while the task was still ACTIVE)"
            )
        view = self.tracker.wait(sub["task_id"], lambda v: v.status in TERMINAL, self.opts.timeout)
        row = self._record(globus, sub["task_id"])
        fatal = globus.get_task(sub["task_id"]).get("fatal_error") or {}
        self.console.print(
            f"   the task ended [bold]{view.status}[/] ({fatal.get('code', row['status'])}: {fatal.get('description', '')}) "
            "within seconds, instead of a task that silently retries"
        )
        if view.status != "FAILED":
            raise DemoFailure(f"a transfer of a missing path should fail, but it ended {view.status}")

        self.say(
            "a fault Globus would retry for a day: permission denied on the source "
            "(the plugin reports it at once as transfer_fault; fail_fast cancels the task)"
        )
        self.stack.add_path_fault(TUTORIAL_1, f"{self.SRC_ROOT}restricted/", "permission")
        restricted = self.stack.collection_root(TUTORIAL_1) / "home/share/restricted"
        restricted.mkdir(parents=True, exist_ok=True)
        (restricted / "secret.dat").write_bytes(b"not for you\n")
        sub = globus.submit_transfer(
            source=TUTORIAL_1,
            destination="local",
            items=[{"source": f"{self.SRC_ROOT}restricted/", "destination": f"{self.DEST}restricted/", "recursive": True}],
            label="demo permission fault",
            fail_fast=True,
        )
        view = self.tracker.wait(sub["task_id"], lambda v: bool(v.faults) or v.status in TERMINAL, self.opts.timeout)
        for fault in view.faults[:1]:
            self.console.print(
                f"   [yellow]transfer_fault[/] {fault.get('code')}: {fault.get('description')} "
                "(the task was still ACTIVE and retrying)"
            )
        view = self.tracker.wait(sub["task_id"], lambda v: v.status in TERMINAL, self.opts.timeout)
        self._record(globus, sub["task_id"])
        self.console.print(f"   fail_fast cancelled it: the task ended [bold]{view.status}[/]")
        if not view.faults:
            raise DemoFailure("Globus reported a fault on the task but no transfer_fault notification arrived")

        self.say("a delete task: remove the staged godata copy")
        sub = globus.delete("local", [f"{self.DEST}godata/"], recursive=True, label="demo cleanup")
        view = self.tracker.wait(sub["task_id"], lambda v: v.status in TERMINAL, self.opts.timeout)
        self._record(globus, sub["task_id"])
        if view.status != "SUCCEEDED":
            raise DemoFailure(f"the delete task ended {view.status}")
        listing = globus.ls("local", self.DEST)
        names = sorted(entry["name"] for entry in listing.get("DATA", []))
        self.console.print(f"   local:{self.DEST} now holds {names}")
        if "godata" in names:
            raise DemoFailure("the delete task succeeded but godata/ is still there")
        return 0

    def _verify(self, dataset: Dataset) -> None:
        src = self.stack.collection_root(TUTORIAL_1) / "home/share/dataset"
        dst = self.stack.collection_root(self.stack.local_collection) / "staged/dataset"
        bad = [rel for rel in dataset.files if not (dst / rel).is_file() or sha256(src / rel) != sha256(dst / rel)]
        if bad:
            raise DemoFailure(f"{len(bad)} staged files differ from their source (first: {bad[0]})")
        self.console.print(f"   verified: all {len(dataset.files)} staged files are byte-identical (sha256)")

    def summary(self) -> Table:
        table = Table(title="Demo summary", show_lines=False)
        for col in ("task", "type", "status", "files copied", "skipped", "bytes", "duration"):
            table.add_column(col, justify="right" if col in ("files copied", "skipped", "bytes", "duration") else "left")
        for row in self.rows:
            table.add_row(
                str(row["label"]).removeprefix("demo "),
                str(row["type"]),
                _status_markup(str(row["status"])),
                str(row["files"]),
                str(row["skipped"]),
                filesize.decimal(int(row["bytes"] or 0)),
                _seconds_cell(row["seconds"]),
            )
        total_bytes = sum(int(r["bytes"] or 0) for r in self.rows)
        table.add_section()
        table.add_row(
            f"{len(self.rows)} tasks",
            "",
            "",
            str(sum(int(r["files"] or 0) for r in self.rows)),
            str(sum(int(r["skipped"] or 0) for r in self.rows)),
            filesize.decimal(total_bytes),
            f"{time.monotonic() - self.started:.1f} s wall",
        )
        table.caption = (
            f"Globus API calls used: {self.stack.api_calls()} · notifications received: {self.tracker.received} · "
            "bytes moved collection → collection, none through Orbit"
        )
        return table


def _status_markup(status: str) -> str:
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(status, "yellow")
    return f"[{colour}]{status}[/]"




def _seconds_cell(seconds: float | None) -> str:
    """A task's duration as Globus reports it: its times have whole seconds only."""
    if seconds is None:
        return "-"
    return "< 1 s" if seconds < 1 else f"{seconds:.0f} s"


def _duration(doc: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(doc["request_time"]))
        end = datetime.fromisoformat(str(doc["completion_time"]))
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (end - start).total_seconds())


__all__ = ["DemoFailure", "DemoOptions", "NotificationTracker", "StagingDemo"]
