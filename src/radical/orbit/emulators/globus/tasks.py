"""The task engine: Globus transfer and delete tasks that really move bytes.

Each admitted task runs on its own worker thread, never on the request path. At most
``max_active_transfers`` transfer and ``max_active_deletes`` delete tasks per user run
at once; the rest wait ACTIVE with nice_status "Queued", as Globus does.

Copies stream with ``os.sendfile`` in large chunks (the kernel moves the bytes); a
checksum is computed only when ``verify_checksum`` or ``sync_level`` 3 asks for one.
Counters advance per chunk, so ``get_task`` shows live progress.

Error model (what Globus does, as far as it is known):
- a missing source is fatal (FILE_NOT_FOUND) unless ``skip_source_errors``;
- permission errors are retried every ``retry_interval`` while the task stays ACTIVE
  with nice_status PERMISSION_DENIED, until they clear, the deadline passes
  (FAILED/EXPIRED) or the task is cancelled; a *source* permission error is skipped
  instead with ``skip_source_errors``;
- quota errors are retried likewise, or fatal with ``fail_on_quota_errors``;
- a user cancel ends FAILED with ``fatal_error`` CANCELED.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import logging
import math
import os
import shutil
import stat as stat_mod
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .collections import Collection, CollectionRegistry, PathEscape, globus_time
from .faults import FaultState
from .state import atomic_write_json

__all__ = ["Task", "TaskEngine", "TaskError"]

log = logging.getLogger(__name__)

CHUNK = 16 * 1024 * 1024
HASH_CHUNK = 4 * 1024 * 1024
DEFAULT_DEADLINE = 24 * 3600
PROGRESS_INTERVAL = 60.0
FINISHED = ("SUCCEEDED", "FAILED")

COUNTERS = (
    "files",
    "directories",
    "symlinks",
    "files_skipped",
    "files_transferred",
    "faults",
    "subtasks_total",
    "subtasks_pending",
    "subtasks_retrying",
    "subtasks_succeeded",
    "subtasks_failed",
    "subtasks_canceled",
    "subtasks_expired",
    "subtasks_skipped_errors",
    "bytes_transferred",
    "bytes_checksummed",
)

DESCRIPTIONS = {
    "FILE_NOT_FOUND": "file not found",
    "PERMISSION_DENIED": "permission denied",
    "QUOTA_EXCEEDED": "quota exceeded",
    "NO_SPACE_LEFT": "no space left on device",
    "CANCELED": "canceled",
    "EXPIRED": "deadline expired",
    "IS_A_DIRECTORY": "is a directory",
    "NOT_A_DIRECTORY": "not a directory",
    "VERIFY_CHECKSUM": "checksum verification failed",
    "EXTERNAL_CHECKSUM_MISMATCH": "external checksum mismatch",
    "ENDPOINT_ERROR": "endpoint error",
    "SUCCEEDED": "succeeded",
    "STARTED": "started",
    "PROGRESS": "progress",
    "SKIPPED_ERRORS": "skipped errors",
}


class TaskError(Exception):
    """A file-level error inside a task, with its Globus event code."""

    def __init__(self, code: str, details: str, *, source: bool = False) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.source = source


class _Shutdown(Exception):
    """The emulator is stopping: leave the task unfinished (it runs again after a restart)."""


class _Stop(Exception):
    """The task ends now (cancelled, expired or fatal); ``code`` says which."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass
