"""``radical-orbit globus ...`` end to end: CLI -> bridge -> endpoint's globus plugin -> emulator.

One emulator, bridge and endpoint (real processes, started with radical.orbit.testing)
serve the whole module. Commands run through click's CliRunner (in process, with
the environment a user would set) and, for the exit-code contract, as real
``python -m radical.orbit.cli.main globus ...`` subprocesses. Every test uses its own
paths, so the order does not matter.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.cli.main import cli
from radical.orbit.emulators.globus.collections import default_specs

pytestmark = pytest.mark.integration

BRIDGE_TOKEN = "cli-globus-test-token"
TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
GODATA = f"{TUTORIAL_1}:/home/share/godata/"
MAPPED = "5e1c0a8e-7a1d-4c5e-9f4e-0c1e5e1c0a8e"
@dataclass
class Stack:
    emulator: procs.ServiceProcess
    bridge: procs.ServiceProcess
    endpoint: procs.ServiceProcess
    home: Path
    local_id: str
    local_root: Path
    tutorial_root: Path
    token: dict[str, Any]
    endpoint_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    secrets: list[str] = field(default_factory=list)

    def restart_endpoint(self) -> None:
        """SIGTERM the endpoint (it closes its sessions) and start it again, same name."""
        self.endpoint.stop()
        self.endpoint = procs.start_endpoint("cli-ep", self.bridge, plugins=["globus"], env=self.endpoint_env, log_dir=self.log_dir)

    @property
    def emu(self) -> str:
        return self.emulator.url or ""

    def env(self, **extra: str) -> dict[str, str]:
        """What a user of the CLI has set: bridge URL + token, a Globus access token."""
        env = {
            "HOME": str(self.home),
            "RADICAL_ORBIT_BRIDGE_URL": self.bridge.url or "",
            "RADICAL_ORBIT_BRIDGE_TOKEN": BRIDGE_TOKEN,
            "GLOBUS_ACCESS_TOKEN": self.token["access_token"],
        }
        env.update(extra)
        return env

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_text()[-3000:]}" for p in (self.emulator, self.bridge, self.endpoint))


def _scrubbed(home: Path, **extra: str) -> dict[str, str]:
    return scrubbed_environ(home, **extra)


def _orbit(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``radical-orbit ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "radical.orbit.cli.main", *args],
        env=env, input=input, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory)


def start_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Emulator, bridge and endpoint for one test module (test_cli_globus_parity.py shares it)."""
    base = Path(tempfile.mkdtemp(prefix="orbit-cli-", dir=tmp_path_factory.getbasetemp()))
    home, logs = base / "home", base / "logs"
    home.mkdir()
    started: list[procs.ServiceProcess] = []
    try:
        # the default collections plus a mapped one that needs its data_access consent
        root = base / "collections"
        specs = [spec.model_dump(mode="json") for spec in default_specs(root)]
        specs.append({
            "id": MAPPED, "display_name": "CLI Test Mapped Collection", "root": str(root / "mapped"),
            "entity_type": "GCSv5_mapped_collection", "requires_data_access": True, "files": {"hello.txt": "hi\n"},
        })
        config = base / "emulator.json"
        config.write_text(json.dumps({"collections": specs}), encoding="utf-8")
        emulator = procs.start_emulator(root=root, args=["--config", str(config)], env=_scrubbed(home), log_dir=logs)
        started.append(emulator)
        info = httpx.get(f"{emulator.url}/_emulator/info", timeout=10).json()
        by_id = {c["id"]: c for c in info["collections"]}
        local_id = info["local_collection"]
        bridge = procs.start_bridge(token=BRIDGE_TOKEN, env=_scrubbed(home), log_dir=logs)
        started.append(bridge)
        ep_env = _scrubbed(
            home,
            GLOBUS_SDK_SERVICE_URL_TRANSFER=f"{emulator.url}/",
            GLOBUS_SDK_SERVICE_URL_AUTH=f"{emulator.url}/",
            RADICAL_ORBIT_GLOBUS_COLLECTION=local_id,
        )
        endpoint = procs.start_endpoint("cli-ep", bridge, plugins=["globus"], env=ep_env, log_dir=logs)
        started.append(endpoint)
        out = _orbit("emulator", "token", "--url", emulator.url or "", "--refresh", env=_scrubbed(home))
        assert out.returncode == 0, out.stderr
        token = json.loads(out.stdout)
        st = Stack(
            emulator, bridge, endpoint, home, local_id,
            Path(by_id[local_id]["root"]), Path(by_id[TUTORIAL_1]["root"]), token,
            endpoint_env=ep_env, log_dir=logs,
            secrets=[token["access_token"], token["refresh_token"], BRIDGE_TOKEN],
        )
        yield st
        st.endpoint.stop()  # the one running now (a test may have restarted it)
    finally:
        for proc in reversed(started):
            proc.stop()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    yield
    print_logs_on_failure(request, stack)


