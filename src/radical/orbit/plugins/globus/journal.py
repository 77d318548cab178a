"""The endpoint's task journal: which Globus tasks it tracks, kept across restarts (SQLite).

Without it, an endpoint that restarts forgets every task it was watching until a
client re-attaches them. With it, a session that registers with the same Globus
identity gets that identity's unfinished tasks back (re-adopted, polled), and each
state change that happened meanwhile is told once (:mod:`.plugin`).

What a row holds: the task id, the Globus identity that owns it, label, type, the
last status / nice_status and counters seen, and the last status *told* to clients
(a ``transfer_status`` notification). Never a token, never a path or a file name:
Globus stays the source of truth, the journal only says what to ask it about.

::

    <state dir>/journal.sqlite      one table, tasks(task_id PRIMARY KEY, ...); WAL mode
    TaskJournal                     the blocking SQLite side (tests use it directly)
    AsyncJournal                    the plugin's handle: one thread of its own runs every
                                    SQLite call, writes are coalesced per task and never
                                    waited for, so the event loop never blocks on the disk
    JournalRecorder                 one session's tracker reports its tasks' changes here

A journal that cannot be read (corrupt, another program's, a newer schema) is moved
aside with one warning and a fresh one starts; one that cannot be written at all
disables the journal with one warning. Neither is ever a failure of the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .tracker import Tracked

__all__ = ["JOURNAL_FILE", "RETENTION", "AsyncJournal", "JournalEntry", "JournalRecorder", "TaskJournal"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the journal's file name in the endpoint's state directory
JOURNAL_FILE = "journal.sqlite"
#: seconds a finished task (its end told) stays in the journal before it is pruned
RETENTION = 30 * 24 * 3600.0
#: the schema this module writes (SQLite's ``user_version``); another one is moved aside
SCHEMA_VERSION = 1
_FINISHED = ("SUCCEEDED", "FAILED")
_COLUMNS = "task_id, owner_globus_identity, label, type, status, nice_status, bytes, files, updated, told_status"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    owner_globus_identity TEXT NOT NULL,
    label TEXT,
    type TEXT,
    status TEXT,
    nice_status TEXT,
    bytes INTEGER NOT NULL DEFAULT 0,
    files INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    told_status TEXT
);
CREATE INDEX IF NOT EXISTS tasks_owner ON tasks (owner_globus_identity);
"""


@dataclass(frozen=True)
class JournalEntry:
    """One task as the journal keeps it (no credential: there is no field for one)."""

    task_id: str
    owner: str
    label: str | None = None
    type: str | None = None
    status: str | None = None
    nice_status: str | None = None
    bytes: int = 0
    files: int = 0
    told_status: str | None = None
    updated: float = 0.0

    @property
    def finished_and_told(self) -> bool:
        return self.told_status in _FINISHED


