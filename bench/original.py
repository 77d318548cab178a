"""The original Orbit (the bridge-era release on the package index) as a stack for bench/relay.py.

Installed by the bench into a venv of its own, never into this project's, and reused
when present::

    python -m venv DIR && DIR/bin/pip install radical.orbit==0.2.0

What its installed source says about starting it (so this is how it is started):

* ``radical-orbit-bridge.py --host H --port P --cert C --key K --plugins SPEC``: no
  authentication, TLS mandatory (see ``original_launch.py`` for the plain-HTTP run),
  bridge-hosted plugins by default (the bench passes none: they are off the relay
  path), no ``/health``: ``GET /endpoints`` answers once it is up.
* ``radical-orbit-endpoint.py --name N --url http://... --plugins sysinfo``: with an
  ``http://`` URL it dials ``ws://.../register`` and needs no certificate.
* Its cheapest route: ``GET /{endpoint}/sysinfo/homedir``, a dict with one string.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

import httpx

from radical.orbit.testing import free_port

VERSION = "0.2.0"
PACKAGE = f"radical.orbit=={VERSION}"
ENDPOINT = "bench"
ROUTE = "sysinfo/homedir"
HERE = Path(__file__).resolve().parent


class OriginalUnavailable(Exception):
    """The original could not be installed or started; the message says why (shown in its column)."""


def default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "radical-orbit-bench" / f"orig-{VERSION}"


def clean_env(home: Path | None = None) -> dict[str, str]:
    """This process's environment without what would leak our interpreter or Orbit settings into the original's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))}
    env["PYTHONUNBUFFERED"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    return env


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('radical.orbit'))"
    try:
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False, env=clean_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tail(text: str, lines: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "no output"


def ensure_installed(venv: Path, say: Callable[[str], None]) -> Path:
    """The venv's interpreter with the original installed; installs it first when missing."""
    python = venv / "bin" / "python"
    scripts = [venv / "bin" / "radical-orbit-bridge.py", venv / "bin" / "radical-orbit-endpoint.py"]
    if _installed_version(python) == VERSION and all(s.exists() for s in scripts):
        return python
    say(f"installing {PACKAGE} into {venv} (once; later runs reuse it)")
    steps = {
        f"python -m venv {venv}": [sys.executable, "-m", "venv", "--clear", str(venv)],
        f"pip install {PACKAGE}": [str(python), "-m", "pip", "install", "--quiet", PACKAGE],
    }
    for what, argv in steps.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, env=clean_env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OriginalUnavailable(f"{what} failed: {exc}") from exc
        if done.returncode != 0:
            raise OriginalUnavailable(f"{what} failed (package index unreachable?): {_tail(done.stderr or done.stdout)}")
    if _installed_version(python) != VERSION or not all(s.exists() for s in scripts):
        raise OriginalUnavailable(f"{PACKAGE} installed, but its version or its scripts are not where expected in {venv}")
    return python


class Process:
    """A server process the bench starts itself, output to ``<log_dir>/<name>.log``, in a session of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> str | None:
        """None while it runs; once it has exited, how, with the last lines of its log."""
        if self.proc.poll() is None:
            return None
        tail = _tail(self.log_path.read_text(encoding="utf-8", errors="replace"), 5)
        return f"{self.name} exited (code {self.proc.returncode}): {tail}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


class OriginalStack:
    """The original's bridge and endpoint, and the bare app under the original's server settings.

    ``relay_url`` and ``bare_url`` are what the clients call; ``pids`` maps each side
    to ``{role: pid}`` for the CPU meter; ``settings`` is the original's own
    ``uvicorn.run`` arguments (less the TLS pair the bench dropped).
    """

    def __init__(self, python: Path, home: Path, log_dir: Path) -> None:
        self.python = python
        self.bin = python.parent
        self.home = home
        self.log_dir = log_dir
        self.state = home / "launch"
        self.procs: list[Process] = []
        self.settings: dict[str, Any] = {}
        self.relay_url = self.bare_url = ""
        self.pids: dict[str, dict[str, int | None]] = {}

    def _launch(self, mode: str, port: int) -> Process:
        argv = [str(self.python), str(HERE / "original_launch.py"), mode, "--script", str(self.bin / "radical-orbit-bridge.py"), "--port", str(port), "--state", str(self.state)]
        proc = Process(f"original-{mode}", argv, clean_env(self.home), self.log_dir)
        self.procs.append(proc)
        return proc

    def _wait(self, url: str, procs: list[Process], ready: Callable[[httpx.Response], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        last = "no answer"
        while time.monotonic() < deadline:
            for proc in procs:
                if why := proc.exited():
                    raise OriginalUnavailable(why)
            try:
                resp = httpx.get(url, timeout=2)
                if ready(resp):
                    return
                last = f"HTTP {resp.status_code}: {resp.text[:120]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise OriginalUnavailable(f"the original's {what} was not ready in 60 s ({last}); logs in {self.log_dir}")

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        bare_port, bridge_port = free_port(), free_port()
        bare, bridge = self._launch("bare", bare_port), self._launch("bridge", bridge_port)
        bridge_url, self.bare_url = f"http://127.0.0.1:{bridge_port}", f"http://127.0.0.1:{bare_port}/ping"
        self._wait(self.bare_url, [bare], lambda r: r.status_code == 200, "bare app")
        self._wait(f"{bridge_url}/endpoints", [bridge], lambda r: r.status_code == 200, "bridge")
        endpoint_argv = [str(self.python), str(self.bin / "radical-orbit-endpoint.py"), "--name", ENDPOINT, "--url", bridge_url, "--plugins", "sysinfo"]
        endpoint = Process("original-endpoint", endpoint_argv, clean_env(self.home), self.log_dir)
        self.procs.append(endpoint)

        def listed(resp: httpx.Response) -> bool:
            return resp.status_code == 200 and any(e.get("name") == ENDPOINT and e.get("connected") for e in resp.json().get("endpoints", []))

        self._wait(f"{bridge_url}/endpoints", [bridge, endpoint], listed, "endpoint")
        self.relay_url = f"{bridge_url}/{ENDPOINT}/{ROUTE}"
        self._wait(self.relay_url, [bridge, endpoint], lambda r: r.status_code == 200, "relayed route")
        self.settings = json.loads((self.state / "uvicorn-bridge.json").read_text())
        self.pids = {"relay": {"bridge": bridge.pid, "endpoint": endpoint.pid}, "bare": {"app": bare.pid}}

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def exited(self) -> str | None:
        """How one of its processes ended, if one did (to explain a failure mid-run)."""
        return next((why for proc in self.procs if (why := proc.exited())), None)


def describe(settings: dict[str, Any]) -> str:
    """One line on how the original serves (from its own uvicorn.run arguments)."""
    loop = settings.get("loop", "auto")
    http = settings.get("http", "auto")
    if loop == "auto":
        loop = f"auto = {'uvloop' if settings.get('uvloop_installed') else 'asyncio'}"
    if http == "auto":
        http = f"auto = {'httptools' if settings.get('httptools_installed') else 'h11'}"
    return (
        f"loop {loop}, http {http}, access log {'on' if settings.get('access_log', True) else 'off'}, "
        f"log level {settings.get('log_level', 'default')}, ws deflate {'on' if settings.get('ws_per_message_deflate', True) else 'off'}, "
        f"TLS off (the bench dropped {' and '.join(settings.get('dropped_by_the_bench', [])) or 'nothing'})"
    )
