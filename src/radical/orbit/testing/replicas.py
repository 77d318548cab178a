"""Bridge replicas on one Redis, as real processes (the HA tests and ``bench/ha.py``).

    with start_replicas(base, count=2) as cluster:
        a, b = cluster.bridges                       # ServiceProcess, each with its own HOME
        key = cluster.enroll("ep1")                  # into the identities they share
        start_endpoint("ep1", a, key=key, home=cluster.home("ep1"))
        cluster.kill(0); cluster.restart(0)          # kill -9 a replica, start it again
        cluster.redis.kill(); cluster.redis.restart()

Every replica gets the same default token (``token``), a HOME of its own and
``RADICAL_ORBIT_REDIS_URL``, so ``bridge_admin(cluster.bridges[i], ...)`` edits the
shared identities, as an operator who exported that variable would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import httpx

from .processes import (
    ServiceProcess,
    bridge_admin,
    enroll_endpoint,
    free_port,
    start_bridge,
)
from .redis_server import RedisServer, start_redis

__all__ = ["Replicas", "start_replicas"]


class Replicas:
    """A Redis and ``count`` bridge replicas using it.

    :param base: a directory for the HOMEs (``base/home-<i>``) and logs (``base/logs``)
    :param token: every replica's default token
    :param args: extra ``radical-orbit bridge`` arguments for every replica
    :param env: extra environment for every replica (e.g. ``RADICAL_ORBIT_BRIDGE_LEASE_TTL``)
    """

    def __init__(
        self,
        base: Path,
        *,
        count: int = 2,
        token: str = "replica-test-token",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.logs = base / "logs"
        self.token = token
        self.args = list(args)
        self.env = dict(env or {})
        self.ports = [free_port() for _ in range(count)]
        self.redis: RedisServer | None = None
        self.bridges: list[ServiceProcess] = []

    def __repr__(self) -> str:
        return f"Replicas({self.urls!r}, redis={self.redis!r})"

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def home(self, name: str) -> Path:
        path = self.base / f"home-{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self) -> Self:
        self.redis = start_redis(log_dir=self.logs)
        for i in range(len(self.ports)):
            self.bridges.append(self._start(i))
        return self

    def _start(self, i: int, timeout: float = 30.0) -> ServiceProcess:
        assert self.redis is not None
        env = {**os.environ, **self.env}
        return start_bridge(
            port=self.ports[i], token=self.token, args=self.args, env=env, home=self.home(str(i)),
            log_dir=self.logs, timeout=timeout, redis=self.redis.url, name=f"bridge-{i}",
        )

    def enroll(self, name: str) -> str:
        """An endpoint key for ``name`` in the shared identities."""
        return enroll_endpoint(self.bridges[0], name)

    def admin(self, i: int, *args: str) -> str:
        """``radical-orbit bridge ARGS`` as replica ``i``'s operator (shared identities)."""
        return bridge_admin(self.bridges[i], *args)

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to replica ``i`` (SIGKILL: gone at once; SIGSTOP/SIGCONT: paused/resumed)."""
        proc = self.bridges[i].proc
        assert proc is not None
        os.kill(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def restart(self, i: int, timeout: float = 30.0) -> ServiceProcess:
        """Stop replica ``i`` (if it still runs) and start it again on its port."""
        self.bridges[i].stop()
        deadline = time.monotonic() + 10
        while True:  # the old socket may linger for a moment
            try:
                self.bridges[i] = self._start(i, timeout)
                return self.bridges[i]
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def health(self, i: int) -> dict[str, object]:
        """Replica ``i``'s ``GET /health`` ({} when it does not answer)."""
        try:
            return dict(httpx.get(f"{self.urls[i]}/health", timeout=2.0).json())
        except (httpx.HTTPError, ValueError):
            return {}

    def logs_tail(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} -----\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in reversed(self.bridges):
            if proc.proc is not None and proc.proc.poll() is None:
                os.kill(proc.proc.pid, signal.SIGCONT)  # a paused one must see SIGTERM
            proc.stop()
        if self.redis is not None:
            self.redis.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_replicas(base: Path, **kwargs: object) -> Replicas:
    """A started :class:`Replicas` (stopped again if starting fails)."""
    cluster = Replicas(base, **kwargs)  # type: ignore[arg-type]
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise
