"""The globus plugin end to end: client -> bridge -> endpoint -> globus-sdk -> emulator.

One emulator-backed stack per module (real processes on 127.0.0.1; endpoint at
DEBUG). Covers every client method, access token / refresh token / client
credentials, token expiry and renewal mid-transfer, ConsentRequired on a mapped
collection, notifications through the SDK callbacks with their exact payload keys,
cancel, fault injection with and without fail_fast -- and finally searches every
file written for the credentials used.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from globus_stack import (
    LOCAL,
    MAPPED,
    TUTORIAL_1,
    TUTORIAL_2,
    GlobusStack,
    globus_stack,
    unique_dir,
)

from radical.orbit.errors import (
    ConsentRequiredError,
    GlobusAuthError,
    NotFoundError,
    UsageError,
    ValidationError,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STATUS_KEYS = {"task_id", "status", "label", "bytes_transferred", "files_transferred", "nice_status"}
#: every credential handed out in this module; the last test looks for them on disk
SECRETS: list[str] = []
MODULE_START = time.time()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    with globus_stack(tmp_path_factory.mktemp("globus-e2e")) as st:
        yield st


def remember(tok: dict[str, Any]) -> dict[str, Any]:
    for key in ("access_token", "refresh_token", "client_secret"):
        if tok.get(key):
            SECRETS.append(tok[key])
    return tok


class Inbox:
    """Collects notifications delivered to a GlobusClient callback."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        with self.cond:
            self.items.append((topic, payload))
            self.cond.notify_all()

    def of(self, topic: str, task_id: str | None = None) -> list[dict[str, Any]]:
        with self.cond:
            return [p for t, p in self.items if t == topic and (task_id is None or p.get("task_id") == task_id)]

    def wait(self, pred: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"notification not received; got {self.items}")
                self.cond.wait(left)


def slow_source(stack: GlobusStack, size: int = 400_000) -> str:
    """A file on tutorial 2 plus a bandwidth cap, so a transfer of it lasts a few seconds."""
    name = f"slow-{uuid.uuid4().hex[:6]}.bin"
    stack.write("t2", f"home/dev/{name}", b"\0" * size)
    stack.faults(bandwidth={TUTORIAL_2: 100_000})
    return f"/~/{name}"


def test_plugin_is_listed_and_needs_credentials(stack: GlobusStack) -> None:
    ec = stack.client().get_endpoint_client("ep-globus")
    info = ec.list_plugins()  # by name
    assert info["globus"]["enabled"] is True
    g = ec.get_plugin("globus")  # must not fail before credentials are given
    with pytest.raises(UsageError, match="register_session"):
        g.ls(TUTORIAL_1)


