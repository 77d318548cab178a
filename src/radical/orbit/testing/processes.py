"""Start and stop Orbit's own services as real processes (demo, tests, benchmarks).

Each service is ``python -m radical.orbit.cli.main <subcommand> ...`` on a free
loopback port, exactly what a user runs, with its output captured to a log file.
Readiness is checked over HTTP (``GET /health``), or for an endpoint by waiting until
the bridge lists it.

    with start_bridge(home=tmp) as bridge, start_endpoint("ep", bridge, home=tmp):
        ...

An endpoint in the bridge's HOME finds the key the bridge wrote there. One with
another HOME needs a key of its own, enrolled as a user would enrol it::

    key = enroll_endpoint(bridge, "remote")        # radical-orbit bridge endpoints enroll remote
    start_endpoint("remote", bridge, home=other, key=key)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Self

import httpx

from ..lifeline import lifeline

__all__ = [
    "ServiceProcess",
    "bridge_admin",
    "enroll_endpoint",
    "env_with_home",
    "free_port",
    "running",
    "start_bridge",
    "start_emulator",
    "start_endpoint",
    "start_healthy",
    "wait_endpoint_listed",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Refuse a port something already listens on.

    Otherwise the new service dies on its bind error while the readiness check is
    answered by whatever holds the port, and its clients talk to that instead.
    """
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1.0)
        taken = sock.connect_ex((host, port)) == 0
    if taken:
        raise RuntimeError(f"cannot start the {what}: {host}:{port} is already in use (another {what}?); pick another port")


class ServiceProcess:
    """One ``radical-orbit`` subprocess with its log file.

    :param name: short label, used for the log file name
    :param args: arguments after ``radical-orbit``
    :param env: full environment (default: a copy of ``os.environ``)
    :param log_dir: where ``<name>.log`` goes (default: a temp dir)
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        if log_dir is None:
            import tempfile

            log_dir = Path(tempfile.mkdtemp(prefix="orbit-logs-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.url = url
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        #: the write end of the lifeline pipe (see :mod:`radical.orbit.lifeline`)
        self._lifeline: int | None = None

    def __repr__(self) -> str:
        return f"ServiceProcess({self.name!r}, pid={self.pid}, url={self.url!r})"

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return self.proc.pid if self.proc else None

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "radical.orbit.cli.main", *self.args]

    def start(self) -> ServiceProcess:
        """Start the process in a session of its own (a Ctrl-C in the terminal reaches
        only this process, which stops it in order), tied to this process by a
        lifeline: if this process dies, even by SIGKILL, the service stops too."""
        self._cut_lifeline()  # started again: an earlier run's pipe is not needed
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(self.env)
        read_end, self._lifeline = lifeline(env)
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(read_end,),
            )
        except BaseException:
            self._cut_lifeline()
            raise
        finally:
            os.close(read_end)
        return self

    def _cut_lifeline(self) -> None:
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def died(self) -> RuntimeError:
        """The error to raise when the process exited before it was ready (with its log tail)."""
        tail = "\n".join(self.log_text().splitlines()[-30:])
        code = self.proc.returncode if self.proc else None
        return RuntimeError(f"{self.name} exited early (code {code}); last log lines:\n{tail}")

    def wait_http(self, url: str, *, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
        """Poll ``url`` until it answers 2xx, the process dies, or ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Exception | str | None = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise self.died()
            try:
                resp = httpx.get(url, timeout=2.0, headers=headers, verify=False)
                if resp.status_code < 300:
                    return
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout:.0f} s ({last}); log: {self.log_path}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        code: int | None = None
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
            code = self.proc.returncode
        self._cut_lifeline()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_with_home(env: dict[str, str] | None, home: Path | None) -> dict[str, str]:
    out = dict(os.environ if env is None else env)
    if home is not None:
        out["HOME"] = str(home)
    return out


