"""The emulator as a real process: the unmodified Globus CLI and the SDK against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from radical.orbit.testing import ServiceProcess, start_emulator

pytestmark = pytest.mark.integration

TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
CLIENT_ID = "4a0c2b9e-6f1d-4e8a-b3c5-7d9e1f2a3b4c"
CLIENT_SECRET = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
GLOBUS = Path(sys.executable).parent / "globus"


def scrubbed(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    env["HOME"] = str(home)
    env.update(extra)
    return env


@pytest.fixture
def emulator(tmp_path: Path) -> Any:
    proc = start_emulator(
        root=tmp_path / "root",
        args=["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
        env=scrubbed(tmp_path / "home"),
        log_dir=tmp_path / "logs",
    )
    yield proc
    proc.stop()


def local_id(proc: ServiceProcess) -> str:
    import httpx

    return str(httpx.get(f"{proc.url}/health").json()["local_collection"])


@pytest.mark.skipif(not GLOBUS.exists(), reason="the globus CLI is not installed next to this Python")
def test_globus_cli_against_the_emulator(emulator: ServiceProcess, tmp_path: Path) -> None:
    env = scrubbed(
        tmp_path / "clihome",
        GLOBUS_SDK_SERVICE_URL_TRANSFER=f"{emulator.url}/",
        GLOBUS_SDK_SERVICE_URL_AUTH=f"{emulator.url}/",
        GLOBUS_CLI_CLIENT_ID=CLIENT_ID,
        GLOBUS_CLI_CLIENT_SECRET=CLIENT_SECRET,
    )
    (tmp_path / "clihome").mkdir()
    local = local_id(emulator)
    root = tmp_path / "root"

    def globus(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([str(GLOBUS), *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        if ok:
            assert res.returncode == 0, f"globus {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res

    assert globus("ls", f"{TUTORIAL_1}:/home/share/godata/").stdout.split() == ["file1.txt", "file2.txt", "file3.txt"]
    assert "created successfully" in globus("mkdir", f"{local}:/cli").stdout
    assert "renamed successfully" in globus("rename", local, "/cli", "/cli2").stdout
    sub = json.loads(globus("transfer", f"{TUTORIAL_1}:/home/share/godata/", f"{local}:/cli2/godata/", "-r", "--label", "cli test", "--format", "json").stdout)
    assert sub["code"] == "Accepted"
    globus("task", "wait", sub["task_id"], "--timeout", "30", "--polling-interval", "1")
    shown = json.loads(globus("task", "show", sub["task_id"], "--format", "json").stdout)
    assert shown["status"] == "SUCCEEDED" and shown["label"] == "cli test" and shown["files_transferred"] == 3
    for n in (1, 2, 3):
        src = root / "tutorial1/home/share/godata" / f"file{n}.txt"
        assert (root / "local/cli2/godata" / f"file{n}.txt").read_bytes() == src.read_bytes()
    listing = globus("ls", "-r", f"{local}:/cli2/").stdout.split()
    assert listing == ["godata/", "godata/file1.txt", "godata/file2.txt", "godata/file3.txt"]
    deleted = json.loads(globus("delete", f"{local}:/cli2", "-r", "--format", "json").stdout)
    globus("task", "wait", deleted["task_id"], "--timeout", "30", "--polling-interval", "1")
    assert not (root / "local/cli2").exists()
    found = globus("endpoint", "search", "Tutorial").stdout
    assert TUTORIAL_1 in found and "31ce9ba0-176d-45a5-add3-f37d233ba47d" in found
    assert json.loads(globus("endpoint", "show", TUTORIAL_1, "--format", "json").stdout)["display_name"] == "Globus Tutorial Collection 1"
    denied = globus("ls", f"{local}:/../../etc/", ok=False)
    assert denied.returncode == 1 and "EndpointPermissionDenied" in denied.stderr


def test_token_command_refresh_and_state_dir_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root, state = tmp_path / "root", tmp_path / "state"
    args = ["--token-lifetime", "2", "--state-dir", str(state)]
    proc = start_emulator(root=root, args=args, env=scrubbed(home), log_dir=tmp_path / "logs")
    try:
        log = proc.log_text()
        assert f"export GLOBUS_SDK_SERVICE_URL_TRANSFER={proc.url}/" in log and f"export GLOBUS_SDK_SERVICE_URL_AUTH={proc.url}/" in log
        assert f"export RADICAL_ORBIT_GLOBUS_COLLECTION={local_id(proc)}" in log  # what an endpoint's 'local' is
        out = subprocess.run(
            [sys.executable, "-m", "radical.orbit.cli.main", "emulator", "token", "--url", proc.url or "", "--refresh"],
            env=scrubbed(home),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        tok = json.loads(out.stdout)
        assert tok["access_token"] not in log
        env = {"GLOBUS_SDK_SERVICE_URL_TRANSFER": f"{proc.url}/", "GLOBUS_SDK_SERVICE_URL_AUTH": f"{proc.url}/"}
        os.environ.update(env)
        try:
            auth = globus_sdk.NativeAppAuthClient(tok["client_id"])
            authorizer = globus_sdk.RefreshTokenAuthorizer(tok["refresh_token"], auth, access_token=tok["access_token"], expires_at=int(time.time()) + 3600)
            tc = globus_sdk.TransferClient(authorizer=authorizer)
            local = local_id(proc)
            td = globus_sdk.TransferData(TUTORIAL_1, local, label="survives restart")
            td.add_item("/home/share/godata/file2.txt", "/r/file2.txt")
            tid = tc.submit_transfer(td)["task_id"]
            time.sleep(2.2)  # the access token expires server side: 401 -> refresh -> retry
            assert tc.task_wait(tid, timeout=10, polling_interval=1)
            assert authorizer.access_token != tok["access_token"]
            proc.stop()
            proc = start_emulator(port=int((proc.url or "").rsplit(":", 1)[1]), root=root, args=args, env=scrubbed(home), log_dir=tmp_path / "logs2")
            assert tc.get_task(tid)["status"] == "SUCCEEDED"
            assert tc.get_task(tid)["label"] == "survives restart"
        finally:
            for key in env:
                os.environ.pop(key, None)
    finally:
        proc.stop()


def test_a_busy_port_is_a_clear_error_and_leaves_no_temporary_root(tmp_path: Path) -> None:
    import glob
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
        env["HOME"] = str(tmp_path)
        env["TMPDIR"] = str(tmp_path)  # where its temporary collections root would go
        proc = subprocess.run(
            [sys.executable, "-m", "radical.orbit.cli.main", "emulator", "--port", str(port)],
            check=False, env=env, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 1 and f"cannot bind 127.0.0.1:{port}" in proc.stderr, proc.stderr[-500:]
    assert glob.glob(str(tmp_path / "globus-emulator-*")) == []
