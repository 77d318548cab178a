"""The delete run: a Globus DELETE task removing files and trees from one collection.

Honours ``recursive`` (a directory without it fails IS_A_DIRECTORY), ``ignore_missing``
and ``interpret_globs`` (shell patterns in the last path component). The collection
root is never deleted: that is refused as a permission error, which the shared retry
model (:mod:`.runner`) retries until the task is cancelled or expires, as Globus does.
"""

from __future__ import annotations

import fnmatch
import json
import os

from .collections import PathEscape
from .runner import Runner, TaskError, TaskStop, classify

__all__ = ["DeleteRun"]


class DeleteRun(Runner):
    """One DELETE task: its items, in order, on the task's (source) collection."""

    def run(self) -> None:
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
                raise TaskStop("PERMISSION_DENIED", f"Path not allowed: {path}") from None
            targets = self.expand(gpath, real)
            if not targets:
                if self.req.get("ignore_missing"):
                    t.bump(subtasks_succeeded=1)
                    continue
                t.bump(faults=1)
                t.add_event("FILE_NOT_FOUND", f"No such file or directory: {gpath}", is_error=True)
                raise TaskStop("FILE_NOT_FOUND", f"No such file or directory: {gpath}")
            for tg, tr in targets:
                self.with_retries(self.delete_one, tg, tr)
            t.bump(subtasks_succeeded=1)

    def expand(self, gpath: str, real: str) -> list[tuple[str, str]]:
        """The (Globus path, real path) pairs an item names: its glob's matches, or itself if it exists."""
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
            raise classify(exc, source=False, colls=self.colls) from None
