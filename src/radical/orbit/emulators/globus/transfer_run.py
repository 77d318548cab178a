"""The transfer run: a Globus TRANSFER task that really copies bytes between two folders.

Each item is a file, a directory tree (``recursive``) or a symlink item. Copies stream
with ``os.sendfile`` in large chunks on raw descriptors (the kernel moves the bytes); a
checksum is computed only when ``verify_checksum`` or ``sync_level`` 3 asks for one.
Counters advance per chunk, so ``get_task`` shows live progress. What Globus does on
an error (fatal, skipped, retried) is the shared retry model of :mod:`.runner`.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import stat as stat_mod
import threading
import time
from collections.abc import Iterator
from typing import Any

from .collections import CollectionRegistry, PathEscape, globus_time
from .faults import FaultState
from .runner import Runner, TaskError, TaskStop, classify, shown_path
from .task import Task

__all__ = ["TransferRun"]

#: bytes per sendfile(2) call when no bandwidth cap is set
CHUNK = 16 * 1024 * 1024
#: bytes per read when the source is hashed while it is copied
HASH_CHUNK = 4 * 1024 * 1024


def match_rules(rules: list[dict[str, Any]] | None, name: str, is_dir: bool) -> bool:
    """Whether an entry passes the filter rules (first match wins, default include)."""
    for rule in rules or ():
        rtype = rule.get("type")
        if rtype == "file" and is_dir or rtype == "dir" and not is_dir:
            continue
        if fnmatch.fnmatchcase(name, rule.get("name", "")):
            return bool(rule.get("method", "include") == "include")
    return True


def md5_file(path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def corrupt(path: str) -> None:
    """Flip the first byte (or add one to an empty file): an injected silent corruption."""
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]) if first else b"\x00")


class TransferRun(Runner):
    """One TRANSFER task: its items, in order, from the source to the destination collection."""

    def __init__(self, task: Task, *, collections: CollectionRegistry, faults: FaultState, retry_interval: float, stopping: threading.Event) -> None:
        super().__init__(task, collections=collections, faults=faults, retry_interval=retry_interval, stopping=stopping)
        self.quota_used: int | None = None
        self.safe_dirs: set[str] = set()  # destination dirs already checked to stay inside the root
        self.made_dirs: set[str] = set()  # destination dirs known to exist

    def run(self) -> None:
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

    # ---- items

    def transfer_symlink(self, item: dict[str, Any]) -> None:
        """A ``transfer_symlink_item``: recreate the link (its target text) at the destination."""
        assert self.src is not None and self.dst is not None
        try:
            sgp = self.src.normalize(item["source_path"])
            dgp = self.dst.normalize(item["destination_path"])
            src_link = os.path.join(self.src.real(os.path.dirname(sgp)), os.path.basename(sgp))
            dst_link = os.path.join(self.dst.real(os.path.dirname(dgp)), os.path.basename(dgp))
        except PathEscape:
            raise TaskStop("PERMISSION_DENIED", f"Path not allowed: {item['source_path']} -> {item['destination_path']}") from None
        try:
            target = os.readlink(src_link)
            if os.path.lexists(dst_link):
                os.unlink(dst_link)
            os.makedirs(os.path.dirname(dst_link), exist_ok=True)
            os.symlink(target, dst_link)
        except OSError as exc:
            code = "NOT_A_SYMLINK" if exc.errno == errno.EINVAL else classify(exc, source=exc.filename == src_link).code
            raise TaskStop(code, f"{exc.strerror}: {shown_path(exc.filename, self.colls)}") from None
        self.task.bump(symlinks=1)

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
            raise TaskStop("PERMISSION_DENIED", f"Path not allowed: {item['destination_path']}") from None
        try:
            st = self.with_retries(self.stat_source, sgp, sreal)
        except TaskError as err:
            return self.item_error(err, item, False)
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        recursive = item.get("recursive")
        if recursive is None:
            recursive = is_dir
        if recursive and not is_dir:
            raise TaskStop("NOT_A_DIRECTORY", f"Not a directory: {sgp} (recursive item)")
        if not recursive and is_dir:
            raise TaskStop("IS_A_DIRECTORY", f"Is a directory: {sgp} (use recursive)")
        if is_dir:
            self.transfer_dir(sgp, sreal, dgp, dreal)
        else:
            t.bump(files=1, subtasks_total=1)
            self.transfer_one(sgp, sreal, dgp, dreal, st, item)

    def item_error(self, err: TaskError, item: dict[str, Any], is_dir: bool) -> None:
        if self.req.get("skip_source_errors"):
            self.skip(err, item["source_path"], item["destination_path"], is_dir, counted=False)
            return
        raise TaskStop(err.code, err.details)

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
            raise classify(exc, source=True, colls=self.colls) from None

    # ---- directory trees

    def transfer_dir(self, sgp: str, sreal: str, dgp: str, dreal: str) -> None:
        t = self.task
        for esg, ereal, edg, edr, est in self.walk(sgp, sreal, dgp, dreal):
            t.bump(files=1, subtasks_total=1)
            self.transfer_one(esg, ereal, edg, edr, est, {})
        if self.req.get("delete_destination_extra"):
            self.delete_extra(sreal, dreal)

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
                self.with_retries(self.make_dir, dr)
                entries = self.with_retries(self.list_dir, sg, sr)
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
                if not match_rules(rules, name, is_dir):
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
            raise classify(exc, source=True, colls=self.colls) from None

    def make_dir(self, dr: str) -> None:
        try:
            os.makedirs(dr, exist_ok=True)
            self.made_dirs.add(dr)
        except (FileExistsError, NotADirectoryError):
            raise TaskError("NOT_A_DIRECTORY", f"Destination exists and is not a directory: {dr}") from None
        except OSError as exc:
            raise classify(exc, source=False, colls=self.colls) from None

    def delete_extra(self, sreal: str, dreal: str) -> None:
        """Remove destination entries that have no source counterpart (excluded names are kept)."""
        rules = self.req.get("filter_rules")
        for dirpath, dirnames, filenames in os.walk(dreal):
            self.check_stop()
            rel = os.path.relpath(dirpath, dreal)
            sdir = os.path.normpath(os.path.join(sreal, rel))
            for name in list(dirnames):
                if not match_rules(rules, name, True):
                    dirnames.remove(name)
                    continue
                if not os.path.isdir(os.path.join(sdir, name)):
                    shutil.rmtree(os.path.join(dirpath, name), ignore_errors=True)
                    dirnames.remove(name)
            for name in filenames:
                if not match_rules(rules, name, False):
                    continue
                if not os.path.lexists(os.path.join(sdir, name)):
                    os.unlink(os.path.join(dirpath, name))

    # ---- one file

    def needs_copy(self, sreal: str, dreal: str, st: os.stat_result) -> bool:
        """The ``sync_level`` rule: 0 exists, 1 size differs, 2 source newer, 3 MD5 differs."""
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
        same = md5_file(sreal) == md5_file(dreal)
        self.task.bump(bytes_checksummed=st.st_size)
        return not same

    def transfer_one(self, sgp: str, sreal: str, dgp: str, dreal: str, st: os.stat_result, item: dict[str, Any]) -> None:
        try:
            self.with_retries(self.copy_file, sgp, sreal, dgp, dreal, st, item)
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
            raise classify(exc, source=True, colls=self.colls) from None
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
            raise classify(exc, source=False, colls=self.colls) from None
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
            raise classify(exc, source=exc.filename == sreal, colls=self.colls) from None
        if self.faults.path_fault(self.dst.id, dgp, kinds=("checksum",)):
            corrupt(dreal)
        if verify:
            ext = item.get("external_checksum")
            if ext and ext.lower() != checksum:
                raise TaskError("EXTERNAL_CHECKSUM_MISMATCH", f"source checksum {checksum} != external checksum {ext}")
            if md5_file(dreal) != checksum:
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
        """QUOTA_EXCEEDED when writing ``size`` bytes would pass the destination's ``quota_bytes``."""
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