def test_every_method_with_an_access_token(stack: GlobusStack) -> None:
    tok = remember(stack.token())
    g = stack.globus()
    g.register_session(access_token=tok["access_token"])
    listing = g.ls(TUTORIAL_1, "/~/share/godata/")
    assert sorted(e["name"] for e in listing["DATA"]) == ["file1.txt", "file2.txt", "file3.txt"]
    assert len(g.ls(TUTORIAL_1, "/~/share/godata/", filter="name:file1.txt")["DATA"]) == 1
    assert g.stat(TUTORIAL_1, "/~/share/godata/file1.txt")["size"] > 0
    # a collection as uuid.UUID and a path as PurePosixPath travel as strings
    from pathlib import PurePosixPath

    assert g.ls(uuid.UUID(TUTORIAL_1), PurePosixPath("/~/share/godata"))["DATA"] == listing["DATA"]
    out = unique_dir()
    assert g.mkdir("local", out)["code"] == "DirectoryCreated"
    sub = g.submit_transfer(
        TUTORIAL_1,
        "local",
        items=[{"source": "/~/share/godata/", "destination": out + "in/", "recursive": True}],
        label="my transfer",
        sync_level="checksum",
        verify_checksum=True,
        preserve_timestamp=True,
        deadline="2030-01-01T00:00:00Z",
        filter_rules=[{"name": "file3.txt", "method": "exclude", "type": "file"}],
    )
    assert set(sub) >= {"task_id", "submission_id", "status"} and sub["status"] == "ACTIVE"
    assert g.task_wait(sub["task_id"], timeout=60) == {"task_id": sub["task_id"], "completed": True, "status": "SUCCEEDED"}
    task = g.get_task(sub["task_id"])
    assert task["status"] == "SUCCEEDED" and task["label"] == "my transfer" and task["sync_level"] == 3
    assert task["verify_checksum"] is True and task["preserve_timestamp"] is True
    assert task["deadline"].startswith("2030-01-01")
    assert sorted(e["name"] for e in g.ls("local", out + "in/")["DATA"]) == ["file1.txt", "file2.txt"]
    assert g.task_events(sub["task_id"])["DATA"]
    assert len(g.successful_transfers(sub["task_id"])["DATA"]) == 2
    assert g.skipped_errors(sub["task_id"])["DATA"] == []
    assert "pause_rules" in g.pause_info(sub["task_id"])
    assert g.rename("local", out + "in/file1.txt", out + "in/renamed.txt")["code"] == "FileRenamed"
    again = g.submit_transfer(TUTORIAL_1, LOCAL, [{"source": "/~/share/godata/file1.txt", "destination": out + "dup.txt"}], submission_id=sub["submission_id"])
    assert again["task_id"] == sub["task_id"]  # idempotent retry: Globus says Duplicate
    tasks = g.list_tasks(limit=5)
    assert sub["task_id"] in [t["task_id"] for t in tasks["DATA"]]
    assert all(t["status"] == "SUCCEEDED" for t in g.list_tasks(status="SUCCEEDED")["DATA"])
    found = g.endpoint_search("Tutorial")
    assert {TUTORIAL_1, TUTORIAL_2} <= {e["id"] for e in found["DATA"]}
    assert g.get_endpoint(TUTORIAL_1)["display_name"] == "Globus Tutorial Collection 1"
    assert g.get_endpoint("local")["id"] == LOCAL
    dele = g.delete("local", [out], recursive=True, label="cleanup")
    assert set(dele) >= {"task_id", "submission_id", "status"}
    res = g.wait_all([dele["task_id"], sub["task_id"]], timeout=60)
    assert res["completed"] is True and res["tasks"][dele["task_id"]] == "SUCCEEDED"
    with pytest.raises(NotFoundError):
        g.ls("local", out)
    assert g.track([sub["task_id"]])["finished"] == {sub["task_id"]: "SUCCEEDED"}
    info = g.session_info()
    assert info["auth_mode"] == "access_token" and info["local_collection"] == LOCAL
    g.close()


def test_bad_input_is_rejected_before_globus(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    def globus_calls() -> dict[str, int]:
        return {k: v for k, v in stack.admin("GET", "counters")["counters"].items() if "/_emulator" not in k}

    before = globus_calls()
    with pytest.raises(ValidationError) as info:
        g.submit_transfer("not-a-uuid", "local", [])
    assert "source" in str(info.value) and "items" in str(info.value)
    with pytest.raises(ValidationError, match="task_id"):
        g.get_task("123")
    with pytest.raises(ValidationError, match="sync_level"):
        g.submit_transfer(TUTORIAL_1, "local", [{"source": "/a", "destination": "/b"}], sync_level="often")
    assert globus_calls() == before
    g.close()


def test_notifications_reach_sdk_callbacks_with_exact_keys(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    other = stack.globus(access_token=remember(stack.token())["access_token"])
    inbox, other_inbox = Inbox(), Inbox()
    g.register_notification_callback(inbox)
    other.register_notification_callback(other_inbox)
    src = slow_source(stack)
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "slow.bin"}], label="watched")
        tid = sub["task_id"]
        inbox.wait(lambda: any(p["status"] == "SUCCEEDED" for p in inbox.of("transfer_status", tid)), timeout=60)
    finally:
        stack.faults(bandwidth={})
    statuses = inbox.of("transfer_status", tid)
    assert all(set(p) == STATUS_KEYS for p in statuses)
    assert statuses[0]["status"] == "ACTIVE" and statuses[-1]["status"] == "SUCCEEDED"
    assert statuses[-1]["label"] == "watched" and statuses[-1]["bytes_transferred"] == 400_000
    progress = inbox.of("transfer_progress", tid)
    assert progress and 0 < progress[0]["bytes_transferred"] <= 400_000
    assert other_inbox.of("transfer_status", tid) == []  # scoped to the owning session
    g.close()
    other.close()


