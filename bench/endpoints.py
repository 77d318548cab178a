"""What connected endpoints cost the bridge: memory per endpoint, and relay latency
with 1,000 endpoints connected (issue 13).

    python bench/endpoints.py [--endpoints 1000] [--calls 1000] [--json out.json]

A real bridge and one real endpoint (sysinfo) on 127.0.0.1, started as a user starts
them; the measured calls are ``GET /bench/sysinfo/ping`` (sequential httpx calls) to
that endpoint. The other endpoints come from a light simulator, one helper process
(``--simulate``): N raw WebSocket connections on one asyncio loop, each doing what an
endpoint does to stay connected: the handshake with the endpoint key the bridge wrote
in its HOME (``Authorization`` and ``X-Orbit-Endpoint``), a ``register`` frame, and a
``pong`` for every ``ping`` (the first connection under each name also claims it in
the identity store on disk, which the connect time includes). The bridge's resident
memory (RSS) and the call's latency are taken with the real endpoint alone, then with
all N connected, each over several rounds of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from measure import latencies, pct
from rich.console import Console
from rich.table import Table

from radical.orbit.testing import start_bridge, start_endpoint, wait_endpoint_listed

TOKEN = "bench-endpoints-token"
ENDPOINT = "bench"
#: handshakes the simulator runs at once
CONNECT_BATCH = 50


def raise_fd_limit() -> None:
    """Room for a socket per endpoint in this process and its children (the bridge)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def rss_mib(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid} (Linux only)")


# -- the simulator (a process of its own) -------------------------------------------------
async def simulated_endpoint(url: str, key: str, name: str, ready: asyncio.Event, done: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {key}", "X-Orbit-Endpoint": name}
    async with connect(url, additional_headers=headers, open_timeout=60, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "register", "v": 1, "name": name, "plugins": [{"name": "sim"}]}))
        answer = json.loads(await ws.recv())
        if answer.get("type") != "registered":
            raise RuntimeError(f"{name}: the bridge answered {answer}")
        ready.set()
        reader = asyncio.ensure_future(_answer_pings(ws))
        stop = asyncio.ensure_future(done.wait())
        await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        stop.cancel()


async def _answer_pings(ws: Any) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        if frame.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong", "ts": frame["ts"]}))


