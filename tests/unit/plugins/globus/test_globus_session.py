"""GlobusSession against the in-process fake Transfer API: tracking, the poller's call
budget, notifications, faults, fail_fast, 429 and transient errors."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest
from fake_globus import FakeTransfer
from globus_unit_helpers import Recorder, make_session

from radical.orbit.errors import GlobusAuthError, NotFoundError, UsageError
from radical.orbit.plugins.globus import models as m
from radical.orbit.plugins.globus.plugin import PluginGlobus
from radical.orbit.plugins.globus.tracker import STATUS_KEYS

SRC = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
DST = "31ce9ba0-176d-45a5-add3-f37d233ba47d"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def until(pred: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def submit_req(sid: str, **kw: Any) -> m.SubmitTransferRequest:
    return m.SubmitTransferRequest(
        sid=sid, source=SRC, destination="local", items=[{"source": "/a/", "destination": "/~/b/", "recursive": True}], **kw
    )


def test_submit_returns_contract_shape_and_notifies(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        res = await s.submit_transfer(submit_req(s.sid, label="L1", sync_level="checksum"))
        assert {"task_id", "submission_id", "status"} <= set(res)
        assert res["status"] == "ACTIVE"
        doc = fake.tasks[res["task_id"]]["submitted"]
        assert doc["sync_level"] == 3 and doc["destination_endpoint"] == SRC and doc["label"] == "L1"
        assert fake.calls["GET /v0.10/submission_id"] == 1
        first = recorder.topic("transfer_status")[0]
        assert tuple(sorted(first)) == tuple(sorted(STATUS_KEYS))
        assert first["status"] == "ACTIVE" and first["label"] == "L1"
        fake.set(res["task_id"], status="SUCCEEDED", bytes_transferred=10, files_transferred=1, nice_status=None)
        out = await s.task_wait(res["task_id"], timeout=5, polling_interval=0.05)
        assert out == {"task_id": res["task_id"], "completed": True, "status": "SUCCEEDED"}
        last = recorder.topic("transfer_status")[-1]
        assert last["status"] == "SUCCEEDED" and last["bytes_transferred"] == 10
        await until(lambda: not s.info()["poller"]["running"])
        await s.close()

    run(go())


@pytest.mark.parametrize("n", [1, 10, 100, 1000])
def test_poll_cycle_costs_ceil_n_over_page(plugin: PluginGlobus, fake: FakeTransfer, n: int) -> None:
    async def go() -> None:
        s = make_session(plugin, fake, chunk=1000)
        ids = [fake.add_task() for _ in range(n)]
        await s.track(ids)
        before = (s.stats["cycles"], s.stats["task_list_calls"])
        await until(lambda: s.stats["cycles"] >= before[0] + 3)
        cycles = s.stats["cycles"] - before[0]
        calls = s.stats["task_list_calls"] - before[1]
        # a cycle may be in flight when we look: allow one extra chunk set
        assert calls <= (cycles + 1) * math.ceil(n / 1000)
        assert fake.calls["GET /v0.10/task/{id}"] == 0
        await s.close()

    run(go())


@pytest.mark.parametrize("as_json", [False, True])
def test_chunk_shrinks_when_server_rejects_long_urls(plugin: PluginGlobus, fake: FakeTransfer, as_json: bool) -> None:
    async def go() -> None:
        s = make_session(plugin, fake, chunk=1000)
        fake.max_ids = 300
        fake.max_ids_json = as_json
        ids = [fake.add_task() for _ in range(600)]
        out = await s.track(ids)
        assert len(out["tracked"]) == 600
        assert s.info()["poller"]["chunk"] <= 300
        await s.close()

    run(go())


def test_progress_fault_and_fail_fast(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        res = await s.submit_transfer(submit_req(s.sid, fail_fast=True))
        tid = res["task_id"]
        fake.set(tid, bytes_transferred=100, files_transferred=1)
        await until(lambda: recorder.topic("transfer_progress"))
        prog = recorder.topic("transfer_progress")[-1]
        assert prog["bytes_transferred"] == 100 and prog["task_id"] == tid
        fake.fault(tid, "FILE_NOT_FOUND", "file not found")
        await until(lambda: recorder.topic("transfer_fault"))
        fault = recorder.topic("transfer_fault")[0]
        assert fault["code"] == "FILE_NOT_FOUND" and fault["cancelling"] is True
        await until(lambda: recorder.topic("transfer_status")[-1]["status"] == "FAILED")
        assert fake.calls["POST /v0.10/task/{id}/cancel"] == 1
        await s.close()

    run(go())


def test_fault_without_fail_fast_keeps_task(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        fake.fault(tid)
        await until(lambda: recorder.topic("transfer_fault"))
        await asyncio.sleep(0.3)
        assert len(recorder.topic("transfer_fault")) == 1  # reported once, not every cycle
        assert fake.calls["POST /v0.10/task/{id}/cancel"] == 0
        await s.close()

    run(go())


def test_cancel_of_untracked_task_notifies_terminal_state(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task(label="c")
        res = await s.cancel_task(tid)
        assert res["code"] == "Canceled"
        await until(lambda: any(p["status"] == "FAILED" for p in recorder.topic("transfer_status")))
        await s.close()

    run(go())


def test_delete_is_a_tracked_task(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        res = await s.delete(m.DeleteRequest(sid=s.sid, collection="local", paths=["/~/x"], recursive=True, label="del"))
        assert fake.tasks[res["task_id"]]["submitted"]["recursive"] is True
        fake.set(res["task_id"], status="SUCCEEDED")
        await until(lambda: recorder.topic("transfer_status")[-1]["status"] == "SUCCEEDED")
        await s.close()

    run(go())


def test_transient_errors_are_survived_and_counted(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        err = {"code": "ExternalError.Boom", "message": "boom", "request_id": "r1"}
        fake.fail_next.extend([(502, err, {})] * 2)
        await until(lambda: s.stats["errors"] >= 1)
        fake.set(tid, status="SUCCEEDED")
        await until(lambda: recorder.topic("transfer_status")[-1]["status"] == "SUCCEEDED")
        assert any("poll failed" in r.getMessage() for r in caplog.records)
        await s.close()

    run(go())


def test_rate_limit_waits_retry_after(plugin: PluginGlobus, fake: FakeTransfer) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        fake.fail_next.extend([(429, {"code": "RateLimited", "message": "slow down"}, {"Retry-After": "0"})] * 2)
        await until(lambda: s.stats["rate_limited"] >= 1)
        await s.close()

    run(go())


def test_expired_access_token_notifies_and_stops(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        fake.fail_next.append((401, {"code": "AuthenticationFailed", "message": "Token is not active"}, {}))
        await until(lambda: recorder.topic("auth_error"))
        note = recorder.topic("auth_error")[0]
        assert "re-register with a fresh token" in note["message"]
        assert "fake-access-token" not in repr(recorder.events)
        with pytest.raises(GlobusAuthError):
            await s.task_wait(tid, timeout=1, polling_interval=0.1)
        await s.close()

    run(go())


def test_task_wait_holds_no_thread(plugin: PluginGlobus, fake: FakeTransfer) -> None:
    async def go() -> None:
        s = make_session(plugin, fake, workers=2)
        tid = fake.add_task()
        await s.track([tid])
        before = threading.active_count()
        waits = [asyncio.create_task(s.task_wait(tid, timeout=2, polling_interval=0.05)) for _ in range(50)]
        await asyncio.sleep(0.1)
        res = await s.ls(m.LsRequest(sid=s.sid, collection=SRC, path="/"))
        assert res["DATA_TYPE"] == "file_list"
        assert threading.active_count() <= before + 2
        fake.set(tid, status="SUCCEEDED")
        outs = await asyncio.gather(*waits)
        assert all(o["completed"] for o in outs)
        await s.close()

    run(go())


def test_wait_all_and_track_all_active(plugin: PluginGlobus, fake: FakeTransfer) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        a, b = fake.add_task(), fake.add_task()
        done = fake.add_task(status="SUCCEEDED")
        out = await s.track(None)
        assert set(out["tracked"]) == {a, b}
        fake.set(a, status="SUCCEEDED")
        res = await s.wait_all([a, b, done], timeout=0.3)
        assert res["completed"] is False and res["pending"] == [b]
        fake.set(b, status="FAILED")
        res = await s.wait_all([a, b, done], timeout=3)
        assert res["completed"] is True and res["tasks"][b] == "FAILED"
        await s.close()

    run(go())


def test_wait_all_look_ups_keep_to_the_timeout(plugin: PluginGlobus, fake: FakeTransfer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids task_list does not show are looked up one by one; the timeout bounds that too
    (40 unknown ids at 50 ms each took 2 s; with real Globus, 10,000 took hours)."""
    import time
    import uuid

    handle = fake.handle

    def slow(method: str, path: str, qs: Any, body: Any) -> Any:
        if method == "GET" and "/task/" in path:
            time.sleep(0.05)
        return handle(method, path, qs, body)

    monkeypatch.setattr(fake, "handle", slow)

    async def go() -> None:
        s = make_session(plugin, fake)
        real = fake.add_task()
        bogus = [str(uuid.uuid4()) for _ in range(40)]
        t0 = time.monotonic()
        res = await s.wait_all([real, *bogus], timeout=0.3)
        took = time.monotonic() - t0
        assert took < 1.5, took
        assert res["completed"] is False and real in res["pending"]
        unchecked = [t for t in bogus if t in res["pending"]]
        assert unchecked and set(unchecked) | set(res["not_found"]) == set(bogus)
        assert not set(unchecked) & set(res["not_found"])
        monkeypatch.setattr(fake, "handle", handle)
        res = await s.wait_all(bogus, timeout=5)  # a later call goes on with them
        assert res["not_found"] == bogus and res["pending"] == [] and res["completed"] is False
        await s.close()

    run(go())