def start_healthy(proc: ServiceProcess, timeout: float) -> ServiceProcess:
    """Start ``proc`` and wait for ``GET {url}/health``; stop it again if that fails."""
    proc.start()
    try:
        proc.wait_http(f"{proc.url}/health", timeout=timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_emulator(
    *,
    port: int | None = None,
    root: Path | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    home: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """Start ``radical-orbit emulator`` and wait for ``GET /health``; ``.url`` is its root."""
    if port:
        ensure_port_free(port, "emulator")
    port = port or free_port()
    argv = ["emulator", "--host", "127.0.0.1", "--port", str(port)]
    if root is not None:
        argv += ["--root", str(root)]
    argv += list(args)
    url = f"http://127.0.0.1:{port}"
    proc = ServiceProcess("emulator", argv, env=env_with_home(env, home), log_dir=log_dir, url=url)
    return start_healthy(proc, timeout)


def start_bridge(
    *,
    port: int | None = None,
    token: str | None = "test-bridge-token",
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    home: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
    redis: str | None = None,
    name: str = "bridge",
) -> ServiceProcess:
    """Start ``radical-orbit bridge`` and wait for ``GET /health``.

    ``token=None`` starts it with ``--no-auth``; ``redis=URL`` as one replica of
    several sharing that Redis (``RADICAL_ORBIT_REDIS_URL``, which :func:`bridge_admin`
    then passes on too); ``name`` names its log file.
    """
    if port:
        ensure_port_free(port, "bridge")
    port = port or free_port()
    argv = ["bridge", "--host", "127.0.0.1", "--port", str(port)]
    if not token:
        argv += ["--no-auth"]
    argv += list(args)
    url = f"http://127.0.0.1:{port}"
    penv = env_with_home(env, home)
    if token:  # via the environment, not argv: argv is visible to every local user in `ps`
        penv["RADICAL_ORBIT_BRIDGE_TOKEN"] = token
    if redis:  # the environment too, so bridge_admin()/enroll_endpoint() edit the shared identities
        penv["RADICAL_ORBIT_REDIS_URL"] = redis
    proc = ServiceProcess(name, argv, env=penv, log_dir=log_dir, url=url, token=token)
    return start_healthy(proc, timeout)


def bridge_admin(bridge: ServiceProcess, *args: str, timeout: float = 30.0) -> str:
    """Run ``radical-orbit bridge ARGS`` (``tokens ...``, ``endpoints ...``) in the bridge's
    environment (its HOME) and return what it printed on stdout.

    :raises RuntimeError: the command failed (with what it said on stderr)
    """
    argv = [sys.executable, "-m", "radical.orbit.cli.main", "bridge", *args]
    done = subprocess.run(argv, env=bridge.env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"radical-orbit bridge {' '.join(args)} failed (code {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def enroll_endpoint(bridge: ServiceProcess, name: str) -> str:
    """``radical-orbit bridge endpoints enroll NAME``; returns the endpoint key it printed."""
    out = bridge_admin(bridge, "endpoints", "enroll", name)
    prefix = "export RADICAL_ORBIT_ENDPOINT_KEY="
    for line in out.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise RuntimeError(f"`radical-orbit bridge endpoints enroll {name}` printed no key line")


def wait_endpoint_listed(bridge_url: str, token: str | None, name: str, *, timeout: float = 30.0, proc: ServiceProcess | None = None) -> dict[str, Any]:
    """Poll the bridge's ``GET /endpoints`` until ``name`` is connected (in any case: the
    bridge lists an endpoint with the case its name was first claimed with)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise proc.died()
        try:
            resp = httpx.get(f"{bridge_url}/endpoints", headers=headers, timeout=2.0, verify=False)
            if resp.status_code == 200:
                for info in resp.json().get("endpoints", []):
                    if str(info.get("name")).casefold() == name.casefold() and info.get("alive", True):
                        return dict(info)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"endpoint {name!r} did not register with {bridge_url} within {timeout:.0f} s")


def start_endpoint(
    name: str,
    bridge: ServiceProcess | str,
    *,
    token: str | None = None,
    key: str | None = None,
    plugins: Sequence[str] | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    home: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """Start ``radical-orbit endpoint --name NAME`` and wait until the bridge lists it.

    :param token: the client token used to watch the bridge's listing (default: the
        bridge's); the endpoint itself does not get it
    :param key: the endpoint key, passed as ``RADICAL_ORBIT_ENDPOINT_KEY`` (None: the
        endpoint finds the key the bridge wrote in its HOME)
    """
    if isinstance(bridge, ServiceProcess):
        url = bridge.url or ""
        token = token if token is not None else bridge.token
    else:
        url = bridge
    argv = ["endpoint", "--name", name, "--url", url]
    if plugins:
        argv += ["--plugins", ",".join(plugins)]
    argv += list(args)
    penv = env_with_home(env, home)
    if key:  # via the environment, never argv
        penv["RADICAL_ORBIT_ENDPOINT_KEY"] = key
    proc = ServiceProcess(f"endpoint-{name}", argv, env=penv, log_dir=log_dir, url=url, token=token)
    proc.start()
    try:
        wait_endpoint_listed(url, token, name, timeout=timeout, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


@contextlib.contextmanager
def running(*procs: ServiceProcess) -> Iterator[tuple[ServiceProcess, ...]]:
    """Stop every given process on exit, newest first."""
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()