async def simulate(url: str, key: str, count: int) -> None:
    """Connect ``count`` endpoints, say ``ready`` on stdout, hold them until stdin closes."""
    done = asyncio.Event()
    tasks = []
    for start in range(0, count, CONNECT_BATCH):
        readies = [asyncio.Event() for _ in range(start, min(count, start + CONNECT_BATCH))]
        for offset, ready in enumerate(readies):
            name = f"sim-{start + offset:05d}"
            tasks.append(asyncio.ensure_future(simulated_endpoint(url, key, name, ready, done)))
        waiting = [asyncio.ensure_future(r.wait()) for r in readies]
        finished, _ = await asyncio.wait(waiting, timeout=120)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed or len(finished) != len(waiting):
            raise SystemExit(f"simulator: {len(failed)} endpoints failed ({failed[0].exception() if failed else 'timeout'})")
    print("ready", count, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- the measuring side ---------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="orbit-bench-endpoints-") as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        bridge = start_bridge(token=TOKEN, env=dict(os.environ), home=home, log_dir=logs)
        endpoint = sim = None
        try:
            endpoint = start_endpoint(ENDPOINT, bridge, plugins=["sysinfo"], env=dict(os.environ), home=home, log_dir=logs)
            url = f"{bridge.url}/{ENDPOINT}/sysinfo/ping"
            key = (home / ".radical" / "orbit" / "endpoint.key").read_text().strip()
            ws_url = (bridge.url or "").replace("http://", "ws://") + "/ws/endpoint"
            with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
                latencies(http, url, 200, budget=10)  # warm up
                before = []
                for _ in range(args.rounds):
                    before += latencies(http, url, args.calls // args.rounds, budget=30)
                time.sleep(1.0)
                rss_before = rss_mib(bridge.pid)
                t0 = time.perf_counter()
                sim = subprocess.Popen(
                    [sys.executable, __file__, "--simulate", ws_url, "--endpoints", str(args.endpoints)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "SIM_KEY": key},
                )
                assert sim.stdout is not None and sim.stdin is not None
                line = sim.stdout.readline()
                if not line.startswith("ready"):
                    raise SystemExit(f"the simulator did not connect its endpoints (exit {sim.wait(30)})")
                connected_s = time.perf_counter() - t0
                wait_endpoint_listed(bridge.url or "", TOKEN, f"sim-{args.endpoints - 1:05d}", timeout=60)
                listing = http.get(f"{bridge.url}/endpoints").json()["endpoints"]
                time.sleep(1.0)
                rss_with = rss_mib(bridge.pid)
                during = []
                for _ in range(args.rounds):
                    during += latencies(http, url, args.calls // args.rounds, budget=30)
                t1 = time.perf_counter()
                http.get(f"{bridge.url}/endpoints")
                list_ms = (time.perf_counter() - t1) * 1000
                alive = len(http.get(f"{bridge.url}/endpoints").json()["endpoints"])
        finally:
            if sim is not None and sim.stdin is not None:
                sim.stdin.close()
                sim.wait(60)
            if endpoint is not None:
                endpoint.stop()
            bridge.stop()
    return {
        "endpoints": args.endpoints,
        "listed": len(listing),
        "alive_after": alive,
        "before": before,
        "during": during,
        "rss_before": rss_before,
        "rss_with": rss_with,
        "connect_s": connected_s,
        "list_ms": list_ms,
    }


def ms(values: list[float], q: float | None = None) -> str:
    return f"{1000 * (statistics.median(values) if q is None else pct(values, q)):.3f}"


def rows(r: dict[str, Any]) -> list[list[str]]:
    n = r["endpoints"]
    setup = f"{n} simulated endpoints + 1 real (sysinfo)"
    ratio = statistics.median(r["during"]) / statistics.median(r["before"])
    per_kib = (r["rss_with"] - r["rss_before"]) * 1024 / n
    return [
        ["bridge memory per connected endpoint", setup, f"{per_kib:.0f} KiB",
         f"RSS {r['rss_before']:.0f} MiB with 1 endpoint", f"{r['rss_with']:.0f} MiB with {n + 1} (+{r['rss_with'] - r['rss_before']:.0f} MiB)"],
        ["relay latency median", setup, f"{ms(r['during'])} ms", f"{ms(r['before'])} ms with 1 endpoint",
         f"{ratio:.2f}x ({len(r['during'])} and {len(r['before'])} calls)"],
        ["relay latency p99", setup, f"{ms(r['during'], 0.99)} ms", f"{ms(r['before'], 0.99)} ms with 1 endpoint", ""],
        ["connecting the endpoints", setup, f"{r['connect_s']:.1f} s for {n}", "", f"{r['listed']} listed; {r['alive_after']} still after the calls"],
        ["GET /endpoints", setup, f"{r['list_ms']:.1f} ms", "", f"lists {r['listed']} endpoints"],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoints", type=int, default=1000, help="simulated endpoints (default 1000)")
    ap.add_argument("--calls", type=int, default=1000, help="measured calls on each side (default 1000)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds the calls are split into (default 4)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON (for bench/run_all.py)")
    ap.add_argument("--simulate", metavar="WS_URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.simulate:
        raise_fd_limit()
        asyncio.run(simulate(args.simulate, os.environ["SIM_KEY"], args.endpoints))
        return
    result = run(args)
    table = Table(title=f"The bridge with {args.endpoints} endpoints connected")
    for i, column in enumerate(["measure", "setup", "radical.orbit", "baseline", "result"]):
        table.add_column(column, justify="left" if i < 2 else "right")
    found = rows(result)
    for row in found:
        table.add_row(*row)
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": found}, indent=1) + "\n")
    sys.exit(0 if result["listed"] >= args.endpoints else 1)


if __name__ == "__main__":
    main()