def print_logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> None:
    """Print the tail of the emulator, bridge and endpoint logs when a test failed
    (the report attribute is set by tests/integration/conftest.py)."""
    report = getattr(request.node, "orbit_report_call", None)
    if report is not None and report.failed:
        print(stack.logs())


def run(stack: Stack, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """``radical-orbit globus ARGS`` through CliRunner; checks no secret and no traceback is shown."""
    result = CliRunner().invoke(cli, ["globus", *args], env=env or stack.env(), input=input, catch_exceptions=False)
    text = result.output
    for secret in stack.secrets:
        assert secret not in text, "a credential was printed"
    assert "Traceback" not in text, text
    return result


def check(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def task_id_of(result: Result) -> str:
    for line in result.stdout.splitlines():
        if line.startswith("Task ID:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no 'Task ID:' line in {result.stdout!r}")


# -- credentials and usage --------------------------------------------------------------

def test_missing_credentials_exit_2_in_a_real_process(stack: Stack) -> None:
    env = _scrubbed(stack.home, RADICAL_ORBIT_BRIDGE_URL=stack.bridge.url or "", RADICAL_ORBIT_BRIDGE_TOKEN=BRIDGE_TOKEN)
    out = _orbit("globus", "ls", "local", env=env)
    assert out.returncode == 2, out
    assert "no Globus credentials" in out.stderr and "GLOBUS_ACCESS_TOKEN" in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    # half a credential says which half is missing
    out = _orbit("globus", "ls", "local", env={**env, "GLOBUS_REFRESH_TOKEN": "x"})
    assert out.returncode == 2 and "GLOBUS_CLIENT_ID" in out.stderr


def test_refresh_token_and_client_credentials_modes(stack: Stack) -> None:
    env = stack.env()
    del env["GLOBUS_ACCESS_TOKEN"]
    refresh = {**env, "GLOBUS_REFRESH_TOKEN": stack.token["refresh_token"], "GLOBUS_CLIENT_ID": stack.token["client_id"]}
    assert "file1.txt" in check(run(stack, "ls", GODATA, env=refresh)).stdout
    out = _orbit("emulator", "token", "--url", stack.emu, "--new-client", env=_scrubbed(stack.home))
    client = json.loads(out.stdout)
    stack.secrets.append(client["client_secret"])
    confidential = {**env, "GLOBUS_CLIENT_ID": client["client_id"], "GLOBUS_CLIENT_SECRET": client["client_secret"]}
    assert "file1.txt" in check(run(stack, "ls", GODATA, env=confidential)).stdout
    bad = {**confidential, "GLOBUS_CLIENT_SECRET": "not-the-secret"}
    result = check(run(stack, "ls", GODATA, env=bad), 1)
    assert result.stderr.startswith("Error:") and result.stderr.count("\n") == 1


def test_usage_errors_exit_2(stack: Stack) -> None:
    result = check(run(stack, "ls", "not-a-collection:/x"), 2)
    assert "UUID or 'local'" in result.stderr
    check(run(stack, "transfer", "local", "local"), 2)  # no paths, no --batch
    check(run(stack, "mkdir", "local"), 2)  # needs COLLECTION:PATH
    check(run(stack, "transfer", "local:/a", "local:/b", "--sync-level", "often"), 2)
    result = check(run(stack, "task", "show", "not-a-task-id"), 2)  # the plugin's 422, one line
    assert result.stderr.startswith("Error:") and "task_id" in result.stderr


def test_consent_required_exit_4_then_ok_with_consent(stack: Stack) -> None:
    """A mapped collection without its data_access consent: exit 4 (as the Globus CLI)
    and a message naming the scope; with a token that has it, the same ls works."""
    result = check(run(stack, "ls", f"{MAPPED}:/"), 4)
    assert "data_access" in result.stderr and result.stderr.count("\n") == 1
    out = _orbit("emulator", "token", "--url", stack.emu, "--consent", MAPPED, env=_scrubbed(stack.home))
    token = json.loads(out.stdout)["access_token"]
    stack.secrets.append(token)
    assert check(run(stack, "ls", f"{MAPPED}:/", env=stack.env(GLOBUS_ACCESS_TOKEN=token))).stdout.split() == ["hello.txt"]


def test_orbit_errors_are_one_line_with_a_hint(stack: Stack) -> None:
    result = check(run(stack, "--endpoint", "nope", "ls", "local"), 1)
    assert result.stderr.count("\n") == 1 and "cli-ep" in result.stderr and "hint:" in result.stderr
    result = check(run(stack, "ls", "local", env=stack.env(RADICAL_ORBIT_BRIDGE_TOKEN="wrong")), 1)
    assert "refused the token" in result.stderr and result.stderr.count("\n") == 1
    result = check(run(stack, "--url", f"http://127.0.0.1:{procs.free_port()}", "ls", "local"), 1)
    assert "cannot reach the Orbit bridge" in result.stderr
    result = check(run(stack, "ls", "local", env=stack.env(GLOBUS_ACCESS_TOKEN="expired-or-bogus")), 1)
    assert "token" in result.stderr and "hint:" in result.stderr


# -- filesystem ----------------------------------------------------------------------

def test_ls_text_long_and_json(stack: Stack) -> None:
    result = check(run(stack, "ls", GODATA))
    assert result.stdout.split() == ["file1.txt", "file2.txt", "file3.txt"]
    long_ = check(run(stack, "ls", GODATA, "-l")).stdout
    assert "Permissions" in long_ and "Filename" in long_ and "file2.txt" in long_
    doc = json.loads(check(run(stack, "-F", "json", "ls", GODATA)).stdout)
    assert doc["DATA_TYPE"] == "file_list" and len(doc["DATA"]) == 3
    # subcommand-level -F, the Globus CLI's --filter patterns
    doc = json.loads(check(run(stack, "ls", GODATA, "--filter", "~*2.txt", "-F", "json")).stdout)
    assert [e["name"] for e in doc["DATA"]] == ["file2.txt"]
    # hidden entries only with -a; directories get a trailing '/'
    (stack.local_root / "lsdir" / "sub").mkdir(parents=True)
    (stack.local_root / "lsdir" / ".hidden").write_text("x")
    assert check(run(stack, "ls", "local:/lsdir/")).stdout.split() == ["sub/"]
    assert sorted(check(run(stack, "ls", "local:/lsdir/", "--all")).stdout.split()) == [".hidden", "sub/"]
    assert check(run(stack, "ls", GODATA, "--orderby", "name:DESC")).stdout.split() == ["file3.txt", "file2.txt", "file1.txt"]
    check(run(stack, "ls", GODATA, "--orderby", "name:sideways"), 2)


def test_mkdir_rename_stat(stack: Stack) -> None:
    assert "created" in check(run(stack, "mkdir", "local:/mk1/")).stdout
    result = check(run(stack, "mkdir", "local:/mk1/"), 1)  # exists: Globus' error, one line
    assert "Exists" in result.stderr and result.stderr.count("\n") == 1
    assert "renamed" in check(run(stack, "rename", "local", "/mk1/", "/mk2/")).stdout
    assert (stack.local_root / "mk2").is_dir() and not (stack.local_root / "mk1").exists()
    text = check(run(stack, "stat", "local:/mk2/")).stdout
    assert "Type:" in text and "dir" in text
    doc = json.loads(check(run(stack, "stat", "local:/mk2/", "-F", "json")).stdout)
    assert doc["type"] == "dir" and doc["name"] == "mk2"
    doc = json.loads(check(run(stack, "-F", "json", "mkdir", "local:/mk3/")).stdout)
    assert doc["code"] == "DirectoryCreated"
    doc = json.loads(check(run(stack, "rename", "local", "/mk3/", "/mk4/", "-F", "json")).stdout)
    assert doc["code"] == "FileRenamed"
    result = check(run(stack, "stat", "local:/no/such/path"), 1)
    assert result.stderr.startswith("Error:") and result.stdout == ""


# -- transfers and tasks -----------------------------------------------------------------

def test_transfer_wait_text_lands_byte_identical(stack: Stack) -> None:
    result = check(run(stack, "transfer", GODATA, "local:/t1/godata/", "-r", "--label", "cli t1", "--wait"))
    assert "Task ID:" in result.stdout and "SUCCEEDED" in result.stdout
    src = stack.tutorial_root / "home" / "share" / "godata"
    for name in ("file1.txt", "file2.txt", "file3.txt"):
        assert sha(stack.local_root / "t1" / "godata" / name) == sha(src / name)
    assert "cli t1" in result.stderr  # the progress bar, on stderr, names the task


def test_transfer_json_task_wait_show_and_sync(stack: Stack) -> None:
    sub = json.loads(check(run(stack, "-F", "json", "transfer", GODATA, "local:/t2/", "-r", "-s", "checksum")).stdout)
    assert set(sub) >= {"task_id", "submission_id", "status"}
    tid = sub["task_id"]
    doc = json.loads(check(run(stack, "task", "wait", tid, "--timeout", "60", "-F", "json")).stdout)
    assert doc["task_id"] == tid and doc["status"] == "SUCCEEDED"
    text = check(run(stack, "task", "show", tid)).stdout
    assert "Task ID:" in text and "SUCCEEDED" in text and "Files Transferred:" in text
    shown = json.loads(check(run(stack, "task", "show", tid, "-F", "json")).stdout)
    assert shown["task_id"] == tid and shown["type"] == "TRANSFER" and shown["files_transferred"] == 3
    # cancelling a finished task is no error: Globus says it is complete
    cancel = json.loads(check(run(stack, "-F", "json", "task", "cancel", tid)).stdout)
    assert cancel["code"] == "TaskComplete"
    files = check(run(stack, "task", "show", tid, "--successful-transfers")).stdout
    assert "file1.txt" in files and "Destination Path" in files
    # the same transfer again: sync skips everything unchanged; --wait JSON is the final task
    again = json.loads(check(run(stack, "-F", "json", "transfer", GODATA, "local:/t2/", "-r", "-s", "checksum", "--wait")).stdout)
    assert again["status"] == "SUCCEEDED" and again["files_transferred"] == 0 and again["files_skipped"] == 3


def test_transfer_batch_from_stdin_and_dry_run(stack: Stack) -> None:
    batch = "# pairs\nfile1.txt one.txt\n'file2.txt' 'sub dir/two.txt'\n"
    dry = check(run(stack, "-F", "json", "transfer", GODATA, "local:/t3/", "--batch", "-", "--dry-run", input=batch)).stdout
    assert json.loads(dry)["items"][1] == {"source": "/home/share/godata/file2.txt", "destination": "/t3/sub dir/two.txt"}
    result = check(run(stack, "transfer", GODATA, "local:/t3/", "--batch", "-", "--wait", input=batch))
    assert "SUCCEEDED" in result.stdout
    assert (stack.local_root / "t3" / "one.txt").read_bytes() == (stack.tutorial_root / "home/share/godata/file1.txt").read_bytes()
    assert (stack.local_root / "t3" / "sub dir" / "two.txt").is_file()
    check(run(stack, "transfer", GODATA, "local:/t3/", "--batch", "-", input="only-one-path\n"), 2)


def test_failed_transfer_exit_1_and_events(stack: Stack) -> None:
    result = check(run(stack, "transfer", f"{TUTORIAL_1}:/home/share/missing/", "local:/t4/", "-r", "--wait", "--timeout", "60"), 1)
    assert "FAILED" in result.stderr and "task events" in result.stderr
    tid = task_id_of(result)
    events = check(run(stack, "task", "events", tid, "--errors-only")).stdout
    assert "FILE_NOT_FOUND" in events
    doc = json.loads(check(run(stack, "task", "events", tid, "-F", "json")).stdout)
    assert any(e["code"] == "FILE_NOT_FOUND" for e in doc["DATA"])
    # a finished FAILED task: task wait exits 1 at once, in a real process too
    out = _orbit("globus", "task", "wait", tid, env=_scrubbed(stack.home, **stack.env()))
    assert out.returncode == 1 and "FAILED" in out.stderr


def test_wait_timeout_exit_3_then_cancel(stack: Stack) -> None:
    slow = stack.tutorial_root / "home" / "dev" / "slow"
    slow.mkdir(parents=True, exist_ok=True)
    for i in range(16):  # 1.6 MB at 50 kB/s: ~30 s, far more than the steps below take
        (slow / f"f{i}.bin").write_bytes(os.urandom(100_000))
    faults = f"{stack.emu}/_emulator/faults"
    httpx.patch(faults, json={"bandwidth": {TUTORIAL_1: 50_000}}, timeout=10).raise_for_status()
    try:
        sub = check(run(stack, "transfer", f"{TUTORIAL_1}:/~/slow/", "local:/t5/", "-r"))
        tid = task_id_of(sub)
        out = _orbit("globus", "task", "wait", tid, "--timeout", "1", env=_scrubbed(stack.home, **stack.env()))
        assert out.returncode == 3, out
        assert "timeout" in out.stderr and f"task wait {tid}" in out.stderr
        check(run(stack, "task", "wait", tid, "--timeout", "0.5", "--timeout-exit-code", "7"), 7)
        # Ctrl-C: exit 130, and the message says the task keeps running
        waiter = subprocess.Popen(
            [sys.executable, "-m", "radical.orbit.cli.main", "--log-level", "debug", "globus", "task", "wait", tid],
            env=_scrubbed(stack.home, **stack.env()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert waiter.stderr is not None
            for line in waiter.stderr:
                if "/globus/get_task" in line:
                    break
            waiter.send_signal(signal.SIGINT)
            _, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        assert waiter.returncode == 130 and "keeps running" in err
        listed = json.loads(check(run(stack, "task", "list", "--status", "ACTIVE", "-F", "json")).stdout)
        assert tid in [t["task_id"] for t in listed["DATA"]]
        assert check(run(stack, "task", "cancel", tid)).stdout.strip()
        result = check(run(stack, "task", "wait", tid, "--timeout", "60"), 1)
        assert "FAILED" in result.stderr
    finally:
        httpx.patch(faults, json={"bandwidth": {}}, timeout=10)


def test_fault_notification_and_fail_fast(stack: Stack) -> None:
    """A permission fault keeps a Globus task ACTIVE; the wait shows it as it happens
    (a transfer_fault notification) and --fail-fast cancels the task."""
    denied = stack.tutorial_root / "home" / "dev" / "denied"
    denied.mkdir(parents=True, exist_ok=True)
    (denied / "a.txt").write_text("a")
    resp = httpx.post(f"{stack.emu}/_emulator/faults/paths", json={"collection": TUTORIAL_1, "path": "/home/dev/denied", "kind": "permission"}, timeout=10)
    resp.raise_for_status()
    try:
        result = check(run(stack, "transfer", f"{TUTORIAL_1}:/~/denied/", "local:/t6/", "-r", "--fail-fast", "--wait", "--timeout", "60"), 1)
        assert "fault on task" in result.stderr and "PERMISSION_DENIED" in result.stderr
        assert "FAILED" in result.stderr
    finally:
        httpx.delete(f"{stack.emu}/_emulator/faults/paths/{resp.json()['id']}", timeout=10)


def test_skip_source_errors_and_skipped_errors_list(stack: Stack) -> None:
    src = stack.tutorial_root / "home" / "dev" / "skip"
    src.mkdir(parents=True, exist_ok=True)
    (src / "a.txt").write_text("a")
    (src / "b.txt").write_text("b")
    fault = {"collection": TUTORIAL_1, "path": "/home/dev/skip/b.txt", "kind": "not_found"}
    resp = httpx.post(f"{stack.emu}/_emulator/faults/paths", json=fault, timeout=10)
    resp.raise_for_status()
    try:
        result = check(run(stack, "transfer", f"{TUTORIAL_1}:/~/skip/", "local:/t11/", "-r", "--skip-source-errors", "--wait", "--timeout", "60"))
        assert "SUCCEEDED" in result.stdout and "1 skipped error" in result.stdout
        tid = task_id_of(result)
        text = check(run(stack, "task", "show", tid, "--skipped-errors")).stdout
        assert "b.txt" in text and "FILE_NOT_FOUND" in text
        doc = json.loads(check(run(stack, "task", "show", tid, "--skipped-errors", "-F", "json")).stdout)
        assert [e["error_code"] for e in doc["DATA"]] == ["FILE_NOT_FOUND"]
    finally:
        httpx.delete(f"{stack.emu}/_emulator/faults/paths/{resp.json()['id']}", timeout=10)


def test_task_list_text_and_json(stack: Stack) -> None:
    check(run(stack, "transfer", GODATA, "local:/t7/", "-r", "--label", "listed", "--wait"))
    text = check(run(stack, "task", "list", "--limit", "50")).stdout
    assert "Task ID" in text and "listed" in text
    doc = json.loads(check(run(stack, "-F", "json", "task", "list", "--status", "SUCCEEDED", "--limit", "2")).stdout)
    assert doc["DATA_TYPE"] == "task_list" and 1 <= len(doc["DATA"]) <= 2
    assert all(t["status"] == "SUCCEEDED" for t in doc["DATA"])


def test_delete_wait_and_batch(stack: Stack) -> None:
    target = stack.local_root / "t8"
    (target / "deep").mkdir(parents=True)
    (target / "deep" / "x.txt").write_text("x")
    for name in ("a.txt", "b.txt", "keep.txt"):
        (target / name).write_text(name)
    result = check(run(stack, "delete", "local:/t8/", "--batch", "-", "--wait", input="a.txt\nb.txt\n"))
    assert "Task ID:" in result.stdout and "SUCCEEDED" in result.stdout
    assert not (target / "a.txt").exists() and (target / "keep.txt").exists()
    sub = json.loads(check(run(stack, "-F", "json", "delete", "local:/t8/deep/", "-r")).stdout)
    check(run(stack, "task", "wait", sub["task_id"], "--timeout", "60"))
    assert not (target / "deep").exists()
    # a missing path fails the task, unless -f (as the Globus CLI)
    check(run(stack, "delete", "local:/t8/missing.txt", "--wait", "--timeout", "60"), 1)
    assert "SUCCEEDED" in check(run(stack, "delete", "local:/t8/missing.txt", "-f", "--wait", "--timeout", "60")).stdout


def test_transfer_external_checksum_and_notify(stack: Stack) -> None:
    src = stack.tutorial_root / "home" / "share" / "godata" / "file1.txt"
    good = hashlib.md5(src.read_bytes()).hexdigest()
    ok = ["transfer", f"{GODATA}file1.txt", "local:/t10/ok.txt", "--external-checksum", good, "--checksum-algorithm", "MD5", "--notify", "off"]
    result = check(run(stack, *ok, "--deadline", "2099-01-02 03:04:05", "--wait", "--timeout", "60"))
    assert "SUCCEEDED" in result.stdout
    shown = json.loads(check(run(stack, "task", "show", task_id_of(result), "-F", "json")).stdout)
    assert shown["deadline"].startswith("2099-01-02")
    bad = ["transfer", f"{GODATA}file1.txt", "local:/t10/bad.txt", "--external-checksum", "0" * 32, "--checksum-algorithm", "MD5"]
    result = check(run(stack, *bad, "--wait", "--timeout", "60"), 1)
    assert "CHECKSUM" in result.stderr
    check(run(stack, "transfer", f"{GODATA}file1.txt", "local:/t10/x.txt", "--notify", "sometimes"), 2)


def test_endpoint_search_and_show(stack: Stack) -> None:
    text = check(run(stack, "endpoint", "search", "Tutorial")).stdout
    assert TUTORIAL_1 in text and "Globus Tutorial Collection 1" in text
    doc = json.loads(check(run(stack, "endpoint", "search", "Tutorial", "--limit", "1", "-F", "json")).stdout)
    assert len(doc["DATA"]) == 1
    text = check(run(stack, "endpoint", "show", "local")).stdout
    assert "ID:" in text and stack.local_id in text
    doc = json.loads(check(run(stack, "-F", "json", "endpoint", "show", TUTORIAL_1)).stdout)
    assert doc["display_name"] == "Globus Tutorial Collection 1"
    check(run(stack, "endpoint", "show", "00000000-0000-4000-8000-000000000000"), 1)
    mine = check(run(stack, "endpoint", "search", "--filter-scope", "my-endpoints")).stdout
    assert stack.local_id in mine
    check(run(stack, "endpoint", "search"), 2)  # scope 'all' needs a text


def test_local_collection_override(stack: Stack) -> None:
    result = check(run(stack, "--local-collection", TUTORIAL_1, "ls", "local:/home/share/godata/"))
    assert result.stdout.split() == ["file1.txt", "file2.txt", "file3.txt"]


def test_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(cli, ["globus", "--help"])
    assert result.exit_code == 0
    for name in ("transfer", "ls", "mkdir", "rename", "delete", "stat", "task", "endpoint"):
        assert name in result.stdout
    result = CliRunner().invoke(cli, ["globus", "task", "--help"])
    for name in ("show", "wait", "cancel", "list", "events"):
        assert name in result.stdout


def test_wait_survives_an_endpoint_restart(stack: Stack) -> None:
    """The endpoint restarts mid-wait (its sessions are gone): the wait carries on with
    a new session and still ends with the task's outcome."""
    src = stack.tutorial_root / "home" / "dev" / "restart"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(10):  # ~10 s at 60 kB/s: the restart happens well before the end
        (src / f"f{i}.bin").write_bytes(os.urandom(60_000))
    faults = f"{stack.emu}/_emulator/faults"
    httpx.patch(faults, json={"bandwidth": {TUTORIAL_1: 60_000}}, timeout=10).raise_for_status()
    try:
        tid = task_id_of(check(run(stack, "transfer", f"{TUTORIAL_1}:/~/restart/", "local:/t9/", "-r")))
        waiter = subprocess.Popen(  # at debug level: the credentials must not show there either
            [sys.executable, "-m", "radical.orbit.cli.main", "--log-level", "debug", "globus", "task", "wait", tid, "--timeout", "90"],
            env=_scrubbed(stack.home, **stack.env()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert waiter.stderr is not None
            head = []
            for line in waiter.stderr:  # restart only once the wait is under way
                head.append(line)
                if "/globus/get_task" in line:
                    break
            stack.restart_endpoint()
            httpx.patch(faults, json={"bandwidth": {}}, timeout=10).raise_for_status()  # finish soon now
            out, err = waiter.communicate(timeout=120)
            err = "".join(head) + err
        finally:
            if waiter.poll() is None:
                waiter.kill()
        assert waiter.returncode == 0, (out, err, stack.logs())
        assert "SUCCEEDED" in out
        assert "opening a new one" in err  # the new endpoint did not know the old session: the client re-opened it
        for secret in stack.secrets:
            assert secret not in out + err
    finally:
        httpx.patch(faults, json={"bandwidth": {}}, timeout=10)


def test_endpoint_choice_with_several_endpoints(stack: Stack, tmp_path: Path) -> None:
    """The default endpoint is one whose globus plugin is enabled; with several, a note
    names the others; --endpoint picks one, and one whose globus plugin is disabled
    (no globus-sdk there) is a clear error with the reason."""
    shim = tmp_path / "shim" / "globus_sdk"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("globus_sdk hidden for this test")\n')
    env = {**stack.endpoint_env, "PYTHONPATH": str(shim.parent)}
    extra = [procs.start_endpoint("cli-nosdk", stack.bridge, plugins=["sysinfo", "globus"], env=env, log_dir=stack.log_dir)]
    try:
        assert "file1.txt" in check(run(stack, "ls", GODATA)).stdout  # never cli-nosdk
        result = check(run(stack, "--endpoint", "cli-nosdk", "ls", GODATA), 1)
        assert "disabled" in result.stderr and "globus-sdk" in result.stderr and "hint:" in result.stderr
        assert result.stderr.count("\n") == 1
        extra.append(procs.start_endpoint("cli-ep2", stack.bridge, plugins=["globus"], env=stack.endpoint_env, log_dir=stack.log_dir))
        result = check(run(stack, "ls", GODATA))
        assert "Note: using endpoint" in result.stderr and "--endpoint" in result.stderr
        assert result.stdout.split() == ["file1.txt", "file2.txt", "file3.txt"]
        assert "file1.txt" in check(run(stack, "--endpoint", "cli-ep2", "ls", GODATA)).stdout
    finally:
        for proc in extra:
            proc.stop()