def test_cancel_is_notified(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox, topic="transfer_status")
    src = slow_source(stack, 2_000_000)
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "c.bin"}])
        res = g.cancel_task(sub["task_id"])
        assert res["code"] in ("Canceled", "CancelAccepted")
        inbox.wait(lambda: any(p["status"] == "FAILED" for p in inbox.of("transfer_status", sub["task_id"])))
        assert g.task_wait(sub["task_id"], timeout=10)["completed"] is True
    finally:
        stack.faults(bandwidth={})
    g.close()


def test_fault_is_reported_and_fail_fast_cancels(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox)
    fid = stack.path_fault(TUTORIAL_1, "/home/dev/share/godata/file2.txt", "permission")
    try:
        plain = g.submit_transfer(TUTORIAL_1, "local", [{"source": "/~/share/godata/file2.txt", "destination": unique_dir() + "f.txt"}])
        fast = g.submit_transfer(
            TUTORIAL_1, "local", [{"source": "/~/share/godata/file2.txt", "destination": unique_dir() + "f.txt"}], fail_fast=True
        )
        inbox.wait(lambda: inbox.of("transfer_fault", plain["task_id"]) and inbox.of("transfer_fault", fast["task_id"]))
        fault = inbox.of("transfer_fault", plain["task_id"])[0]
        assert fault["code"] == "PERMISSION_DENIED" and fault["cancelling"] is False
        assert inbox.of("transfer_fault", fast["task_id"])[0]["cancelling"] is True
        inbox.wait(lambda: any(p["status"] == "FAILED" for p in inbox.of("transfer_status", fast["task_id"])))
        assert g.get_task(plain["task_id"])["status"] == "ACTIVE"  # Globus keeps retrying it
    finally:
        stack.admin("DELETE", f"faults/paths/{fid}")
    assert g.task_wait(plain["task_id"], timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
    g.close()


def test_refresh_token_renews_mid_transfer(stack: GlobusStack) -> None:
    tok = remember(stack.token(refresh=True))
    g = stack.globus(refresh_token=tok["refresh_token"], client_id=tok["client_id"])
    src = slow_source(stack)
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "r.bin"}])
        time.sleep(1.0)
        stack.admin("POST", "expire_tokens")
        assert g.task_wait(sub["task_id"], timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
    finally:
        stack.faults(bandwidth={})
    info = g.session_info()
    assert info["auth_mode"] == "refresh_token" and info["refreshes"] >= 1
    assert info["poller"]["auth_failed"] is False
    g.close()


def test_access_token_expiry_says_reregister_then_reattaches(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    inbox = Inbox()
    g.register_notification_callback(inbox)
    src = slow_source(stack, 600_000)
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "e.bin"}])
        stack.admin("POST", "expire_tokens")
        inbox.wait(lambda: inbox.of("auth_error"))
        assert "re-register with a fresh token" in inbox.of("auth_error")[0]["message"]
        with pytest.raises(GlobusAuthError, match="re-register with a fresh token"):
            g.get_task(sub["task_id"])
        g.register_session(access_token=remember(stack.token())["access_token"])  # re-attaches sub
        assert g.task_wait(sub["task_id"], timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
        inbox.wait(lambda: any(p["status"] == "SUCCEEDED" for p in inbox.of("transfer_status", sub["task_id"])))
    finally:
        stack.faults(bandwidth={})
    g.close()


def test_client_credentials(stack: GlobusStack) -> None:
    client = remember(stack.new_client())
    g = stack.globus(client_id=client["client_id"], client_secret=client["client_secret"])
    assert g.ls(TUTORIAL_1, "/~/share/godata/")["DATA"]
    sub = g.submit_transfer(TUTORIAL_1, "local", [{"source": "/~/share/godata/file1.txt", "destination": unique_dir() + "cc.txt"}])
    assert g.task_wait(sub["task_id"], timeout=60)["completed"] is True
    assert g.session_info()["auth_mode"] == "client_credentials"
    g.close()
    bad = stack.globus()
    with pytest.raises(GlobusAuthError) as info:
        bad.register_session(client_id=client["client_id"], client_secret="wrong-" + client["client_secret"][6:])
    assert info.value.status_code == 401
    SECRETS.append("wrong-" + client["client_secret"][6:])


def test_consent_required_on_mapped_collection(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    with pytest.raises(ConsentRequiredError) as info:
        g.ls(MAPPED, "/data/")
    err = info.value
    assert err.status_code == 401
    assert any(MAPPED in s and "data_access" in s for s in err.details["required_scopes"])
    assert "register_session" in err.message and MAPPED in err.message
    g.register_session(access_token=remember(stack.token(consents=[MAPPED]))["access_token"])
    assert [e["name"] for e in g.ls(MAPPED, "/data/")["DATA"]] == ["x.txt"]
    g.close()


def test_rate_limits_and_transient_errors_are_survived(stack: GlobusStack) -> None:
    g = stack.globus(access_token=remember(stack.token())["access_token"])
    src = slow_source(stack, 300_000)
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "t.bin"}])
        stack.faults(error_rate=0.5, error_statuses=[503, 429], retry_after=0, routes=r"^/v0\.10/task_list")
        assert g.task_wait(sub["task_id"], timeout=60, polling_interval=1)["status"] == "SUCCEEDED"
    finally:
        stack.reset_faults()
    g.close()


