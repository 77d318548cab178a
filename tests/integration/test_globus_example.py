"""examples/example_globus.py runs unchanged against a demo-like stack: the default
emulator (tutorial collections), a bridge and an endpoint found through the usual
environment, and no Globus credential (a dev token comes from the emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from radical.orbit import testing as procs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_globus.py"


def test_example_runs_end_to_end(tmp_path: Path) -> None:
    home, logs = tmp_path / "home", tmp_path / "logs"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOBUS_", "RADICAL_ORBIT_"))}
    env["HOME"] = str(home)
    emu = procs.start_emulator(root=tmp_path / "emu", env=env, log_dir=logs)
    try:
        env.update(GLOBUS_SDK_SERVICE_URL_TRANSFER=f"{emu.url}/", GLOBUS_SDK_SERVICE_URL_AUTH=f"{emu.url}/")
        env["RADICAL_ORBIT_GLOBUS_COLLECTION"] = httpx.get(f"{emu.url}/health").json()["local_collection"]
        bridge = procs.start_bridge(token="example-bridge-token", env=env, log_dir=logs)
        with bridge, procs.start_endpoint("ep-example", bridge, plugins=["globus"], env=env, log_dir=logs):
            run_env = {k: v for k, v in env.items() if not k.startswith("GLOBUS_SDK_")}
            run_env.update(
                RADICAL_ORBIT_BRIDGE_URL=bridge.url or "",
                RADICAL_ORBIT_BRIDGE_TOKEN="example-bridge-token",
                RADICAL_ORBIT_EMULATOR_URL=emu.url or "",
            )
            out = subprocess.run([sys.executable, str(EXAMPLE)], env=run_env, capture_output=True, text=True, timeout=90, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCEEDED" in out.stdout and "file1.txt" in out.stdout
        assert "[transfer_status]" in out.stdout  # notifications reached the callback
    finally:
        emu.stop()
