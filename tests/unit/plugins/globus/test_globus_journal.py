"""The endpoint's task journal (plugins/globus/journal.py) and how sessions re-adopt from it.

TaskJournal is SQLite on a temp file (CRUD, a corrupt or foreign file, a missing one,
pruning, file modes); AsyncJournal its one-thread handle; the plugin-level cases run
sessions on the fake Transfer API with the credential's identity given by the test
(the look-up itself is tested against the in-process emulator in test_globus_identity.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from fake_globus import FakeTransfer, fake_transfer_client, mount
from globus_unit_helpers import EXECUTORS, Recorder

from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.globus import journal as journal_mod
from radical.orbit.plugins.globus import models as m
from radical.orbit.plugins.globus import session as session_mod
from radical.orbit.plugins.globus.journal import (
    JOURNAL_FILE,
    AsyncJournal,
    JournalEntry,
    TaskJournal,
)
from radical.orbit.plugins.globus.options import PollSettings
from radical.orbit.plugins.globus.plugin import PluginGlobus
from radical.orbit.plugins.globus.session import GlobusSession
from radical.orbit.plugins.globus.tracker import TaskTracker, Tracked

SRC = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"
TOKEN = {ALICE: "alice-secret-access-token", BOB: "bob-secret-access-token"}


def entry(task_id: str, owner: str = ALICE, **kw: Any) -> JournalEntry:
    kw.setdefault("status", "ACTIVE")
    kw.setdefault("told_status", kw["status"])
    return JournalEntry(task_id=task_id, owner=owner, **kw)


@pytest.fixture
def jpath(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ep1" / JOURNAL_FILE


@pytest.fixture
def journal(jpath: Path) -> Iterator[TaskJournal]:
    j = TaskJournal(jpath)
    j.open()
    yield j
    j.close()


class TestTaskJournal:
    def test_record_update_forget(self, journal: TaskJournal) -> None:
        journal.write({"t1": entry("t1", label="L1", type="TRANSFER"), "t2": entry("t2"), "t3": entry("t3", status="SUCCEEDED")})
        assert [e.task_id for e in journal.unfinished([ALICE])] == ["t1", "t2"]
        journal.write({"t1": entry("t1", status="ACTIVE", nice_status="Queued", bytes=10, files=1, told_status="ACTIVE", label="L1")})
        got = journal.get("t1")
        assert got is not None and (got.nice_status, got.bytes, got.files, got.label) == ("Queued", 10, 1, "L1")
        journal.write({"t2": entry("t2", status="SUCCEEDED"), "t1": None})  # told its end / gone from Globus
        assert journal.unfinished([ALICE]) == [] and journal.get("t1") is None
        assert journal.get("t2") is not None  # kept (pruned after RETENTION)

    def test_told_is_what_counts(self, journal: TaskJournal) -> None:
        """A task seen SUCCEEDED whose end was not told yet is still to be re-adopted."""
        journal.write({"t1": entry("t1", status="SUCCEEDED", told_status="ACTIVE"), "t2": entry("t2", status="ACTIVE", told_status=None)})
        assert {e.task_id for e in journal.unfinished([ALICE])} == {"t1", "t2"}

    def test_identities_are_kept_apart(self, journal: TaskJournal) -> None:
        journal.write({"a1": entry("a1", ALICE), "b1": entry("b1", BOB)})
        assert [e.task_id for e in journal.unfinished([ALICE])] == ["a1"]
        assert [e.task_id for e in journal.unfinished([BOB])] == ["b1"]
        assert [e.task_id for e in journal.unfinished(["c0ffee00-0000-4000-8000-000000000003"])] == []
        assert journal.unfinished([]) == []
        assert {e.task_id for e in journal.unfinished([ALICE, BOB])} == {"a1", "b1"}  # one person's linked identities
        journal.write({"a1": entry("a1", BOB, status="INACTIVE")})  # a task keeps its first owner
        got = journal.get("a1")
        assert got is not None and got.owner == ALICE and got.status == "INACTIVE"

    def test_survives_a_reopen_private_and_in_wal_mode(self, journal: TaskJournal, jpath: Path) -> None:
        journal.write({"t1": entry("t1")})
        journal.close()
        again = TaskJournal(jpath)
        again.open()
        assert [e.task_id for e in again.unfinished([ALICE])] == ["t1"]
        again.close()
        assert stat.S_IMODE(jpath.stat().st_mode) == 0o600
        assert stat.S_IMODE(jpath.parent.stat().st_mode) == 0o700
        with sqlite3.connect(jpath) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.close()

    @pytest.mark.parametrize("content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
    def test_corrupt_file_is_one_warning_and_a_fresh_journal(self, jpath: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
        jpath.parent.mkdir(parents=True)
        jpath.write_bytes(content)
        j = TaskJournal(jpath)
        with caplog.at_level(logging.WARNING):
            j.open()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "cannot be read" in warnings[0] and "starting a fresh one" in warnings[0]
        j.write({"t1": entry("t1")})
        assert [e.task_id for e in j.unfinished([ALICE])] == ["t1"]
        j.close()
        aside = list(jpath.parent.glob(f"{JOURNAL_FILE}.unreadable-*"))
        assert len(aside) == 1 and aside[0].read_bytes() == content

    def test_another_programs_database_is_moved_aside(self, jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
        jpath.parent.mkdir(parents=True)
        with sqlite3.connect(jpath) as db:
            db.execute("CREATE TABLE notes (x TEXT)")
        db.close()
        j = TaskJournal(jpath)
        with caplog.at_level(logging.WARNING):
            j.open()
        j.close()
        assert "not a journal of this version" in caplog.text
        assert list(jpath.parent.glob(f"{JOURNAL_FILE}.unreadable-*"))

    def test_missing(self, jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A first start says so quietly; a journal deleted from an existing directory is a warning."""
        with caplog.at_level(logging.INFO):
            j = TaskJournal(jpath)
            j.open()
            j.close()
        assert [r.levelno for r in caplog.records] == [logging.INFO] and "new at" in caplog.text
        caplog.clear()
        jpath.unlink()
        with caplog.at_level(logging.INFO):
            j.open()
            j.close()
        assert [r.levelno for r in caplog.records] == [logging.WARNING] and "is missing" in caplog.text

    def test_finished_tasks_are_pruned_after_the_retention(self, journal: TaskJournal, jpath: Path) -> None:
        old = time.time() - journal_mod.RETENTION - 60
        journal.write({
            "old-done": entry("old-done", status="SUCCEEDED", updated=old),
            "old-active": entry("old-active", updated=old),
            "new-done": entry("new-done", status="FAILED"),
        })
        journal.close()
        journal.open()
        assert journal.get("old-done") is None
        assert journal.get("old-active") is not None and journal.get("new-done") is not None


class TestAsyncJournal:
    def test_writes_coalesce_and_only_an_earlier_run_is_offered(self, jpath: Path) -> None:
        """Rows this run wrote reach the file (the last state of each task) but are not offered
        for re-adoption: only what an earlier run left is."""
        earlier = TaskJournal(jpath)
        earlier.open()
        earlier.write({"old": entry("old")})
        earlier.close()

        async def go() -> None:
            aj = await AsyncJournal.open(jpath)
            assert aj is not None
            assert await aj.left_over()
            for n in range(50):
                aj.record(entry("t1", bytes=n))
            aj.record(entry("t2"))
            aj.forget("t2")
            assert [e.task_id for e in await aj.unfinished([ALICE])] == ["old"]
            rows = await aj._call(aj.journal.unfinished, [ALICE])
            assert sorted((e.task_id, e.bytes) for e in rows) == [("old", 0), ("t1", 49)]
            aj.record(entry("old", status="SUCCEEDED"))  # adopted and its end told in this run
            assert await aj.unfinished([ALICE]) == [] and not await aj.left_over()
            await aj.close()
            await aj.close()  # idempotent
            aj.record(entry("t3"))  # after close: ignored, not an error

        asyncio.run(go())
        j = TaskJournal(jpath)
        j.open()
        assert j.get("t3") is None and j.get("t1") is not None
        assert [e.task_id for e in j.unfinished([ALICE])] == ["t1"]  # the next run's to adopt
        j.close()

    def test_a_place_without_a_journal_is_one_warning(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")

        async def go() -> None:
            with caplog.at_level(logging.WARNING):
                assert await AsyncJournal.open(blocker / "ep" / JOURNAL_FILE) is None

        asyncio.run(go())
        assert "globus task journal disabled" in caplog.text

    def test_write_failures_are_logged_not_raised(self, jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
        async def go() -> None:
            aj = await AsyncJournal.open(jpath)
            assert aj is not None
            await aj._call(aj.journal.close)  # the file goes away under the handle
            with caplog.at_level(logging.WARNING):
                aj.record(entry("t1"))
                aj.record(entry("t2"))
                assert await aj.unfinished([ALICE]) == []
            await aj.close()

        asyncio.run(go())
        assert "cannot write" in caplog.text and "cannot read" in caplog.text


# -- sessions and the journal -------------------------------------------------------
@pytest.fixture
def who(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The identity each test token acts as (what Globus Auth would say)."""
    said = {TOKEN[ALICE]: [ALICE], TOKEN[BOB]: [BOB]}

    def identities(tc: globus_sdk.TransferClient, name: str = "") -> list[str]:
        ASKED.append(name)
        header = tc.authorizer.get_authorization_header() if tc.authorizer is not None else None
        return list(said.get((header or "").removeprefix("Bearer "), []))

    monkeypatch.setattr(session_mod, "credential_identities", identities)
    return said


#: sessions whose credential's identity was asked for (the who fixture's look-up)
ASKED: list[str] = []


def new_plugin(state: Path, recorder: Recorder) -> PluginGlobus:
    options = {"min_interval": 0.05, "max_interval": 0.2}
    return PluginGlobus(PluginContext(endpoint="ep", notify=recorder, settings=options, state_dir=state))


async def open_session(plugin: PluginGlobus, fake: FakeTransfer, owner: str) -> GlobusSession:
    """What PluginGlobus.open_session does, with a TransferClient on the fake."""
    tc = fake_transfer_client(fake, token=TOKEN[owner])
    mount(tc, fake)
    executor = ThreadPoolExecutor(max_workers=4)
    EXECUTORS.append(executor)
    s = GlobusSession(
        plugin, f"sid-{owner[:4]}-{len(plugin.sessions)}" + "x" * 20, transfer_client=tc, auth_mode="access_token",
        local_collection=SRC, local_source="session", executor=executor, settings=plugin.poll_settings, journal=plugin.journal,
    )
    plugin.sessions[s.sid] = s
    s.adoption = asyncio.create_task(plugin._adopt(s))
    await s.adoption
    return s


async def until(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def statuses(recorder: Recorder, sid: str) -> list[tuple[str, str]]:
    return [(p["task_id"], p["status"]) for (_, s, t, p) in recorder.events if t == "transfer_status" and s == sid]


class TestReadoption:
    def test_restart_readopts_and_tells_once(self, tmp_path: Path, fake: FakeTransfer, who: dict[str, list[str]]) -> None:
        """Tasks active at a stop and finished meanwhile are told once, to the same identity only."""
        state = tmp_path / "state"

        async def go() -> None:
            rec1 = Recorder()
            p1 = new_plugin(state, rec1)
            await p1.start()
            s1 = await open_session(p1, fake, ALICE)
            req = {"source": SRC, "destination": "local", "items": [{"source": "/a", "destination": "/~/a"}]}
            ids = [(await s1.submit_transfer(m.SubmitTransferRequest(sid=s1.sid, label=f"L{n}", **req)))["task_id"] for n in range(3)]
            done_before = ids[2]
            fake.set(done_before, status="SUCCEEDED", nice_status=None)
            await until(lambda: ("SUCCEEDED" in dict(statuses(rec1, s1.sid)).get(done_before, "")))
            await p1.stop()  # the endpoint stops (or dies): its sessions and their pollers go
            for tid in ids[:2]:
                fake.set(tid, status="SUCCEEDED", nice_status=None, bytes_transferred=7, files_transferred=1)

            rec2 = Recorder()
            p2 = new_plugin(state, rec2)
            await p2.start()
            bob = await open_session(p2, fake, BOB)
            assert bob.tracker.tasks == {}  # another identity's journal never leaks in
            alice = await open_session(p2, fake, ALICE)
            assert set(alice.tracker.tasks) == set(ids[:2])  # the one told SUCCEEDED before is not re-adopted
            await until(lambda: len(statuses(rec2, alice.sid)) == 2)
            await asyncio.sleep(0.3)  # several more poll cycles: nothing is told twice
            assert sorted(statuses(rec2, alice.sid)) == sorted((tid, "SUCCEEDED") for tid in ids[:2])
            labels = {p["task_id"]: p["label"] for p in rec2.topic("transfer_status")}
            assert labels == {ids[0]: "L0", ids[1]: "L1"}
            assert statuses(rec2, bob.sid) == []
            again = await open_session(p2, fake, ALICE)  # a later session of the same identity: nothing left
            assert again.tracker.tasks == {}
            await p2.stop()

        asyncio.run(go())
        content = b"".join(p.read_bytes() for p in state.glob(f"{JOURNAL_FILE}*"))
        assert content and all(token.encode() not in content for token in TOKEN.values())

    def test_tasks_a_live_session_tracks_are_not_taken(self, tmp_path: Path, fake: FakeTransfer, who: dict[str, list[str]]) -> None:
        async def go() -> None:
            rec = Recorder()
            plugin = new_plugin(tmp_path / "state", rec)
            await plugin.start()
            first = await open_session(plugin, fake, ALICE)
            req = {"source": SRC, "destination": "local", "items": [{"source": "/a", "destination": "/~/a"}]}
            tid = (await first.submit_transfer(m.SubmitTransferRequest(sid=first.sid, **req)))["task_id"]
            second = await open_session(plugin, fake, ALICE)
            assert tid in first.tracker and tid not in second.tracker
            await plugin.stop()

        asyncio.run(go())

    def test_unknown_identity_adopts_nothing(self, tmp_path: Path, fake: FakeTransfer, who: dict[str, list[str]], caplog: pytest.LogCaptureFixture) -> None:
        earlier = TaskJournal(tmp_path / "state" / JOURNAL_FILE)
        earlier.open()
        earlier.write({"t1": entry("t1", ALICE)})
        earlier.close()

        async def go() -> None:
            plugin = new_plugin(tmp_path / "state", Recorder())
            await plugin.start()
            who.clear()
            with caplog.at_level(logging.INFO):
                s = await open_session(plugin, fake, ALICE)
            assert s.tracker.tasks == {} and s.identities == []
            await plugin.stop()

        asyncio.run(go())
        assert "Globus does not say which identity" in caplog.text

    def test_identity_asked_only_when_needed(self, tmp_path: Path, fake: FakeTransfer, who: dict[str, list[str]]) -> None:
        """Nothing left by an earlier run: registering asks Globus nothing more; the first
        task accepted asks once, so its row has an owner before the first poll."""
        ASKED.clear()

        async def go() -> None:
            plugin = new_plugin(tmp_path / "state", Recorder())
            await plugin.start()
            s = await open_session(plugin, fake, ALICE)
            assert ASKED == [] and s.identities == []
            req = {"source": SRC, "destination": "local", "items": [{"source": "/a", "destination": "/~/a"}]}
            for _ in range(3):
                await s.submit_transfer(m.SubmitTransferRequest(sid=s.sid, **req))
            await until(lambda: s.identities == [ALICE])
            assert len(ASKED) == 1
            await plugin.stop()

        asyncio.run(go())
        j = TaskJournal(tmp_path / "state" / JOURNAL_FILE)
        j.open()
        assert len(j.unfinished([ALICE])) == 3
        j.close()

    def test_without_a_state_dir_nothing_is_kept(self, fake: FakeTransfer) -> None:
        async def go() -> None:
            plugin = PluginGlobus(PluginContext(endpoint="ep", notify=Recorder()))
            await plugin.start()
            assert plugin.journal is None
            await plugin.stop()

        asyncio.run(go())


class TestTrackerRecords:
    """What the tracker hands the journal: every change, with the status last told."""

    def test_changes_and_told(self) -> None:
        seen: list[tuple[str, str | None, str | None, int]] = []
        gone: list[str] = []

        class Rows:
            def record(self, t: Tracked) -> None:
                seen.append((t.task_id, t.status, t.told, t.bytes_transferred))

            def forget(self, task_id: str) -> None:
                gone.append(task_id)

        told: list[dict[str, Any]] = []
        tracker = TaskTracker(PollSettings(), lambda topic, payload: told.append(payload), recorder=Rows())
        tracker.accepted("t1", status="ACTIVE", label="L", kind="TRANSFER", fail_fast=False)
        doc = {"task_id": "t1", "status": "ACTIVE", "nice_status": "OK", "bytes_transferred": 5, "files_transferred": 0, "owner_id": ALICE}
        tracker.fold(doc)
        tracker.fold(doc)  # nothing new: nothing written
        tracker.fold({**doc, "status": "SUCCEEDED", "nice_status": None})
        assert seen == [("t1", "ACTIVE", "ACTIVE", 0), ("t1", "ACTIVE", "ACTIVE", 5), ("t1", "SUCCEEDED", "SUCCEEDED", 5)]
        assert tracker["t1"].owner == ALICE
        assert tracker.adopt(Tracked(task_id="t1")) is False  # tracked already
        tracker.forget("t1")
        tracker.forget("t1")
        assert gone == ["t1"]