class TaskJournal:
    """The SQLite file, opened by :meth:`open`; every call blocks (run them off the event loop).

    Calls must not overlap (:class:`AsyncJournal` runs them all on one thread).

    :param path: the journal file; its directory is made (mode 0700) if missing
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"TaskJournal({str(self.path)!r}, {'open' if self._db is not None else 'closed'})"

    def open(self) -> None:
        """Open the journal, or start a fresh one when it is missing or unreadable (one log line
        says which).

        :raises OSError / sqlite3.Error: not even a fresh journal can be made here
        """
        existed = self.path.parent.is_dir()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            for suffix in ("-wal", "-shm"):  # left by a journal deleted by hand: not this one's
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            if existed:
                log.warning("globus task journal %s is missing: starting a fresh one (unfinished tasks are not re-adopted)", self.path)
            else:
                log.info("globus task journal: new at %s", self.path)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self._move_aside()
            log.warning("globus task journal %s cannot be read (%s): moved to %s, starting a fresh one", self.path, exc, aside)
            self._db = self._connect()
        self._prune()

    def _connect(self) -> sqlite3.Connection:
        # made 0600 before SQLite opens it: SQLite gives its -wal/-shm files the same mode
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError("quick_check found damage")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version not in (0, SCHEMA_VERSION) or (tables and version == 0):
                raise sqlite3.DatabaseError(f"not a journal of this version (schema {version}, tables {sorted(tables)})")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):  # they belong to the file moved aside, not to a fresh one
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        return aside

    def _prune(self) -> None:
        cutoff = time.time() - RETENTION
        self._require().execute(f"DELETE FROM tasks WHERE told_status IN {_FINISHED!r} AND updated < ?", (cutoff,))

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError(f"{self!r} is not open")
        return self._db

    def write(self, changes: dict[str, JournalEntry | None]) -> None:
        """Record (an entry) or forget (None) tasks, in one transaction. A task keeps the
        owner it was first recorded with."""
        db = self._require()
        with db:
            db.execute("BEGIN")
            for task_id, entry in changes.items():
                if entry is None:
                    db.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,))
                    continue
                db.execute(
                    f"INSERT INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (task_id) DO UPDATE SET label = excluded.label, type = excluded.type, "
                    "status = excluded.status, nice_status = excluded.nice_status, bytes = excluded.bytes, "
                    "files = excluded.files, updated = excluded.updated, told_status = excluded.told_status",
                    (
                        entry.task_id, entry.owner, entry.label, entry.type, entry.status, entry.nice_status,
                        entry.bytes, entry.files, entry.updated or time.time(), entry.told_status,
                    ),
                )

    def unfinished(self, owners: Iterable[str]) -> list[JournalEntry]:
        """The tasks of any of ``owners`` (one Globus identity's ids) whose end was not told yet."""
        wanted = sorted(set(owners))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._require().execute(
            f"SELECT {_COLUMNS} FROM tasks WHERE owner_globus_identity IN ({marks}) "
            f"AND (told_status IS NULL OR told_status NOT IN {_FINISHED!r}) ORDER BY updated",
            wanted,
        )
        return [_entry(row) for row in rows]

    def unfinished_ids(self) -> set[str]:
        """The ids of every task, of any owner, whose end was not told yet."""
        rows = self._require().execute(
            f"SELECT task_id FROM tasks WHERE told_status IS NULL OR told_status NOT IN {_FINISHED!r}"
        )
        return {str(row[0]) for row in rows}

    def get(self, task_id: str) -> JournalEntry | None:
        row = self._require().execute(f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return _entry(row) if row is not None else None

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


def _entry(row: tuple[object, ...]) -> JournalEntry:
    task_id, owner, label, kind, status, nice, nbytes, files, updated, told = row
    return JournalEntry(
        task_id=str(task_id), owner=str(owner), label=_text(label), type=_text(kind), status=_text(status),
        nice_status=_text(nice), bytes=_number(nbytes), files=_number(files), told_status=_text(told),
        updated=float(updated) if isinstance(updated, (int, float)) else 0.0,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> int:
    return value if isinstance(value, int) else 0


class AsyncJournal:
    """The plugin's handle on one :class:`TaskJournal`: its own thread, coalesced writes.

    :meth:`record` and :meth:`forget` return at once (any thread); the rows they name
    reach the file in one transaction on the journal's thread, the latest state of a
    task winning. A write that fails is logged (once per streak) and dropped: the
    journal is a help for restarts, never a reason for a request to fail.

    What is left to re-adopt is what an earlier run of the endpoint left: a task this
    run recorded (tracked here, or adopted once already) is not offered again, so a
    session closed on purpose does not hand its tasks to the next one.
    """

    def __init__(self, journal: TaskJournal) -> None:
        self.journal = journal
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="globus-journal")
        self._lock = threading.Lock()
        self._pending: dict[str, JournalEntry | None] = {}
        self._scheduled = False
        self._failing = False
        #: the tasks this run recorded or forgot: not left by an earlier run
        self._ours: set[str] = set()
        self.closed = False

    def __repr__(self) -> str:
        return f"AsyncJournal({str(self.journal.path)!r})"

    @classmethod
    async def open(cls, path: Path) -> AsyncJournal | None:
        """The journal at ``path`` (fresh when missing or unreadable), or None with one
        warning when no journal can be kept there."""
        handle = cls(TaskJournal(path))
        try:
            await handle._call(handle.journal.open)
        except (OSError, sqlite3.Error) as exc:
            log.warning("globus task journal disabled: cannot keep one at %s (%s); tasks are not re-adopted after a restart", path, exc)
            await handle.close()
            return None
        return handle

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the journal's thread (after every write submitted before)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def record(self, entry: JournalEntry) -> None:
        self._change(entry.task_id, entry)

    def forget(self, task_id: str) -> None:
        self._change(task_id, None)

    def _change(self, task_id: str, entry: JournalEntry | None) -> None:
        with self._lock:
            if self.closed:
                return
            self._ours.add(task_id)
            self._pending[task_id] = entry
            if self._scheduled:
                return
            self._scheduled = True
        self._thread.submit(self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
            self._scheduled = False
        if not batch:
            return
        try:
            self.journal.write(batch)
        except (OSError, sqlite3.Error) as exc:
            if not self._failing:
                log.warning("globus task journal %s: cannot write (%s); later changes are tried again", self.journal.path, exc)
            self._failing = True
        else:
            if self._failing:
                log.info("globus task journal %s: writing again", self.journal.path)
            self._failing = False

    async def unfinished(self, owners: Iterable[str]) -> list[JournalEntry]:
        """The unfinished tasks of ``owners`` an earlier run left; [] if unreadable."""
        try:
            found = await self._call(self.journal.unfinished, list(owners))
        except (OSError, sqlite3.Error) as exc:
            log.warning("globus task journal %s: cannot read (%s); no task re-adopted", self.journal.path, exc)
            return []
        with self._lock:
            return [e for e in found if e.task_id not in self._ours]

    async def left_over(self) -> bool:
        """Whether an earlier run left unfinished tasks of anyone (a local query: when not,
        nobody's identity needs asking)."""
        try:
            found = await self._call(self.journal.unfinished_ids)
        except (OSError, sqlite3.Error):
            return False
        with self._lock:
            return bool(found - self._ours)

    async def close(self) -> None:
        """Write what is pending, close the file and the thread; idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            await self._call(self._flush)
            await self._call(self.journal.close)
        finally:
            self._thread.shutdown(wait=False)


class JournalRecorder:
    """One session's :class:`.tracker.Recorder`: its tasks' rows, under their Globus owner.

    The owner is the task's own ``owner_id`` once a document said it, else the identity
    of the session's credential (:attr:`identities`, set when it is known). A task
    whose owner is not known yet asks for it (``want_identity``) and is written when
    it is known: the session records every tracked task again then.
    """

    def __init__(self, journal: AsyncJournal, want_identity: Callable[[], None] | None = None) -> None:
        self.journal = journal
        self.want_identity = want_identity
        #: the Globus identity ids of the session's credential, primary first ([]: not known yet)
        self.identities: list[str] = []

    def record(self, t: Tracked) -> None:
        owner = t.owner or (self.identities[0] if self.identities else None)
        if owner is None:
            if self.want_identity is not None:
                self.want_identity()
            return
        self.journal.record(
            JournalEntry(
                task_id=t.task_id, owner=owner, label=t.label, type=t.type, status=t.status,
                nice_status=t.nice_status, bytes=t.bytes_transferred, files=t.files_transferred,
                told_status=t.told, updated=time.time(),
            )
        )

    def forget(self, task_id: str) -> None:
        self.journal.forget(task_id)
