"""Relay benchmark: what the bridge adds to a no-op plugin call (issue 2).

Setup (loopback only, ~50 s): a real bridge and a real endpoint, started as
subprocesses through :mod:`radical.orbit.testing` (private temporary HOME), and a
bare Starlette app with one ``GET /ping`` route served by uvicorn in a third
process with the same loop/HTTP implementation the bridge uses.

Measured with the same client code on both sides (httpx, except for capacity):

* latency: sequential ``GET /{ep}/sysinfo/ping`` through client -> bridge ->
  endpoint, next to ``GET /ping`` on the bare app; median and p99. Relay and
  direct run in alternating rounds so background load hits both alike.
* throughput: requests/s with 32 concurrent clients (threads), each with its own
  ``httpx.Client``, and with one shared client; relay vs direct, in alternating
  short runs (median of each side).
* capacity: the same, driven by a load generator light enough that the servers,
  not the client, run out of CPU: 32 keep-alive connections on one uvloop loop in
  a separate process, responses parsed by httptools. The 32 httpx threads share
  one GIL and keep the client process at one core while the servers idle; these
  runs show what the bridge and endpoint themselves can carry.
* where the CPU went: cores used by the client or load generator, the bridge,
  the endpoint and the direct server during each kind of run (from /proc, Linux).

Targets (issue 2): added median <= 0.4 ms; relayed rate >= 80 % of the direct rate
with the 32 httpx clients. Capacity has no target; it is reported beside them.

    python bench/relay.py [--requests 3000] [--duration 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httptools
import httpx
from rich.console import Console
from rich.table import Table

from radical.orbit.testing import free_port, start_bridge, start_endpoint

TOKEN = "bench-relay-token"
ENDPOINT = "bench"
CONCURRENCY = 32
TARGET_ADDED_MEDIAN_MS = 0.4
TARGET_RATE_RATIO = 0.80


# -- the direct baseline: a bare Starlette app under uvicorn --------------------------------


def serve_direct(port: int) -> None:
    """Run the bare app (in its own process; see ``--serve-direct``)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"pong": True})

    app = Starlette(routes=[Route("/ping", ping)])
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, http=http, access_log=False, log_level="warning", server_header=False)


