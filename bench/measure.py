"""The client side of bench/relay.py: one set of measuring code for every server it compares.

* :func:`latencies`: sequential calls with ``httpx``, one at a time.
* :func:`rate`: requests/s of 32 ``httpx`` threads, each with its own client or all
  sharing one (what a Python user's program gets).
* :func:`capacity`: requests/s from a load generator light enough that the servers,
  not the client, run out of CPU: 32 keep-alive connections on one uvloop loop in a
  process of its own, responses parsed by httptools. The httpx threads share one GIL
  and hold the client process at one core while the servers idle; this one shows
  what the servers themselves can carry.
* :class:`CpuMeter`: the cores each process used while a block ran (from /proc, Linux).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httptools
import httpx

CONCURRENCY = 32


def latencies(client: httpx.Client, url: str, n: int, *, budget: float) -> list[float]:
    """Up to ``n`` sequential calls, stopping early after ``budget`` seconds."""
    out: list[float] = []
    give_up = time.perf_counter() + budget
    for _ in range(n):
        if time.perf_counter() > give_up:
            break
        t0 = time.perf_counter()
        resp = client.get(url)
        out.append(time.perf_counter() - t0)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url} -> {resp.status_code}: {resp.text[:200]}")
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system, all threads) of process ``pid`` so far; None off Linux."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """Cores each process used while the block ran: ``{name: cores}`` in :attr:`cores`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.cores: dict[str, float] = {}

    def __enter__(self) -> Self:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        for name, pid in self.pids.items():
            before, after = self._start[name], cpu_seconds(pid)
            if before is not None and after is not None and wall > 0:
                self.cores[name] = (after - before) / wall


def rate(url: str, headers: dict[str, str], duration: float, *, shared: bool) -> tuple[float, int]:
    """Requests/s of CONCURRENCY threads calling ``url`` for ``duration`` seconds, and the non-200 count.

    Threads with the synchronous ``httpx.Client``: it costs the client far less CPU per
    request than ``httpx.AsyncClient``, so more of the machine is left to the servers.
    """
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    count = 1 if shared else CONCURRENCY
    clients = [httpx.Client(headers=headers, limits=limits, timeout=30) for _ in range(count)]
    counts = [0] * CONCURRENCY
    errors = [0] * CONCURRENCY
    start = threading.Barrier(CONCURRENCY + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        client = clients[0] if shared else clients[i]
        client.get(url)  # open the connection before the clock starts
        start.wait()
        done = bad = 0
        while time.perf_counter() < stop_at[0]:
            if client.get(url).status_code == 200:
                done += 1
            else:
                bad += 1
        counts[i], errors[i] = done, bad

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CONCURRENCY)]
    try:
        for t in threads:
            t.start()
        stop_at[0] = time.perf_counter() + 3600
        start.wait()
        t0 = time.perf_counter()
        stop_at[0] = t0 + duration
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        for c in clients:
            c.close()
    return sum(counts) / elapsed, sum(errors)


# -- capacity: a load generator that leaves the CPU to the servers ---------------------


class _Driver(asyncio.Protocol):
    """One keep-alive connection sending the same request back to back until ``stop``."""

    def __init__(self, request: bytes, stop: float, tally: list[int]) -> None:
        self.request = request
        self.stop = stop
        self.tally = tally  # [answered 200, answered otherwise]
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(exc)

    def on_message_complete(self) -> None:  # httptools callback: one whole response
        self.tally[0 if self.parser.get_status_code() == 200 else 1] += 1
        if time.perf_counter() < self.stop and self.transport is not None:
            self.transport.write(self.request)
        else:
            self._finish(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("the server closed the connection"))

    def _finish(self, exc: BaseException | None) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


def request_bytes(url: str, headers: dict[str, str]) -> bytes:
    """The one HTTP/1.1 request a capacity run repeats: ``GET`` of ``url`` with ``headers``."""
    parts = urlsplit(url)
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _load_process(url: str, headers: dict[str, str], connections: int, start_at: float, duration: float, out: Any) -> None:
    """Body of the load generator process: puts ``(answered 200, other, cpu seconds)`` on ``out``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(url, headers)

    async def drive() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        tally = [0, 0]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop = time.perf_counter() + duration
        drivers = []
        for _ in range(connections):
            _, driver = await loop.create_connection(lambda: _Driver(request, stop, tally), host, port)
            drivers.append(driver)
        finished = asyncio.gather(*(d.done for d in drivers), return_exceptions=True)
        results = await asyncio.wait_for(finished, duration + 30)
        return tally[0], tally[1] + sum(isinstance(r, BaseException) for r in results)

    cpu0 = time.process_time()
    try:
        try:
            import uvloop

            ok, bad = uvloop.run(drive())
        except ImportError:
            ok, bad = asyncio.run(drive())
    except Exception as exc:  # noqa: BLE001 - reported by the parent instead of a silent timeout
        out.put(exc)
        return
    out.put((ok, bad, time.process_time() - cpu0))


def capacity(url: str, headers: dict[str, str], duration: float, pids: dict[str, int | None]) -> tuple[float, int, dict[str, float]]:
    """Requests/s that CONCURRENCY light connections get from ``url``, the non-200 count,
    and the cores each process (``client`` = the load generator) used."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.0  # the spawned interpreter starts up before the clock runs
    proc = ctx.Process(target=_load_process, args=(url, headers, CONCURRENCY, start_at, duration, out), daemon=True)
    proc.start()
    time.sleep(max(0.0, start_at - time.time()))
    with CpuMeter(pids) as meter:
        answer = out.get(timeout=duration + 60)
    proc.join(timeout=10)
    out.close()
    if isinstance(answer, Exception):
        raise RuntimeError(f"the load generator failed on {url}: {answer!r}") from answer  # noqa: TRY004 - not a type error
    ok, bad, load_cpu = answer
    cores = dict(meter.cores)
    cores["client"] = load_cpu / duration
    return ok / duration, bad, cores
