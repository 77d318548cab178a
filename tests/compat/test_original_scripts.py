"""Scripts written for the original Orbit (0.2.x) run unchanged against our stack.

The scripts in ``scripts/`` use only the original's client API, the way its users
write them (docs/compat.md). Each runs as its own process, as a user runs it, against
real ones: the Globus emulator, a bridge and an endpoint ``ep1`` with ``globus`` and
``sysinfo``. The scripts' HOME holds only the bridge token (what ``radical-orbit
bridge`` writes); the bridge URL comes from the original's ``RADICAL_BRIDGE_URL``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.config import BRIDGE_TOKEN_FILE
from radical.orbit.testing import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCRIPTS = Path(__file__).resolve().parent / "scripts"
BRIDGE_TOKEN = "compat-bridge-token-1f7e"


@dataclass
class Stack:
    emulator: ServiceProcess
    bridge: ServiceProcess
    endpoint_env: dict[str, str]
    client_env: dict[str, str]
    local_root: Path
    logs: Path

    def run(self, script: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            env=self.client_env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        assert out.returncode == 0, f"{script} exited {out.returncode}\n{out.stdout}\n{out.stderr}\n{self.tail()}"
        assert "Traceback" not in out.stderr and "TypeError" not in out.stderr, out.stderr
        return out

    def tail(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("compat")
    server_home, client_home, logs = root / "server-home", root / "client-home", root / "logs"
    for folder in (server_home, client_home, logs):
        folder.mkdir()
    env = scrubbed_environ(server_home)
    emulator = procs.start_emulator(root=root / "emulator", env=env, log_dir=logs)
    try:
        health = httpx.get(f"{emulator.url}/health", timeout=10).json()
        endpoint_env = {
            **env,
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": f"{emulator.url}/",
            "GLOBUS_SDK_SERVICE_URL_AUTH": f"{emulator.url}/",
            "RADICAL_ORBIT_GLOBUS_COLLECTION": health["local_collection"],
        }
        token = httpx.post(f"{emulator.url}/_emulator/token", json={"refresh": False}, timeout=10).json()["access_token"]
        orbit_dir = client_home / ".radical" / "orbit"
        orbit_dir.mkdir(parents=True, mode=0o700)
        token_file = orbit_dir / BRIDGE_TOKEN_FILE
        token_file.write_text(BRIDGE_TOKEN + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        with procs.start_bridge(token=BRIDGE_TOKEN, env=env, log_dir=logs) as bridge:
            args = ["-o", "globus.min_interval=0.2", "-o", "globus.max_interval=1"]
            with procs.start_endpoint("ep1", bridge, plugins=["globus", "sysinfo"], args=args, env=endpoint_env, log_dir=logs):
                client_env = scrubbed_environ(client_home, RADICAL_BRIDGE_URL=bridge.url or "", GLOBUS_ACCESS_TOKEN=token)
                yield Stack(emulator, bridge, endpoint_env, client_env, root / "emulator" / "local", logs)
    finally:
        emulator.stop()


def test_globus_example(stack: Stack) -> None:
    """The original's Globus example: transfer, wait, then ``ls(...)['entries']``."""
    out = stack.run("globus_transfer.py").stdout
    assert "final status: SUCCEEDED (3 files)" in out, out
    assert "orbit-globus-demo/ now has 3 entries: ['file1.txt', 'file2.txt', 'file3.txt']" in out, out
    assert "31ce9ba0-176d-45a5-add3-f37d233ba47d:/home/dev/orbit-globus-demo/" in out  # collection and path, as Globus resolved them
    assert "recent tasks: 1" in out and "Globus Tutorial Collection 1" in out, out


def test_four_argument_callbacks(stack: Stack) -> None:
    """cb(endpoint, plugin, topic, data) receives events; unregistering by callback works; RuntimeError catches a 404."""
    out = stack.run("notifications.py").stdout
    lines = out.splitlines()
    assert "listener connected: True" in lines and "first transfer notified: True" in lines, out
    assert "second transfer notified: True" in lines, out
    assert "filtered callback silent after unregister: True" in lines, out
    seen = json.loads(lines[-1])
    final = ["ep1", "globus", "transfer_status", "SUCCEEDED"]
    assert final in seen["method"] and final in seen["filtered"] and seen["any"].count(final) == 2
    assert all(entry[:3] == ["ep1", "globus", "transfer_status"] for entry in seen["filtered"])
    (error,) = seen["errors"]
    assert error.startswith("HTTP 404 \u2014 ep1/globus/get_task: "), error


def test_topology_callbacks(stack: Stack) -> None:
    """register_topology_callback sees an endpoint connect (with its plugins) and go."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "topology.py"), "ep-late"],
        env=stack.client_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        with procs.start_endpoint("ep-late", stack.bridge, plugins=["sysinfo"], env=stack.endpoint_env, log_dir=stack.logs):
            assert proc.stdout.readline().strip() == "came: True waited for: ep-late"
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[0] == "went: True", out
    maps = json.loads(lines[-1])
    assert {"ep1": ["globus", "sysinfo"], "ep-late": ["sysinfo"]} in maps
    assert maps[-1] == {"ep1": ["globus", "sysinfo"]}


def test_sysinfo_waits_and_errors(stack: Stack) -> None:
    out = stack.run("sysinfo_and_errors.py").stdout
    lines = out.splitlines()
    assert "endpoint: ep1 True ['globus', 'sysinfo']" in lines, out
    assert "sysinfo: True True /ep1/sysinfo" in lines, out
    assert "client: True SysinfoClient" in lines, out
    assert f"homedir: {stack.endpoint_env['HOME']}" in lines, out
    assert "role: standalone none None" in lines or "role: login" in out, out
    assert "metrics: ['cpu', 'disks', 'gpus', 'memory', 'network', 'system']" in out and " True True" in out, out
    assert "session after unregister: None" in lines, out
    assert "timeout: EndpointWaitTimeoutError" in lines, out
    assert any(line.startswith("no plugin: endpoint 'ep1' has no plugin 'no-such-plugin'") for line in lines), out