def start_direct(log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(log_dir / "direct.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, __file__, "--serve-direct", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"direct server did not start; see {log_dir / 'direct.log'}")


# -- measurements ---------------------------------------------------------------------------


def latencies(client: httpx.Client, url: str, n: int, *, budget: float = 60.0) -> list[float]:
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
    """Requests/s of CONCURRENCY threads calling ``url`` for ``duration`` seconds.

    Threads with the synchronous ``httpx.Client``: on this kind of machine it costs
    the load generator far less CPU per request than ``httpx.AsyncClient``, so more
    of the two cores is left to the servers being measured.
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
        self.transport.write(self.request)

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


def _load_process(url: str, token: str, connections: int, start_at: float, duration: float, out: Any) -> None:
    """Body of the load generator process: puts ``(answered 200, other, cpu seconds)`` on ``out``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\n\r\n"
    ).encode("ascii")

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


def capacity(url: str, token: str, duration: float, pids: dict[str, int | None]) -> tuple[float, int, dict[str, float]]:
    """Requests/s that 32 light connections get from ``url``; also the cores each process used."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.0  # the spawned interpreter starts up before the clock runs
    proc = ctx.Process(target=_load_process, args=(url, token, CONCURRENCY, start_at, duration, out), daemon=True)
    proc.start()
    time.sleep(max(0.0, start_at - time.time()))
    with CpuMeter(pids) as meter:
        answer = out.get(timeout=duration + 60)
    proc.join(timeout=10)
    if isinstance(answer, Exception):
        raise RuntimeError(f"the load generator failed on {url}: {answer!r}") from answer  # noqa: TRY004 - not a type error
    ok, bad, load_cpu = answer
    cores = dict(meter.cores)
    cores["client"] = load_cpu / duration
    return ok / duration, bad, cores


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per side for latency")
    parser.add_argument("--rounds", type=int, default=6, help="alternating relay/direct rounds")
    parser.add_argument("--latency-budget", type=float, default=14.0, help="at most this many seconds of latency rounds")
    parser.add_argument("--duration", type=float, default=3.6, help="seconds of load per side and client mode")
    parser.add_argument("--rate-rounds", type=int, default=3, help="alternating relay/direct runs per client mode")
    parser.add_argument("--capacity-duration", type=float, default=2.0, help="seconds per capacity run")
    parser.add_argument("--capacity-rounds", type=int, default=2, help="alternating relay/direct capacity runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-direct", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_direct:
        serve_direct(args.serve_direct)
        return 0

    console = Console()
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="orbit-bench-"))
    logs = home / "logs"
    logs.mkdir()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    results: dict[str, Any] = {}
    direct_proc, direct_url = start_direct(logs)
    try:
        with start_bridge(token=TOKEN, home=home, log_dir=logs) as bridge, start_endpoint(
            ENDPOINT, bridge, plugins=["sysinfo"], home=home, log_dir=logs
        ) as endpoint:
            relay_url = f"{bridge.url}/{ENDPOINT}/sysinfo/ping"
            direct_ping = f"{direct_url}/ping"
            console.print(f"bridge {bridge.url}, direct {direct_url}; logs in {logs}")

            # latency, in alternating rounds
            relay_lat: list[float] = []
            direct_lat: list[float] = []
            per_round = max(1, args.requests // args.rounds)
            with httpx.Client(headers=headers, timeout=30) as client:
                latencies(client, relay_url, 300, budget=2)
                latencies(client, direct_ping, 300, budget=2)
                budget = args.latency_budget / (2 * args.rounds)
                for _ in range(args.rounds):
                    relay_lat += latencies(client, relay_url, per_round, budget=budget)
                    direct_lat += latencies(client, direct_ping, per_round, budget=budget)

            # throughput: alternating short runs, median of each side
            pids: dict[str, int | None] = {"client": os.getpid(), "bridge": bridge.pid, "endpoint": endpoint.pid, "direct": direct_proc.pid}
            rates: dict[str, float] = {}
            cores: dict[str, dict[str, float]] = {}
            errors = 0
            for mode in ("own", "shared", "capacity"):
                runs: dict[str, list[float]] = {"relay": [], "direct": []}
                used: dict[str, list[dict[str, float]]] = {"relay": [], "direct": []}
                for _ in range(args.rate_rounds if mode != "capacity" else args.capacity_rounds):
                    for name, url in (("relay", relay_url), ("direct", direct_ping)):
                        if mode == "capacity":
                            value, errs, share = capacity(url, TOKEN, args.capacity_duration, pids)
                        else:
                            with CpuMeter(pids) as meter:
                                value, errs = rate(url, headers, args.duration / args.rate_rounds, shared=mode == "shared")
                            share = meter.cores
                        runs[name].append(value)
                        used[name].append(share)
                        errors += errs
                for name, values in runs.items():
                    rates[f"{name}_{mode}"] = statistics.median(values)
                    keys = used[name][0].keys() if used[name] else ()
                    cores[f"{name}_{mode}"] = {k: statistics.mean(u.get(k, 0.0) for u in used[name]) for k in keys}
    finally:
        direct_proc.terminate()
        direct_proc.wait(timeout=10)

    ms = 1000.0
    r_med, d_med = statistics.median(relay_lat) * ms, statistics.median(direct_lat) * ms
    r_p99, d_p99 = pct(relay_lat, 0.99) * ms, pct(direct_lat, 0.99) * ms
    added = r_med - d_med
    ratio_own = rates["relay_own"] / rates["direct_own"]
    ratio_shared = rates["relay_shared"] / rates["direct_shared"]
    ratio_capacity = rates["relay_capacity"] / rates["direct_capacity"]
    results = {
        "latency_ms": {"relay_median": r_med, "relay_p99": r_p99, "direct_median": d_med, "direct_p99": d_p99, "added_median": added},
        "rate_rps": rates,
        "rate_ratio": {"own_clients": ratio_own, "shared_client": ratio_shared, "capacity": ratio_capacity},
        "cpu_cores": cores,
        "errors": errors,
        "requests": len(relay_lat),
        "concurrency": CONCURRENCY,
        "seconds": time.monotonic() - started,
        "load_average": [load_before, os.getloadavg()[0]],
        "cpus": os.cpu_count(),
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "httptools": importlib.util.find_spec("httptools") is not None,
    }

    def verdict(ok: bool) -> str:
        return "[green]ok[/]" if ok else "[red]missed[/]"

    table = Table(title=f"Relay benchmark ({len(relay_lat)} sequential requests per side, {CONCURRENCY} concurrent clients)")
    table.add_column("measure")
    table.add_column("relay", justify="right")
    table.add_column("direct", justify="right")
    table.add_column("relay - direct / ratio", justify="right")
    table.add_column("target", justify="right")
    table.add_row("median latency (ms)", f"{r_med:.3f}", f"{d_med:.3f}", f"{added:+.3f} ms", f"<= +{TARGET_ADDED_MEDIAN_MS} ms {verdict(added <= TARGET_ADDED_MEDIAN_MS)}")
    table.add_row("p99 latency (ms)", f"{r_p99:.3f}", f"{d_p99:.3f}", f"{r_p99 - d_p99:+.3f} ms", "")
    table.add_row(
        "req/s, 32 own clients",
        f"{rates['relay_own']:.0f}",
        f"{rates['direct_own']:.0f}",
        f"{ratio_own:.1%}",  # one decimal: 79.6 % must not read as 80 %
        f">= {TARGET_RATE_RATIO:.0%} {verdict(ratio_own >= TARGET_RATE_RATIO)}",
    )
    table.add_row(
        "req/s, 1 shared client",
        f"{rates['relay_shared']:.0f}",
        f"{rates['direct_shared']:.0f}",
        f"{ratio_shared:.1%}",
        f">= {TARGET_RATE_RATIO:.0%} {verdict(ratio_shared >= TARGET_RATE_RATIO)}",
    )
    table.add_row(
        "req/s, capacity",
        f"{rates['relay_capacity']:.0f}",
        f"{rates['direct_capacity']:.0f}",
        f"{ratio_capacity:.0%}",
        "none (servers saturated)",
    )
    console.print(table)

    if any(cores.values()):
        used = Table(title="Where the CPU went (cores used during the runs; 2 = the whole machine here)")
        used.add_column("run")
        for name in ("client", "bridge", "endpoint", "direct"):
            used.add_column(name if name != "client" else "client / load gen", justify="right")
        used.add_column("total", justify="right")
        labels = {"own": "32 own httpx clients", "shared": "1 shared httpx client", "capacity": "capacity (light load gen)"}
        for mode, label in labels.items():
            for side in ("relay", "direct"):
                share = cores.get(f"{side}_{mode}", {})
                names = ("client", "bridge", "endpoint") if side == "relay" else ("client", "direct")
                cells = [f"{share[n]:.2f}" if n in names and n in share else "" for n in ("client", "bridge", "endpoint", "direct")]
                used.add_row(f"{label}, {side}", *cells, f"{sum(share.get(n, 0.0) for n in names):.2f}")
        console.print(used)
        console.print(
            "With httpx threads the client process is held near one core by its GIL while the servers idle: "
            "those rates measure the client. The capacity runs leave the CPU to the servers."
        )
    console.print("original Orbit, same kind of 2-core machine: +0.39 ms median, relay p99 ~1.1 ms, ~1,900 req/s = 77 % of direct")
    console.print(
        f"errors: {errors}; uvloop: {results['uvloop']}, httptools: {results['httptools']}; "
        f"{results['cpus']} CPUs, load average {load_before:.2f} -> {results['load_average'][1]:.2f}; took {results['seconds']:.1f} s"
    )
    if load_before > 1.0:
        console.print("[yellow]the machine was busy with other work: latency and rates are pessimistic[/]")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
