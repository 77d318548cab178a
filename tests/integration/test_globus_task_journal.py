"""The endpoint's task journal with real processes: emulator, bridge, endpoint (globus).

Transfers are kept ACTIVE by a bandwidth cap, the endpoint is killed (-9), the cap is
lifted so they finish while it is down, and the endpoint is started again with the
same name and HOME. A session of another Globus identity gets none of them; the first
session of the same identity gets each one's final state told exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from globus_stack import LOCAL, TUTORIAL_1, GlobusStack, globus_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TASKS = 4
FILE_BYTES = 256 * 1024
#: bytes/s on the source collection while the endpoint runs: each file takes a minute
SLOW = 4096


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[GlobusStack]:
    with globus_stack(tmp_path) as st:
        yield st


class Statuses:
    """Every ``transfer_status`` the bridge delivers to this client, per task."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        payload = event.get("payload") or {}
        with self.lock:
            self.seen.append((str(payload.get("task_id")), str(payload.get("status"))))

    def count(self, status: str) -> Counter[str]:
        with self.lock:
            return Counter(tid for tid, st in self.seen if st == status)


def wait_for(what: str, pred: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def journal_rows(stack: GlobusStack) -> dict[str, tuple[str, str | None]]:
    """task_id -> (owner, told_status), read from the endpoint's journal (read-only)."""
    path = stack.home / ".radical" / "orbit" / "endpoints" / "ep-globus" / "journal.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT task_id, owner_globus_identity, told_status FROM tasks").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        db.close()
    return {str(t): (str(o), s) for t, o, s in rows}


def globus_status(stack: GlobusStack, token: str, task_id: str) -> str:
    assert stack.emulator is not None
    resp = httpx.get(f"{stack.emulator.url}/v0.10/task/{task_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    resp.raise_for_status()
    return str(resp.json()["status"])


def endpoint_log(stack: GlobusStack) -> str:
    return (stack.logs / "endpoint-ep-globus.log").read_text(encoding="utf-8", errors="replace")


def test_restart_readopts_and_tells_each_end_once(stack: GlobusStack) -> None:
    assert stack.emulator is not None
    for n in range(TASKS):
        stack.write("t1", f"home/dev/journal/f{n}.bin", os.urandom(FILE_BYTES))
    stack.faults(bandwidth={TUTORIAL_1: SLOW})
    bc = stack.client()
    statuses = Statuses()
    bc.register_callback("ep-globus", "globus", "transfer_status", statuses)

    first = stack.token()["access_token"]
    g1 = stack.globus(access_token=first, local_collection=LOCAL)
    ids = [
        g1.submit_transfer(TUTORIAL_1, "local", [{"source": f"/~/journal/f{n}.bin", "destination": f"/journal/f{n}.bin"}], label=f"j{n}")[
            "task_id"
        ]
        for n in range(TASKS)
    ]
    wait_for("every task journaled, told ACTIVE", lambda: all(journal_rows(stack).get(t, ("", None))[1] == "ACTIVE" for t in ids))
    owners = {journal_rows(stack)[t][0] for t in ids}
    assert len(owners) == 1

    proc = stack.endpoints.pop("ep-globus")
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait(10)
    proc.stop()
    stack.faults(bandwidth={})  # the transfers finish while the endpoint is down
    wait_for("every task SUCCEEDED on Globus", lambda: all(globus_status(stack, first, t) == "SUCCEEDED" for t in ids))
    assert statuses.count("SUCCEEDED") == Counter()

    stack.add_endpoint("ep-globus", RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)
    client = stack.new_client()  # another Globus identity: nothing of the journal is its business
    other = stack.globus(client_id=client["client_id"], client_secret=client["client_secret"], local_collection=LOCAL)
    wait_for("the other identity's session looked", lambda: endpoint_log(stack).count("no journaled task to re-adopt") >= 1)
    assert other.session_info()["tracked"] == 0

    told: list[tuple[str, dict[str, Any]]] = []
    g2 = bc.get_endpoint_client("ep-globus").get_plugin("globus")
    g2.register_notification_callback(lambda topic, payload: told.append((topic, payload)), topic="transfer_status")
    g2.register_session(access_token=stack.token()["access_token"], local_collection=LOCAL)  # the same identity, a new token
    wait_for("each end told after the restart", lambda: set(statuses.count("SUCCEEDED")) == set(ids))
    assert g2.session_info()["tracked"] == TASKS

    g3 = stack.globus(access_token=stack.token()["access_token"], local_collection=LOCAL)  # nothing left to adopt
    time.sleep(2.5)  # a few poll cycles of the second session, the third one's look: nothing is told twice
    assert statuses.count("SUCCEEDED") == Counter({t: 1 for t in ids})
    assert sorted(p["task_id"] for topic, p in told if p["status"] == "SUCCEEDED") == sorted(ids)
    assert {p["label"] for _, p in told} == {f"j{n}" for n in range(TASKS)}
    assert g3.session_info()["tracked"] == 0
    assert all(journal_rows(stack)[t][1] == "SUCCEEDED" for t in ids)
    for g in (g1, g2, g3, other):
        with contextlib.suppress(Exception):
            g.close()
