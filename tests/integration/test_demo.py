"""`radical-orbit demo` end to end, as a newcomer runs it (smaller dataset)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(240)
def test_demo_runs_and_stages_byte_identical(tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    env["HOME"] = str(tmp_path / "home")
    cmd = [sys.executable, "-m", "radical.orbit.cli.main", "demo", "--files", "24", "--size-mb", "3",
           "--bandwidth-mb", "0", "--timeout", "60", "--workdir", str(work)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo finished" in proc.stdout
    assert "Demo summary" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr

    src = work / "collections" / "tutorial1" / "home" / "share" / "dataset"
    dst = work / "collections" / "local" / "staged" / "dataset"
    sources = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert len(sources) == 24
    for rel in sources:
        assert _digest(src / rel) == _digest(dst / rel), rel
    # the delete task removed the staged godata copy
    assert not (work / "collections" / "local" / "staged" / "godata").exists()
    # the demo used a private HOME for its services: nothing under the user's ~/.radical
    assert not (tmp_path / "home" / ".radical").exists()