def test_unknown_task_wait_is_404(plugin: PluginGlobus, fake: FakeTransfer) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        with pytest.raises(NotFoundError):
            await s.task_wait("0d6e5b8e-0000-4000-8000-000000000000", timeout=1, polling_interval=1)
        await s.close()

    run(go())


def test_local_missing_is_400(plugin: PluginGlobus, fake: FakeTransfer) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        s.local_collection = None
        with pytest.raises(UsageError, match="no local Globus collection"):
            await s.ls(m.LsRequest(sid=s.sid))
        assert sum(fake.calls.values()) == 0
        await s.close()

    run(go())


def test_inactive_counts_as_done_for_waits_but_stays_polled(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        fake.set(tid, status="INACTIVE", nice_status="Creds Expired")
        out = await s.task_wait(tid, timeout=5, polling_interval=0.05)
        assert out == {"task_id": tid, "completed": True, "status": "INACTIVE"}  # globus-sdk's rule
        assert s.info()["active"] == 1
        fake.set(tid, status="SUCCEEDED", nice_status=None)
        await until(lambda: recorder.topic("transfer_status")[-1]["status"] == "SUCCEEDED")
        await s.close()

    run(go())


def test_a_poll_overtaken_by_get_task_does_not_undo_its_news(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder) -> None:
    """A poll asked while the task was ACTIVE, answered after the caller's own get_task
    saw it finish: the final status is told once, and never followed by an older one."""

    async def go() -> None:
        s = make_session(plugin, fake)
        tid = fake.add_task()
        await s.track([tid])
        release = threading.Event()
        fake.hold_task_list = release
        s.poller.kick(0)
        await asyncio.to_thread(fake.task_list_held.wait, 5)  # the poll has read ACTIVE
        fake.hold_task_list = None
        fake.set(tid, status="SUCCEEDED", bytes_transferred=10, files_transferred=1, nice_status=None, is_ok=None)
        assert (await s.get_task(tid))["status"] == "SUCCEEDED"
        cycles = s.stats["cycles"]
        release.set()
        await until(lambda: not s.info()["poller"]["running"])
        statuses = [p["status"] for p in recorder.topic("transfer_status")]
        assert statuses == ["ACTIVE", "SUCCEEDED"]
        assert s.stats["cycles"] == cycles  # the held poll was the last cycle: the task is done
        assert [p["bytes_transferred"] for p in recorder.topic("transfer_progress")] == []
        assert s.tracker[tid].status == "SUCCEEDED"
        await s.close()

    run(go())


def test_poller_survives_a_bug_in_a_cycle(plugin: PluginGlobus, fake: FakeTransfer, recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        s = make_session(plugin, fake, max_interval=0.1)
        tid = fake.add_task()
        await s.track([tid])
        fake.set(tid, bytes_transferred="not-a-number")  # int() fails inside _apply
        await until(lambda: s.stats["errors"] >= 1)
        fake.set(tid, bytes_transferred=5, status="SUCCEEDED")
        await until(lambda: recorder.topic("transfer_status")[-1]["status"] == "SUCCEEDED")
        assert any("unexpected error in the poller" in r.getMessage() for r in caplog.records)
        await s.close()

    run(go())
