"""Relay benchmark: what our relay adds to a no-op call, next to what the original Orbit's adds (issue 12).

Six servers in one run, on 127.0.0.1, each called by the same client code (measure.py):

* ours: a real bridge and endpoint (sysinfo) started through
  :mod:`radical.orbit.testing` as a user starts them; ``GET /{ep}/sysinfo/ping``;
* our bare app (bare_app.py: one ``GET /ping``), served the way our bridge serves;
* the original: ``radical.orbit==0.2.0`` from the package index, installed by this
  bench into a venv of its own (original.py), its bridge and endpoint over plain
  HTTP; ``GET /{ep}/sysinfo/homedir``, its cheapest route;
* its bare app: the same bare app under the original's own uvicorn settings
  (original_launch.py);
* our floor: forwarder.py, a process that only copies bytes, in front of the same
  route as a FastAPI app (what a plugin is). Any relay in front of a plugin pays at
  least this: one more process, two more loopback hops, and FastAPI's own cost.

Each relay is compared with its own bare app: "added" = relay - its bare app, so
that the server settings of either stack are not counted as relay cost. All of them
run in alternating rounds so that background load hits them alike:

* latency: sequential calls with httpx; median and p99;
* throughput: 32 httpx threads, each with its own client, and sharing one client;
* capacity: a light load generator (uvloop + httptools, its own process, 32
  keep-alive connections) that leaves the CPU to the servers;
* where the CPU went: cores used by the client or load generator and each server
  process during each kind of run (/proc, Linux).

Targets (issue 12): our added median <= 0.5x the original's; our relay capacity
>= 3x the original's; our relay capacity >= 50 % of our bare app's.

    python bench/relay.py [--requests 3000] [--no-original] [--original-venv DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from measure import CONCURRENCY, CpuMeter, capacity, latencies, pct, rate
from original import VERSION as ORIGINAL_VERSION
from original import (
    OriginalStack,
    OriginalUnavailable,
    Process,
    clean_env,
    default_venv,
    describe,
    ensure_installed,
)
from relay_report import print_tables, tables, targets

from radical.orbit.testing import free_port, start_bridge, start_endpoint

HERE = Path(__file__).resolve().parent
TOKEN = "bench-relay-token"
ENDPOINT = "bench"
MODES = ("own", "shared", "capacity")
OURS_SERVER = "loop uvloop, http httptools (when installed), access log off, no server header"


@dataclass
class Side:
    """One server the clients call: a stack's relay or its bare app, with what was measured on it."""

    stack: str  # "ours" or "original"
    kind: str  # "relay", "bare", or (ours only) "fastapi" and "floor"
    url: str
    headers: dict[str, str]
    pids: dict[str, int | None]  # role -> pid, for the CPU meter
    lat: list[float] = field(default_factory=list)
    runs: dict[str, list[float]] = field(default_factory=dict)
    cores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        def median(mode: str) -> float | None:
            return statistics.median(self.runs[mode]) if self.runs.get(mode) else None

        cores = {}
        for mode, used in self.cores.items():
            if used:
                cores[mode] = {role: statistics.mean(u.get(role, 0.0) for u in used) for role in used[0]}
        return {
            "url": self.url,
            "median_ms": statistics.median(self.lat) * 1000 if self.lat else None,
            "p99_ms": pct(self.lat, 0.99) * 1000 if self.lat else None,
            "requests": len(self.lat),
            **{f"rps_{mode}": median(mode) for mode in MODES},
            "cpu_cores": cores,
            "errors": self.errors,
        }


class Run:
    """The sides still measured; a stack whose processes fail stops being measured, ours excepted."""

    def __init__(self, sides: list[Side], failed: dict[str, str], explain: dict[str, Callable[[], str | None]]) -> None:
        self.sides = sides
        self.failed = failed  # stack -> why it has no (or no further) figures
        self.explain = explain  # stack -> which of its processes ended, if one did

    def each(self, step: Callable[[Side], object]) -> None:
        for side in self.sides:
            if side.stack in self.failed:
                continue
            if side.stack == "ours":
                step(side)
                continue
            explain = self.explain.get(side.stack, lambda: None)
            try:
                step(side)
            except Exception as exc:  # noqa: BLE001 - its column reports it and the rest runs on
                why = explain()
                self.failed[side.stack] = f"failed during the run: {exc}" + (f"; {why}" if why else "")
            else:
                if why := explain():  # a dead endpoint behind a live bridge answers errors, not exceptions
                    self.failed[side.stack] = f"failed during the run: {why}"