def test_reattach_after_endpoint_restart(stack: GlobusStack) -> None:
    tok = remember(stack.token())
    g = stack.globus(access_token=tok["access_token"])
    src = slow_source(stack, 900_000)  # ~9 s: still running after the endpoint restart
    try:
        sub = g.submit_transfer(TUTORIAL_2, "local", [{"source": src, "destination": unique_dir() + "re.bin"}], label="survivor")
        stack.stop_endpoint("ep-globus")
        stack.add_endpoint("ep-globus", RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)
        fresh = stack.globus(access_token=tok["access_token"])
        inbox = Inbox()
        fresh.register_notification_callback(inbox)
        out = fresh.track()  # every ACTIVE task of the identity
        assert sub["task_id"] in out["tracked"]
        inbox.wait(lambda: any(p["status"] == "SUCCEEDED" for p in inbox.of("transfer_status", sub["task_id"])), timeout=60)
        assert inbox.of("transfer_status", sub["task_id"])[-1]["label"] == "survivor"
        fresh.close()
    finally:
        stack.faults(bandwidth={})


def test_no_credentials_on_disk_or_in_logs(stack: GlobusStack, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs last: every file under the stack's HOME, log dir and temp root, read as bytes."""
    assert SECRETS, "run with the flows above"
    for name, proc in stack.endpoints.items():
        assert "DEBUG" in proc.log_text(), f"{name} did not log at debug"
    emulator_files = {stack.logs / "emulator.log"}
    roots = [stack.home, stack.logs, stack.root, Path(tmp_path_factory.getbasetemp())]
    hits = []
    seen: set[Path] = set()
    for root in roots:
        for path in root.rglob("*"):
            # the emulator plays Globus (which issues the tokens): its own log and data are Globus' side
            if path in seen or not path.is_file() or path in emulator_files or stack.emu_root in path.parents:
                continue
            seen.add(path)
            data = path.read_bytes()
            hits += [f"{path}: {s[:6]}..." for s in SECRETS if s.encode() in data]
    # files other processes of these flows may have put in the system temp dir meanwhile
    tmp = Path(tempfile.gettempdir())
    for path in tmp.iterdir():
        if path.name in ("venv",) or path.name.startswith(("bash_jobs", "globus-emulator-")) or path in roots:
            continue
        for f in [path] if path.is_file() else path.rglob("*"):
            try:
                if f in seen or not f.is_file() or f.stat().st_mtime < MODULE_START or f.stat().st_size > 50_000_000:
                    continue
                data = f.read_bytes()
            except OSError:
                continue
            seen.add(f)
            hits += [f"{f}: {s[:6]}..." for s in SECRETS if s.encode() in data]
    assert not hits, hits
