"""`radical-orbit demo` end to end, as a newcomer runs it (smaller dataset)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.integration


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _serve_demo(tmp_path: Path, log: IO[str]) -> tuple[subprocess.Popen[bytes], dict[str, str], int, int]:
    """`demo --serve` with a HOME of its own and free ports, once it says it is up:
    ``(process, its environment, bridge port, emulator port)``."""
    from radical.orbit.testing import free_port

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    env["HOME"] = str(home)
    bport, eport = free_port(), free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "radical.orbit.cli.main", "demo", "--serve",
         "--bridge-port", str(bport), "--emulator-port", str(eport), "--workdir", str(tmp_path / "work")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in Path(log.name).read_text():  # the help's last line
            assert demo.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "demo --serve did not come up"
            time.sleep(0.2)
    except BaseException:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()
        raise
    return demo, env, bport, eport


@pytest.mark.timeout(240)
def test_demo_runs_and_stages_byte_identical(tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    env["HOME"] = str(tmp_path / "home")
    cmd = [sys.executable, "-m", "radical.orbit.cli.main", "demo", "--files", "24", "--size-mb", "3",
           "--bandwidth-mb", "0", "--timeout", "60", "--workdir", str(work)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo finished" in proc.stdout
    assert "Demo summary" in proc.stdout
    assert "What next:" in proc.stdout and "radical-orbit demo --serve" in proc.stdout  # it leads somewhere
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


@pytest.mark.timeout(300)
def test_demo_serve_runs_the_example_from_another_shell(tmp_path: Path) -> None:
    """`demo --serve` keeps the stack up; our example, and every command it says to try, run against it."""
    with open(tmp_path / "serve.log", "w+") as log:
        demo, env, bport, eport = _serve_demo(tmp_path, log)
    home = Path(env["HOME"])  # the demo writes on through its own copy of the file
    try:
        text = (tmp_path / "serve.log").read_text()
        assert f"http://127.0.0.1:{bport}" in text
        assert "The stack is running" in text and "Then try" in text
        token = (home / ".radical" / "orbit" / "bridge.token").read_text().strip()
        assert token and token not in text  # where the token is, never the token
        example = Path(__file__).resolve().parents[2] / "examples" / "example_globus.py"
        run_env = dict(env, RADICAL_ORBIT_EMULATOR_URL=f"http://127.0.0.1:{eport}")
        proc = subprocess.run([sys.executable, str(example)], check=False, env=run_env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "SUCCEEDED" in proc.stdout
        # what it tells the other shell, pasted there as printed: the exports, then every command to try
        printed = text.split("In another shell", 1)[1].split("Local collection", 1)[0]
        script = "\n".join(line[2:] for line in printed.splitlines() if line.startswith("  "))
        shell_env = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
        shell_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        shell = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=example.parents[1], env=shell_env,
                               check=False, capture_output=True, text=True, timeout=150)
        assert shell.returncode == 0, script + "\n" + shell.stdout[-3000:] + shell.stderr[-3000:]
        assert "radical-orbit globus transfer" in script and "SUCCEEDED" in shell.stderr + shell.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    assert demo.returncode == 0


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """False once ``pid`` has exited (a zombie no one reaped yet counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(180)
def test_demo_killed_with_sigkill_leaves_no_service_running(tmp_path: Path) -> None:
    """The demo's emulator, bridge and endpoint run in sessions of their own, so before
    the lifeline a SIGKILLed demo left them running and holding their ports."""
    import socket

    with open(tmp_path / "serve.log", "w+") as log:
        demo, _, bport, eport = _serve_demo(tmp_path, log)
        try:
            services = _children(demo.pid)
            assert len(services) == 3, services  # emulator, bridge, endpoint
        finally:
            demo.kill()  # SIGKILL: the demo can stop nothing itself
            demo.wait()
    deadline = time.monotonic() + 60
    try:
        while any(_running(pid) for pid in services):
            assert time.monotonic() < deadline, f"still running after the demo was killed: {[p for p in services if _running(p)]}"
            time.sleep(0.1)
    finally:  # a failure leaves nothing behind either
        for pid in filter(_running, services):
            os.kill(pid, signal.SIGKILL)
    for port in (bport, eport):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is still served"


@pytest.mark.timeout(60)
def test_demo_refuses_a_bridge_port_in_use(tmp_path: Path) -> None:
    """It used to start anyway: the readiness check was answered by whatever held the
    port, and the demo's endpoint registered with that other bridge."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
        env["HOME"] = str(tmp_path / "home")
        cmd = [sys.executable, "-m", "radical.orbit.cli.main", "demo", "--bridge-port", str(port), "--workdir", str(tmp_path / "w")]
        proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=50)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert f"127.0.0.1:{port} is already in use" in out and "pick another port" in out, out[-2000:]
    assert "Traceback" not in out