def serving(proc: Process, url: str, what: str) -> tuple[Process, str]:
    """``proc`` and ``url`` once ``url`` answers 200 (30 s at most, or until ``proc`` ends)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"{what} did not start; see {proc.log_path}")


def start_our_bare_app(log_dir: Path, *, fastapi: bool = False) -> tuple[Process, str]:
    port = free_port()
    argv = [sys.executable, str(HERE / "bare_app.py"), str(port), *(["--fastapi"] if fastapi else [])]
    proc = Process("fastapi-app" if fastapi else "bare-app", argv, clean_env(), log_dir)
    return serving(proc, f"http://127.0.0.1:{port}/ping", "our bare app")


def start_forwarder(log_dir: Path, to_url: str) -> tuple[Process, str]:
    """forwarder.py in front of ``to_url``'s server; returns it and the same route through it."""
    to = urlsplit(to_url)
    port = free_port()
    argv = [sys.executable, str(HERE / "forwarder.py"), str(port), f"{to.hostname}:{to.port}"]
    proc = Process("forwarder", argv, clean_env(), log_dir)
    return serving(proc, f"http://127.0.0.1:{port}{to.path}", "the forwarder")


def shown_path(path: Path) -> str:
    """``path`` with the home directory as ``~``: the report goes into docs."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def measure(run: Run, args: argparse.Namespace) -> None:
    """Latency rounds, then each throughput mode, every side in turn within each round."""
    with contextlib.ExitStack() as stack:
        clients = {id(s): stack.enter_context(httpx.Client(headers=s.headers, timeout=30)) for s in run.sides}
        run.each(lambda s: latencies(clients[id(s)], s.url, 300, budget=2))  # warm up
        per_round = max(1, args.requests // args.rounds)
        budget = args.latency_budget / (len(run.sides) * args.rounds)
        for _ in range(args.rounds):
            run.each(lambda s: s.lat.extend(latencies(clients[id(s)], s.url, per_round, budget=budget)))

    def one(mode: str) -> Callable[[Side], None]:
        def step(side: Side) -> None:
            if mode == "capacity":
                value, errs, used = capacity(side.url, side.headers, args.capacity_duration, side.pids)
            else:
                with CpuMeter({"client": os.getpid(), **side.pids}) as meter:
                    value, errs = rate(side.url, side.headers, args.duration / args.rate_rounds, shared=mode == "shared")
                used = meter.cores
            side.runs.setdefault(mode, []).append(value)
            side.cores.setdefault(mode, []).append(used)
            side.errors += errs

        return step

    for mode in MODES:
        for _ in range(args.capacity_rounds if mode == "capacity" else args.rate_rounds):
            run.each(one(mode))


def stack_summary(run: Run, stack: str) -> dict[str, Any]:
    sides = {s.kind: s.summary() for s in run.sides if s.stack == stack}
    out: dict[str, Any] = {"note": run.failed.get(stack), **sides}
    relay, bare = sides.get("relay", {}), sides.get("bare", {})
    if relay.get("median_ms") is not None and bare.get("median_ms") is not None:
        out["added_median_ms"] = relay["median_ms"] - bare["median_ms"]
        out["added_p99_ms"] = relay["p99_ms"] - bare["p99_ms"]
    if relay.get("rps_capacity") and bare.get("rps_capacity"):
        out["capacity_vs_bare"] = relay["rps_capacity"] / bare["rps_capacity"]
    framework = sides.get("fastapi", {})
    if relay.get("rps_capacity") and framework.get("rps_capacity"):
        out["capacity_vs_fastapi"] = relay["rps_capacity"] / framework["rps_capacity"]
    # the same figures for the FastAPI app: what FastAPI alone costs next to the bare app
    if framework.get("median_ms") is not None and bare.get("median_ms") is not None:
        out["fastapi_added_median_ms"] = framework["median_ms"] - bare["median_ms"]
        out["fastapi_added_p99_ms"] = framework["p99_ms"] - bare["p99_ms"]
    if framework.get("rps_capacity") and bare.get("rps_capacity"):
        out["fastapi_capacity_vs_bare"] = framework["rps_capacity"] / bare["rps_capacity"]
    # and for the floor: a relay that does nothing in front of the FastAPI app
    floor = sides.get("floor", {})
    if floor.get("median_ms") is not None and bare.get("median_ms") is not None:
        out["floor_added_median_ms"] = floor["median_ms"] - bare["median_ms"]
        out["floor_added_p99_ms"] = floor["p99_ms"] - bare["p99_ms"]
    if floor.get("rps_capacity") and bare.get("rps_capacity"):
        out["floor_capacity_vs_bare"] = floor["rps_capacity"] / bare["rps_capacity"]
    if floor.get("rps_capacity") and framework.get("rps_capacity"):
        out["floor_capacity_vs_fastapi"] = floor["rps_capacity"] / framework["rps_capacity"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="at most this many sequential requests per server for latency")
    parser.add_argument("--rounds", type=int, default=6, help="alternating latency rounds")
    parser.add_argument("--latency-budget", type=float, default=24.0, help="at most this many seconds of latency rounds in all")
    parser.add_argument("--duration", type=float, default=3.6, help="seconds of httpx load per server and client mode")
    parser.add_argument("--rate-rounds", type=int, default=3, help="alternating runs per httpx client mode")
    parser.add_argument("--capacity-duration", type=float, default=2.0, help="seconds per capacity run")
    parser.add_argument("--capacity-rounds", type=int, default=2, help="alternating capacity runs")
    parser.add_argument("--original-venv", type=Path, default=default_venv(), help=f"venv for radical.orbit=={ORIGINAL_VERSION} (created when missing; default %(default)s)")
    parser.add_argument("--no-original", action="store_true", help="measure ours only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from rich.console import Console

    console = Console()
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="orbit-bench-"))
    logs = home / "logs"
    logs.mkdir()
    failed: dict[str, str] = {}
    explain: dict[str, Callable[[], str | None]] = {}
    settings: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        bare, bare_url = start_our_bare_app(logs)
        stack.callback(bare.stop)
        framework, framework_url = start_our_bare_app(logs, fastapi=True)
        stack.callback(framework.stop)
        forwarder, floor_url = start_forwarder(logs, framework_url)
        stack.callback(forwarder.stop)
        bridge = stack.enter_context(start_bridge(token=TOKEN, home=home, log_dir=logs))
        endpoint = stack.enter_context(start_endpoint(ENDPOINT, bridge, plugins=["sysinfo"], home=home, log_dir=logs))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        sides = [
            Side("ours", "relay", f"{bridge.url}/{ENDPOINT}/sysinfo/ping", auth, {"bridge": bridge.pid, "endpoint": endpoint.pid}),
            Side("ours", "bare", bare_url, auth, {"app": bare.pid}),
            Side("ours", "fastapi", framework_url, auth, {"app": framework.pid}),
            Side("ours", "floor", floor_url, auth, {"forwarder": forwarder.pid, "app": framework.pid}),
        ]
        if args.no_original:
            failed["original"] = "not run (--no-original)"
        else:
            try:
                python = ensure_installed(args.original_venv, console.print)
                original = stack.enter_context(OriginalStack(python, home / "original", logs))
                settings, explain["original"] = original.settings, original.exited
                sides += [
                    Side("original", "relay", original.relay_url, {}, original.pids["relay"]),
                    Side("original", "bare", original.bare_url, {}, original.pids["bare"]),
                ]
            except OriginalUnavailable as exc:
                failed["original"] = f"unavailable: {exc}"
        console.print(f"logs in {logs}")
        run = Run(sides, failed, explain)
        measure(run, args)

    results: dict[str, Any] = {
        "ours": {"version": importlib.metadata.version("radical.orbit"), "server": OURS_SERVER, **stack_summary(run, "ours")},
        "original": {
            "version": ORIGINAL_VERSION,
            "venv": shown_path(args.original_venv),
            "server": describe(settings) if settings else None,
            "uvicorn_settings": settings,
            **stack_summary(run, "original"),
        },
        "concurrency": CONCURRENCY,
        "seconds": time.monotonic() - started,
        "load_average": [load_before, os.getloadavg()[0]],
        "cpus": os.cpu_count(),
    }
    results["targets"] = targets(results)
    results["tables"] = tables(results)
    print_tables(console, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if sum(results["ours"].get(kind, {}).get("errors", 0) for kind in ("relay", "bare", "fastapi", "floor")) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