class Task:
    """One task: what was asked, its counters, events and results."""

    task_id: str
    type: str  # TRANSFER | DELETE
    owner_id: str
    username: str
    submission_id: str
    request: dict[str, Any]
    source_endpoint_id: str
    destination_endpoint_id: str | None
    source_display_name: str
    destination_display_name: str | None
    request_time: float
    deadline: float
    label: str | None = None
    status: str = "ACTIVE"
    completion_time: float | None = None
    fatal_error: dict[str, str] | None = None
    nice_status: str | None = "Queued"
    nice_status_short_description: str | None = "Queued"
    is_ok: bool | None = True
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    events: list[dict[str, Any]] = field(default_factory=list)
    successful: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    running: bool = False

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        if self.status in FINISHED:
            self.done_event.set()

    # ---- serialisation

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k not in ("lock", "cancel_event", "done_event", "running")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(**data)

    # ---- documents

    def add_event(self, code: str, details: str | None = None, *, is_error: bool = False, description: str | None = None) -> None:
        ev = {
            "DATA_TYPE": "event",
            "code": code,
            "is_error": is_error,
            "description": description or DESCRIPTIONS.get(code, code.lower().replace("_", " ")),
            "details": details,
            "time": globus_time(time.time()),
        }
        with self.lock:
            self.events.append(ev)

    def bump(self, **deltas: int) -> None:
        with self.lock:
            for k, v in deltas.items():
                self.counters[k] += v

    def document(self) -> dict[str, Any]:
        """The ``DATA_TYPE: task`` document, as get_task and task_list return it."""
        req = self.request
        is_transfer = self.type == "TRANSFER"
        with self.lock:
            c = dict(self.counters)
            status = self.status
            done = status in FINISHED
            c["subtasks_pending"] = max(
                0,
                c["subtasks_total"]
                - c["subtasks_succeeded"]
                - c["subtasks_failed"]
                - c["subtasks_canceled"]
                - c["subtasks_expired"]
                - c["subtasks_skipped_errors"],
            )
            if done:
                c["subtasks_retrying"] = 0
            end = self.completion_time or time.time()
            elapsed = max(end - (self.started_at or end), 1e-6)
            rate = c["bytes_transferred"] / elapsed if self.started_at and is_transfer else 0.0
            eff = int(rate) if math.isfinite(rate) else 0  # a NaN time from a state file must not break the listing
            doc: dict[str, Any] = {
                "DATA_TYPE": "task",
                "task_id": self.task_id,
                "type": self.type,
                "status": status,
                "label": self.label,
                "owner_id": self.owner_id,
                "username": "u_" + self.owner_id.replace("-", "")[:26],
                "command": "API 0.10",
                "request_time": globus_time(self.request_time),
                "completion_time": globus_time(self.completion_time),
                "deadline": globus_time(self.deadline),
                "source_endpoint": self.source_endpoint_id,
                "source_endpoint_id": self.source_endpoint_id,
                "source_endpoint_display_name": self.source_display_name,
                "destination_endpoint": self.destination_endpoint_id,
                "destination_endpoint_id": self.destination_endpoint_id,
                "destination_endpoint_display_name": self.destination_display_name,
                "sync_level": req.get("sync_level") if is_transfer else None,
                "verify_checksum": bool(req.get("verify_checksum", False)) if is_transfer else False,
                "encrypt_data": bool(req.get("encrypt_data", False)) if is_transfer else False,
                "preserve_timestamp": bool(req.get("preserve_timestamp", False)) if is_transfer else False,
                "delete_destination_extra": bool(req.get("delete_destination_extra", False)) if is_transfer else False,
                "skip_source_errors": bool(req.get("skip_source_errors", False)) if is_transfer else False,
                "fail_on_quota_errors": bool(req.get("fail_on_quota_errors", False)) if is_transfer else False,
                "recursive_symlinks": req.get("recursive_symlinks") or "ignore",
                "filter_rules": req.get("filter_rules") if is_transfer else None,
                "source_local_user": req.get("source_local_user") if is_transfer else req.get("local_user"),
                "destination_local_user": req.get("destination_local_user") if is_transfer else None,
                "source_base_path": None,
                "destination_base_path": None,
                "fatal_error": self.fatal_error,
                "nice_status": None if done else self.nice_status,
                "nice_status_details": None,
                "nice_status_short_description": None if done else self.nice_status_short_description,
                "nice_status_expires_in": None if done else -1,
                "is_ok": None if done else self.is_ok,
                "is_paused": False,
                "canceled_by_admin": None,
                "canceled_by_admin_message": None,
                "history_deleted": False,
                "effective_bytes_per_second": eff,
                **c,
            }
        return doc


def _match_rules(rules: list[dict[str, Any]] | None, name: str, is_dir: bool) -> bool:
    """Whether an entry passes the filter rules (first match wins, default include)."""
    for rule in rules or ():
        rtype = rule.get("type")
        if rtype == "file" and is_dir or rtype == "dir" and not is_dir:
            continue
        if fnmatch.fnmatchcase(name, rule.get("name", "")):
            return bool(rule.get("method", "include") == "include")
    return True


def _md5_file(path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _corrupt(path: str) -> None:
    """Flip the first byte (or add one to an empty file): an injected silent corruption."""
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]) if first else b"\x00")


def _shown_path(filename: object, colls: tuple[Any, ...]) -> str:
    """The Globus path of an on-disk file name: the host's layout never reaches a user."""
    if isinstance(filename, str):
        for coll in colls:
            if coll is not None and coll.inside(filename):
                return str(coll.to_globus(filename))
        return os.path.basename(filename) or "?"
    return "?"


def _classify(exc: OSError, *, source: bool, colls: tuple[Any, ...] = ()) -> TaskError:
    where = _shown_path(exc.filename, colls)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return TaskError("FILE_NOT_FOUND", f"No such file or directory: {where}", source=source)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return TaskError("PERMISSION_DENIED", f"Permission denied: {where}", source=source)
    if exc.errno == errno.EDQUOT:
        return TaskError("QUOTA_EXCEEDED", "Disk quota exceeded", source=source)
    if exc.errno == errno.ENOSPC:
        return TaskError("NO_SPACE_LEFT", "No space left on device", source=source)
    if exc.errno == errno.ENOTDIR:
        return TaskError("NOT_A_DIRECTORY", f"Not a directory: {where}", source=source)
    if exc.errno == errno.EISDIR:
        return TaskError("IS_A_DIRECTORY", f"Is a directory: {where}", source=source)
    return TaskError("ENDPOINT_ERROR", f"{exc.strerror or type(exc).__name__}: {where}", source=source)


class _Runner:
    """Executes one task on the calling (worker) thread."""

    def __init__(self, engine: TaskEngine, task: Task) -> None:
        self.engine = engine
        self.task = task
        self.req = task.request
        self.faults = engine.faults
        self.colls = engine.collections
        self.src = self.colls.get(task.source_endpoint_id)
        self.dst = self.colls.get(task.destination_endpoint_id) if task.destination_endpoint_id else None
        self.quota_used: int | None = None
        self.last_progress = time.monotonic()
        self.safe_dirs: set[str] = set()  # destination dirs already checked to stay inside the root
        self.made_dirs: set[str] = set()  # destination dirs known to exist

    # ---- shared helpers

    def check_stop(self) -> None:
        """Raise when cancelled or past the deadline; block while the task is INACTIVE."""
        t = self.task
        while True:
            if self.engine.stopping:
                raise _Shutdown()
            if t.cancel_event.is_set():
                raise _Stop("CANCELED", "Canceled by the task owner")
            if time.time() > t.deadline:
                raise _Stop("EXPIRED", "The task deadline was reached")
            if t.status != "INACTIVE":
                break
            t.cancel_event.wait(0.05)
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            c = t.counters
            elapsed = max(time.time() - (t.started_at or time.time()), 1e-6)
            details = {"bytes_transferred": c["bytes_transferred"], "duration": round(elapsed, 2), "mbps": round(c["bytes_transferred"] * 8 / elapsed / 1e6, 2)}
            t.add_event("PROGRESS", json.dumps(details), description="progress")

    def sleep(self, seconds: float) -> None:
        if self.task.cancel_event.wait(seconds):
            self.check_stop()

    def path_fault(self, coll: Collection, gpath: str, *, source: bool) -> None:
        kind = self.faults.path_fault(coll.id, gpath)
        if kind == "permission":
            raise TaskError("PERMISSION_DENIED", f"Permission denied (injected fault): {gpath}", source=source)
        if kind == "not_found":
            raise TaskError("FILE_NOT_FOUND", f"No such file or directory (injected fault): {gpath}", source=source)

    def with_retries(self, what: str, func: Any, *args: Any) -> Any:
        """Run ``func``; retry retryable errors as Globus does (task stays ACTIVE)."""
        t = self.task
        retrying = False
        try:
            while True:
                self.check_stop()
                try:
                    result = func(*args)
                except TaskError as err:
                    fatal = err.code in ("FILE_NOT_FOUND", "IS_A_DIRECTORY", "NOT_A_DIRECTORY", "EXTERNAL_CHECKSUM_MISMATCH") or (
                        err.code in ("QUOTA_EXCEEDED", "NO_SPACE_LEFT") and self.req.get("fail_on_quota_errors")
                    )
                    if err.source and self.req.get("skip_source_errors") and err.code in ("FILE_NOT_FOUND", "PERMISSION_DENIED"):
                        raise
                    t.bump(faults=1)
                    t.add_event(err.code, err.details, is_error=True)
                    if fatal:
                        raise _Stop(err.code, err.details) from None
                    with t.lock:
                        t.nice_status = err.code
                        t.nice_status_short_description = DESCRIPTIONS.get(err.code, err.code)
                        t.is_ok = False
                        if not retrying:
                            t.counters["subtasks_retrying"] += 1
                    retrying = True
                    self.sleep(self.engine.retry_interval)
                    continue
                return result
        finally:
            if retrying:
                with t.lock:
                    t.counters["subtasks_retrying"] -= 1
                    if t.counters["subtasks_retrying"] == 0:
                        t.nice_status, t.nice_status_short_description, t.is_ok = "OK", "OK", True

    # ---- transfer

    def run_transfer(self) -> None:
        t = self.task
        assert self.src is not None and self.dst is not None
        t.add_event("STARTED", json.dumps({"type": "GridFTP Transfer", "concurrency": 1, "parallelism": 1, "pipelining": 20}), description="started")
        for item in self.req.get("DATA", []):
            t.bump(subtasks_total=1)
            self.check_stop()
            if item.get("DATA_TYPE") == "transfer_symlink_item":
                self.transfer_symlink(item)
            else:
                self.transfer_item(item)
            t.bump(subtasks_succeeded=1)
        if t.skipped:
            t.add_event("SKIPPED_ERRORS", f"{len(t.skipped)} source errors were skipped", description="skipped errors")

    def transfer_symlink(self, item: dict[str, Any]) -> None:
        """A ``transfer_symlink_item``: recreate the link (its target text) at the destination."""
        assert self.src is not None and self.dst is not None
        try:
            sgp = self.src.normalize(item["source_path"])
            dgp = self.dst.normalize(item["destination_path"])
            src_link = os.path.join(self.src.real(os.path.dirname(sgp)), os.path.basename(sgp))
            dst_link = os.path.join(self.dst.real(os.path.dirname(dgp)), os.path.basename(dgp))
        except PathEscape:
            raise _Stop("PERMISSION_DENIED", f"Path not allowed: {item['source_path']} -> {item['destination_path']}") from None
        try:
            target = os.readlink(src_link)
            if os.path.lexists(dst_link):
                os.unlink(dst_link)
            os.makedirs(os.path.dirname(dst_link), exist_ok=True)
            os.symlink(target, dst_link)
        except OSError as exc:
            code = "NOT_A_SYMLINK" if exc.errno == errno.EINVAL else _classify(exc, source=exc.filename == src_link).code
            raise _Stop(code, f"{exc.strerror}: {_shown_path(exc.filename, (self.src, self.dst))}") from None
        self.task.bump(symlinks=1)

    def skip(self, err: TaskError, src_gpath: str, dst_gpath: str, is_dir: bool, *, counted: bool = True) -> None:
        """Record a skipped source error; ``counted=False`` adds its subtask to the total first."""
        t = self.task
        with t.lock:
            t.skipped.append(
                {
                    "DATA_TYPE": "skipped_error",
                    "error_code": err.code,
                    "error_details": err.details,
                    "error_time": globus_time(time.time()),
                    "source_path": src_gpath,
                    "destination_path": dst_gpath,
                    "is_directory": is_dir,
                    "is_symlink": False,
                    "is_delete_destination_extra": False,
                    "external_checksum": None,
                    "checksum_algorithm": None,
                }
            )
            t.counters["subtasks_skipped_errors"] += 1
            if not counted:
                t.counters["subtasks_total"] += 1

    def stat_source(self, gpath: str, real: str) -> os.stat_result:
        assert self.src is not None
        self.path_fault(self.src, gpath, source=True)
        try:
            return os.stat(real)
        except OSError as exc:
            raise _classify(exc, source=True, colls=(self.src, self.dst)) from None

    def transfer_item(self, item: dict[str, Any]) -> None:
        assert self.src is not None and self.dst is not None
        t = self.task
        try:
            sgp, sreal = self.src.resolve(item["source_path"])
        except PathEscape:
            err = TaskError("PERMISSION_DENIED", f"Path not allowed: {item['source_path']}", source=True)
            return self.item_error(err, item, False)
        try:
            dgp, dreal = self.dst.resolve(item["destination_path"])
        except PathEscape:
            raise _Stop("PERMISSION_DENIED", f"Path not allowed: {item['destination_path']}") from None
        try:
            st = self.with_retries("stat", self.stat_source, sgp, sreal)
        except TaskError as err:
            return self.item_error(err, item, False)
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        recursive = item.get("recursive")
        if recursive is None:
            recursive = is_dir
        if recursive and not is_dir:
            raise _Stop("NOT_A_DIRECTORY", f"Not a directory: {sgp} (recursive item)")
        if not recursive and is_dir:
            raise _Stop("IS_A_DIRECTORY", f"Is a directory: {sgp} (use recursive)")
        if is_dir:
            self.transfer_dir(sgp, sreal, dgp, dreal)
        else:
            t.bump(files=1, subtasks_total=1)
            self.transfer_one(sgp, sreal, dgp, dreal, st, item)

    def item_error(self, err: TaskError, item: dict[str, Any], is_dir: bool) -> None:
        if self.req.get("skip_source_errors"):
            self.skip(err, item["source_path"], item["destination_path"], is_dir, counted=False)
            return
        raise _Stop(err.code, err.details)

    def walk(self, sgp: str, sreal: str, dgp: str, dreal: str) -> Iterator[tuple[str, str, str, str, os.stat_result]]:
        """Files of a source tree (filters applied), creating destination dirs as it goes."""
        assert self.src is not None
        rules = self.req.get("filter_rules")
        droot = os.path.realpath(dreal)
        stack = [(sgp, sreal, dgp, dreal)]
        while stack:
            sg, sr, dg, dr = stack.pop()
            self.check_stop()
            try:
                self.with_retries("mkdir", self.make_dir, dr)
                entries = self.with_retries("list", self.list_dir, sg, sr)
            except TaskError as err:
                self.skip(err, sg, dg, True, counted=False)
                continue
            self.task.bump(directories=1)
            subdirs = []
            for entry in entries:
                name = entry.name
                ereal = os.path.join(sr, name)
                try:
                    if entry.is_symlink():
                        if not self.src.inside(ereal):
                            continue  # recursive_symlinks "ignore": never follow a link out of the root
                        est = os.stat(ereal)
                    else:
                        est = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # dangling link or vanished entry
                is_dir = stat_mod.S_ISDIR(est.st_mode)
                if not _match_rules(rules, name, is_dir):
                    continue
                esg = sg.rstrip("/") + "/" + name
                edg = dg.rstrip("/") + "/" + name
                if is_dir:
                    rp = os.path.realpath(ereal)
                    if rp == droot or rp.startswith(droot + os.sep):
                        continue  # the destination lies inside the source: never copy it into itself
                    subdirs.append((esg, ereal, edg, os.path.join(dr, name)))
                elif stat_mod.S_ISREG(est.st_mode):
                    yield esg, ereal, edg, os.path.join(dr, name), est
            stack.extend(reversed(subdirs))

    def list_dir(self, sg: str, sr: str) -> list[os.DirEntry[str]]:
        assert self.src is not None
        self.path_fault(self.src, sg, source=True)
        try:
            with os.scandir(sr) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise _classify(exc, source=True, colls=(self.src, self.dst)) from None

    def make_dir(self, dr: str) -> None:
        try:
            os.makedirs(dr, exist_ok=True)
            self.made_dirs.add(dr)
        except (FileExistsError, NotADirectoryError):
            raise TaskError("NOT_A_DIRECTORY", f"Destination exists and is not a directory: {dr}") from None
        except OSError as exc:
            raise _classify(exc, source=False, colls=(self.src, self.dst)) from None

    def transfer_dir(self, sgp: str, sreal: str, dgp: str, dreal: str) -> None:
        t = self.task
        for esg, ereal, edg, edr, est in self.walk(sgp, sreal, dgp, dreal):
            t.bump(files=1, subtasks_total=1)
            self.transfer_one(esg, ereal, edg, edr, est, {})
        if self.req.get("delete_destination_extra"):
            self.delete_extra(sreal, dreal)

    def delete_extra(self, sreal: str, dreal: str) -> None:
        """Remove destination entries that have no source counterpart (excluded names are kept)."""
        rules = self.req.get("filter_rules")
        for dirpath, dirnames, filenames in os.walk(dreal):
            self.check_stop()
            rel = os.path.relpath(dirpath, dreal)
            sdir = os.path.normpath(os.path.join(sreal, rel))
            for name in list(dirnames):
                if not _match_rules(rules, name, True):
                    dirnames.remove(name)
                    continue
                if not os.path.isdir(os.path.join(sdir, name)):
                    shutil.rmtree(os.path.join(dirpath, name), ignore_errors=True)
                    dirnames.remove(name)
            for name in filenames:
                if not _match_rules(rules, name, False):
                    continue
                if not os.path.lexists(os.path.join(sdir, name)):
                    os.unlink(os.path.join(dirpath, name))

    def needs_copy(self, sreal: str, dreal: str, st: os.stat_result) -> bool:
        level = self.req.get("sync_level")
        if level is None:
            return True
        try:
            dst = os.stat(dreal)
        except OSError:
            return True
        if level == 0:
            return False
        if level == 1:
            return dst.st_size != st.st_size
        if level == 2:
            return int(dst.st_mtime) < int(st.st_mtime)
        if dst.st_size != st.st_size:
            return True
        same = _md5_file(sreal) == _md5_file(dreal)
        self.task.bump(bytes_checksummed=st.st_size)
        return not same

    def transfer_one(self, sgp: str, sreal: str, dgp: str, dreal: str, st: os.stat_result, item: dict[str, Any]) -> None:
        assert self.src is not None and self.dst is not None
        try:
            self.with_retries("copy", self.copy_file, sgp, sreal, dgp, dreal, st, item)
        except TaskError as err:  # a skipped source error
            self.skip(err, sgp, dgp, False)

    def copy_file(self, sgp: str, sreal: str, dgp: str, dreal: str, st: os.stat_result, item: dict[str, Any]) -> None:
        assert self.src is not None and self.dst is not None
        t = self.task
        self.path_fault(self.src, sgp, source=True)
        self.path_fault(self.dst, dgp, source=False)
        try:
            st = os.stat(sreal)
        except OSError as exc:
            raise _classify(exc, source=True, colls=(self.src, self.dst)) from None
        parent = os.path.dirname(dreal)
        if parent not in self.safe_dirs:
            if not self.dst.inside(parent):
                raise TaskError("PERMISSION_DENIED", f"Path not allowed: {dgp}")
            self.safe_dirs.add(parent)
        try:
            dst_st: os.stat_result | None = os.lstat(dreal)
        except FileNotFoundError:
            dst_st = None
        except OSError as exc:
            raise _classify(exc, source=False, colls=(self.src, self.dst)) from None
        if dst_st is not None and stat_mod.S_ISLNK(dst_st.st_mode):
            if not self.dst.inside(dreal):
                raise TaskError("PERMISSION_DENIED", f"Path not allowed: {dgp}")
            dst_st = os.stat(dreal) if os.path.exists(dreal) else None
        same_file = dst_st is not None and (dst_st.st_dev, dst_st.st_ino) == (st.st_dev, st.st_ino)
        if same_file or not self.needs_copy(sreal, dreal, st):
            t.bump(files_skipped=1, subtasks_succeeded=1)
            return
        self.check_quota(st.st_size, dreal)
        verify = bool(self.req.get("verify_checksum"))
        checksum = None
        try:
            if parent not in self.made_dirs:
                os.makedirs(parent, exist_ok=True)
                self.made_dirs.add(parent)
            checksum = self.stream(sreal, dreal, st.st_size, hashing=verify)
        except OSError as exc:
            raise _classify(exc, source=exc.filename == sreal, colls=(self.src, self.dst)) from None
        if self.faults.path_fault(self.dst.id, dgp, kinds=("checksum",)):
            _corrupt(dreal)
        if verify:
            ext = item.get("external_checksum")
            if ext and ext.lower() != checksum:
                raise TaskError("EXTERNAL_CHECKSUM_MISMATCH", f"source checksum {checksum} != external checksum {ext}")
            if _md5_file(dreal) != checksum:
                raise TaskError("VERIFY_CHECKSUM", f"checksum mismatch for {dgp}")
        if self.req.get("preserve_timestamp"):
            os.utime(dreal, ns=(st.st_atime_ns, st.st_mtime_ns))
        with t.lock:
            t.counters["files_transferred"] += 1
            t.counters["subtasks_succeeded"] += 1
            t.successful.append(
                {
                    "DATA_TYPE": "successful_transfer",
                    "source_path": sgp,
                    "destination_path": dgp,
                    "size": st.st_size,
                    "checksum": checksum,
                    "checksum_algorithm": "MD5" if checksum else None,
                    "dynamic": False,
                }
            )
        if self.quota_used is not None:
            self.quota_used += st.st_size

    def check_quota(self, size: int, dreal: str) -> None:
        assert self.dst is not None
        quota = self.dst.spec.quota_bytes
        if quota is None:
            return
        if self.quota_used is None:
            total = 0
            for dirpath, _, files in os.walk(self.dst.root_real):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(dirpath, name)).st_size
                    except OSError:
                        pass
            self.quota_used = total
        existing = os.path.getsize(dreal) if os.path.isfile(dreal) else 0
        if self.quota_used - existing + size > quota:
            raise TaskError("QUOTA_EXCEEDED", f"quota of {quota} bytes exceeded on {self.dst.display_name}")

    def current_rate(self) -> float | None:
        """The bandwidth cap now in force (run-time faults first, then the collection config)."""
        assert self.src is not None and self.dst is not None
        caps = [
            c
            for c in (self.faults.bandwidth(self.src.id), self.faults.bandwidth(self.dst.id), self.src.spec.bandwidth, self.dst.spec.bandwidth)
            if c
        ]
        return min(caps) if caps else None

    def throttle(self, pace: float, rate: float) -> float:
        """Wait until ``pace`` in short steps; a changed or removed cap re-paces the rest."""
        while True:
            now = time.monotonic()
            if pace <= now:
                return pace
            self.sleep(min(0.1, pace - now))
            new_rate = self.current_rate()
            if new_rate != rate:
                now = time.monotonic()
                if not new_rate:
                    return now
                pace = now + max(0.0, pace - now) * rate / new_rate
                rate = new_rate

    def stream(self, sreal: str, dreal: str, size: int, *, hashing: bool) -> str | None:
        """Copy the bytes, counting them live; MD5 of the source when ``hashing``.

        A bandwidth cap is re-read every chunk (so it can change mid-transfer) and
        enforced with a simple pacing clock: after ``n`` bytes at rate ``r`` the next
        chunk may start ``n / r`` seconds later.
        """
        t = self.task
        h = hashlib.md5(usedforsecurity=False) if hashing else None
        buf = bytearray(HASH_CHUNK) if h is not None else None
        pace = time.monotonic()
        sent = 0
        # raw descriptors: one open(2) each, none of io.open's extra fstat/ioctl calls
        sfd = os.open(sreal, os.O_RDONLY | os.O_CLOEXEC)
        try:
            dfd = os.open(dreal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:
                while True:
                    self.check_stop()
                    rate = self.current_rate()
                    chunk = max(4096, min(CHUNK, int(rate / 10))) if rate else CHUNK
                    if h is not None and buf is not None:
                        n = os.readv(sfd, [memoryview(buf)[: min(chunk, HASH_CHUNK)]])
                        if not n:
                            break
                        view = memoryview(buf)[:n]
                        h.update(view)
                        while view:
                            view = view[os.write(dfd, view) :]
                    else:
                        if sent >= size:
                            break  # the size stat'ed before the copy: saves the final empty sendfile
                        n = os.sendfile(dfd, sfd, None, chunk)
                        if n == 0:
                            break
                    sent += n
                    t.bump(bytes_transferred=n)
                    now = time.monotonic()
                    if rate:
                        pace = self.throttle(max(pace, now - 0.1) + n / rate, rate)
                    else:
                        pace = now
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        return h.hexdigest() if h is not None else None

    # ---- delete

    def run_delete(self) -> None:
        t = self.task
        assert self.src is not None
        t.add_event("STARTED", json.dumps({"type": "Delete"}), description="started")
        for item in self.req.get("DATA", []):
            t.bump(subtasks_total=1)
            self.check_stop()
            path = item["path"]
            try:
                gpath, real = self.src.resolve(path)
            except PathEscape:
                t.bump(faults=1)
                t.add_event("PERMISSION_DENIED", f"Path not allowed: {path}", is_error=True)
                raise _Stop("PERMISSION_DENIED", f"Path not allowed: {path}") from None
            targets = self.expand(gpath, real)
            if not targets:
                if self.req.get("ignore_missing"):
                    t.bump(subtasks_succeeded=1)
                    continue
                t.bump(faults=1)
                t.add_event("FILE_NOT_FOUND", f"No such file or directory: {gpath}", is_error=True)
                raise _Stop("FILE_NOT_FOUND", f"No such file or directory: {gpath}")
            for tg, tr in targets:
                self.with_retries("delete", self.delete_one, tg, tr)
            t.bump(subtasks_succeeded=1)

    def expand(self, gpath: str, real: str) -> list[tuple[str, str]]:
        assert self.src is not None
        name = os.path.basename(real)
        if self.req.get("interpret_globs") and any(ch in name for ch in "*?["):
            parent = os.path.dirname(real)
            try:
                names = sorted(n for n in os.listdir(parent) if fnmatch.fnmatchcase(n, name))
            except OSError:
                return []
            gparent = gpath.rsplit("/", 1)[0] or ""
            return [(f"{gparent}/{n}", os.path.join(parent, n)) for n in names]
        return [(gpath, real)] if os.path.lexists(real) else []

    def delete_one(self, gpath: str, real: str) -> None:
        assert self.src is not None
        t = self.task
        self.path_fault(self.src, gpath, source=False)
        if gpath == "/":
            raise TaskError("PERMISSION_DENIED", "Refusing to delete the collection root")
        try:
            if os.path.isdir(real) and not os.path.islink(real):
                if not self.req.get("recursive"):
                    raise TaskError("IS_A_DIRECTORY", f"{gpath} is a directory and recursive is false")
                files = dirs = 0
                for dirpath, dirnames, filenames in os.walk(real, topdown=False):
                    self.check_stop()
                    for name in filenames:
                        os.unlink(os.path.join(dirpath, name))
                        files += 1
                    for name in dirnames:
                        p = os.path.join(dirpath, name)
                        if os.path.islink(p):
                            os.unlink(p)
                        else:
                            os.rmdir(p)
                        dirs += 1
                os.rmdir(real)
                t.bump(files=files, directories=dirs + 1)
            else:
                os.unlink(real)
                t.bump(files=1)
        except FileNotFoundError:
            if not self.req.get("ignore_missing"):
                raise TaskError("FILE_NOT_FOUND", f"No such file or directory: {gpath}") from None
        except OSError as exc:
            raise _classify(exc, source=False, colls=(self.src, self.dst)) from None


class TaskEngine:
    """All tasks, the admission queue, worker threads and (optionally) persistence."""

    def __init__(
        self,
        collections: CollectionRegistry,
        faults: FaultState,
        *,
        state_dir: Path | None = None,
        retry_interval: float = 1.0,
        max_active_transfers: int = 3,
        max_active_deletes: int = 3,
    ) -> None:
        self.collections = collections
        self.faults = faults
        self.retry_interval = retry_interval
        self.limits = {"TRANSFER": max_active_transfers, "DELETE": max_active_deletes}
        self.tasks: dict[str, Task] = {}
        self.submissions: dict[str, str] = {}
        self._lock = threading.RLock()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._workers: dict[str, threading.Thread] = {}
        self._path = state_dir / "tasks.json" if state_dir else None
        self._load()
        self._ticker = threading.Thread(target=self._tick_loop, name="globus-emu-ticker", daemon=True)
        self._ticker.start()

    # ---- persistence

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        data = json.loads(self._path.read_text(encoding="utf-8"))
        for raw in data.get("tasks", []):
            task = Task.from_json(raw)
            if task.status not in FINISHED:  # interrupted by the restart: run it again
                task.counters = dict.fromkeys(COUNTERS, 0)
                task.successful, task.skipped = [], []
                task.nice_status = task.nice_status_short_description = "Queued"
                task.is_ok = True
                task.started_at = None
                task.add_event("UNPAUSED", "emulator restarted; the task is run again", description="unpaused")
            self.tasks[task.task_id] = task
        self.submissions = dict(data.get("submissions", {}))

    def save(self) -> None:
        if self._path is None:
            return
        with self._lock:
            tasks = list(self.tasks.values())
            subs = dict(self.submissions)
        atomic_write_json(self._path, {"tasks": [t.to_json() for t in tasks], "submissions": subs})

    def mark_dirty(self) -> None:
        self._dirty.set()

    def _tick_loop(self) -> None:
        while not self._stopping.wait(0.2):
            self.tick()
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    self.save()
                except OSError:
                    log.exception("could not save emulator state")

    def tick(self) -> None:
        """Expire queued tasks past their deadline; admit queued ones when slots free."""
        now = time.time()
        with self._lock:
            for task in self.tasks.values():
                if not task.running and task.status in ("ACTIVE", "INACTIVE") and now > task.deadline:
                    self._finish(task, "FAILED", {"code": "EXPIRED", "description": DESCRIPTIONS["EXPIRED"]}, "EXPIRED")
            self._admit()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (their tasks stay unfinished, so they run again after a restart) and save."""
        if self._stopping.is_set() and not self._workers:
            return
        self._stopping.set()
        with self._lock:
            workers = list(self._workers.values())
            for task in self.tasks.values():
                task.cancel_event.set()  # wakes sleepers; check_stop sees `stopping` first
        end = time.monotonic() + timeout
        for thread in workers:
            thread.join(max(0.0, end - time.monotonic()))
        self._ticker.join(timeout=2)
        self.save()

    # ---- submission

    def new_submission_id(self) -> str:
        return str(uuid.uuid4())

    def submit(self, task: Task) -> tuple[Task, bool]:
        """Register ``task``; returns (task, created) — an existing one for a reused submission_id."""
        with self._lock:
            existing = self.submissions.get(task.submission_id)
            if existing and existing in self.tasks:
                return self.tasks[existing], False
            self.tasks[task.task_id] = task
            self.submissions[task.submission_id] = task.task_id
            self._admit()
        self.mark_dirty()
        return task, True

    def _admit(self) -> None:
        if self._stopping.is_set():
            return
        with self._lock:
            running: dict[tuple[str, str], int] = {}
            for t in self.tasks.values():
                if t.running:
                    running[(t.owner_id, t.type)] = running.get((t.owner_id, t.type), 0) + 1
            for t in sorted(self.tasks.values(), key=lambda x: x.request_time):
                if t.status != "ACTIVE" or t.running:
                    continue
                key = (t.owner_id, t.type)
                if running.get(key, 0) >= self.limits[t.type]:
                    continue
                running[key] = running.get(key, 0) + 1
                t.running = True
                thread = threading.Thread(target=self._run, args=(t,), name=f"globus-task-{t.task_id[:8]}", daemon=True)
                self._workers[t.task_id] = thread
                thread.start()

    def _run(self, task: Task) -> None:
        runner = _Runner(self, task)
        with task.lock:
            task.started_at = time.time()
            task.nice_status, task.nice_status_short_description, task.is_ok = "OK", "OK", True
        try:
            if task.type == "TRANSFER":
                runner.run_transfer()
            else:
                runner.run_delete()
        except _Shutdown:
            log.info("task %s interrupted by shutdown; it runs again after a restart", task.task_id)
        except _Stop as stop:
            if stop.code not in ("CANCELED", "EXPIRED") and not any(e["code"] == stop.code for e in task.events):
                task.bump(faults=1)
                task.add_event(stop.code, stop.details, is_error=True)
            self._finish(task, "FAILED", {"code": stop.code, "description": DESCRIPTIONS.get(stop.code, stop.details)}, stop.code, stop.details)
        except Exception as exc:  # a bug in the emulator must still end the task visibly
            log.exception("task %s crashed", task.task_id)
            self._finish(task, "FAILED", {"code": "INTERNAL_ERROR", "description": f"emulator error: {type(exc).__name__}"}, "INTERNAL_ERROR")
        else:
            self._finish(task, "SUCCEEDED", None, "SUCCEEDED")
        finally:
            with self._lock:
                task.running = False
                self._workers.pop(task.task_id, None)
                self._admit()

    def _finish(self, task: Task, status: str, fatal: dict[str, str] | None, event: str, details: str | None = None) -> None:
        with task.lock:
            if task.status in FINISHED:
                return
            c = task.counters
            pending = max(
                0,
                c["subtasks_total"] - c["subtasks_succeeded"] - c["subtasks_failed"] - c["subtasks_canceled"] - c["subtasks_expired"] - c["subtasks_skipped_errors"],
            )
            if event == "CANCELED":
                c["subtasks_canceled"] += max(pending, 1)
                c["subtasks_total"] += 0 if pending else 1
            elif event == "EXPIRED":
                c["subtasks_expired"] += max(pending, 1)
                c["subtasks_total"] += 0 if pending else 1
            elif status == "FAILED":
                c["subtasks_failed"] += max(pending, 1)
                c["subtasks_total"] += 0 if pending else 1
            c["subtasks_retrying"] = 0
        if event == "CANCELED":
            task.add_event("CANCELED", details or "Canceled by the task owner", is_error=True, description="canceled")
        elif event == "EXPIRED":
            task.add_event("EXPIRED", details or "The task deadline was reached", is_error=True, description="deadline expired")
        elif event == "SUCCEEDED":
            task.add_event("SUCCEEDED", json.dumps({"files_succeeded": task.counters["files_transferred"]}), description="succeeded")
        with task.lock:
            task.status = status
            task.fatal_error = fatal
            task.completion_time = time.time()
            task.nice_status = task.nice_status_short_description = None
            task.is_ok = None
        task.done_event.set()
        self.mark_dirty()

    # ---- queries and actions

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self.tasks.get(task_id.lower())

    def list_for(self, owner_id: str) -> list[Task]:
        with self._lock:
            return [t for t in self.tasks.values() if t.owner_id == owner_id]

    def suspend(self, task: Task, nice_status: str = "Creds Expired") -> bool:
        """Make an unfinished task INACTIVE (what expired credentials do to a Globus task)."""
        with task.lock:
            if task.status in FINISHED:
                return False
            task.status = "INACTIVE"
            task.nice_status = task.nice_status_short_description = nice_status
            task.is_ok = False
        task.add_event("PAUSED", f"task suspended: {nice_status}", is_error=True, description="paused")
        self.mark_dirty()
        return True

    def resume(self, task: Task) -> bool:
        """Back to ACTIVE after :meth:`suspend`."""
        with task.lock:
            if task.status != "INACTIVE":
                return False
            task.status = "ACTIVE"
            queued = not task.running
            task.nice_status = task.nice_status_short_description = "Queued" if queued else "OK"
            task.is_ok = True
        task.add_event("UNPAUSED", "task resumed", description="unpaused")
        with self._lock:
            self._admit()
        self.mark_dirty()
        return True

    def cancel(self, task: Task, wait: float = 10.0) -> str:
        """Cancel as the owner; returns Canceled, CancelAccepted or TaskComplete."""
        if task.status in FINISHED:
            return "TaskComplete"
        task.cancel_event.set()
        with self._lock:
            if not task.running:
                self._finish(task, "FAILED", {"code": "CANCELED", "description": "canceled"}, "CANCELED")
        return "Canceled" if task.done_event.wait(wait) else "CancelAccepted"
