"""A real ``redis-server`` on a free loopback port, for the bridge-replica tests and benches.

    with start_redis(log_dir=tmp) as redis:
        start_bridge(redis=redis.url, ...)
        redis.kill(); redis.restart()        # Redis away, and back (empty: nothing is saved)

It needs the ``redis-server`` program (Debian's package of that name); without it
:func:`start_redis` fails with a message that says so, and tests that need it fail
rather than skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Self

from .processes import ensure_port_free, free_port

__all__ = ["RedisServer", "redis_ping", "start_redis"]


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether a Redis answers PING on ``host:port`` (spoken directly: no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process: no persistence, loopback only, its log in ``log_dir``."""

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        program = shutil.which("redis-server")
        if program is None:
            raise RuntimeError(
                "redis-server is not installed; the bridge-replica tests need a real one: "
                "apt-get install redis-server (.ci/run installs it)"
            )
        self.program = program
        self.port = port or free_port()
        self.log_dir = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="orbit-redis-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r}, pid={self.proc.pid if self.proc else None})"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        ensure_port_free(self.port, "redis-server")
        argv = [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.log_dir)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not redis_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` (SIGSTOP: unresponsive but connected; SIGCONT: back)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """Gone at once (SIGKILL), with everything it held."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def restart(self, timeout: float = 10.0) -> Self:
        """A new, empty redis-server on the same port."""
        self.kill()
        deadline = time.monotonic() + timeout
        while True:  # the old socket may linger for a moment
            try:
                return self.start(timeout)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(*, port: int | None = None, log_dir: Path | None = None, timeout: float = 10.0) -> RedisServer:
    """Start a ``redis-server`` on a free loopback port and wait until it answers PING."""
    return RedisServer(port, log_dir).start(timeout)
