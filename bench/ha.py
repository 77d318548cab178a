"""Bridge replicas on Redis (issue 16): what forwarding adds, how fast an endpoint fails
over, how fast events fan out through the Redis Stream.

Real processes on 127.0.0.1, started as a user starts them: a redis-server, replicas
A and B (``radical-orbit bridge --redis URL``), endpoint ``bench`` (sysinfo) on A; and
a lone bridge with its own endpoint as the baseline.

* latency: sequential ``GET /bench/sysinfo/ping`` through A (the endpoint's replica)
  and through B (forwarded to A over Redis), in alternating rounds; the lone bridge
  alongside. Target: forwarded <= same-replica + 1 ms (median).
* failover: kill -9 A while the endpoint (``--url A,B``) is connected to it; the time
  until a call through B is answered again. Target (issue 16): within 3 s.
* fan-out: sysinfo watches raise notifications as fast as sysinfo allows; ``--subscribers``
  raw ``/events`` streams on B read them (every event goes through the stream), against
  the same on the lone bridge: events delivered per second over all streams.

    python bench/ha.py [--requests 2000] [--subscribers 20] [--notifications 1500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from measure import latencies, pct
from rich.console import Console
from rich.table import Table

from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import (
    Replicas,
    ServiceProcess,
    start_bridge,
    start_endpoint,
    start_replicas,
)

TOKEN = "bench-ha-token"
ENDPOINT = "bench"
#: sysinfo runs at most 32 watches per session
WATCHES = 30
#: seconds between a watch's notifications
INTERVAL = 0.02
FAILOVER_TARGET = 3.0


def ms(values: list[float], q: float | None = None) -> float:
    return 1000 * (statistics.median(values) if q is None else pct(values, q))


def latency_rounds(urls: dict[str, str], requests: int, rounds: int) -> dict[str, list[float]]:
    """Sequential pings per URL, in alternating rounds so background load hits all alike."""
    out: dict[str, list[float]] = {name: [] for name in urls}
    per_round = max(1, requests // rounds)
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0) as client:
        for url in urls.values():  # warm up: connections, the owner lookup's script cache
            latencies(client, f"{url}/{ENDPOINT}/sysinfo/ping", 50, budget=5.0)
        for _ in range(rounds):
            for name, url in urls.items():
                out[name] += latencies(client, f"{url}/{ENDPOINT}/sysinfo/ping", per_round, budget=30.0)
    return out


class Counter:
    """A raw ``/events`` stream on its own thread, counting the notifications it reads."""

    MARK = b"\nevent: notification\n"

    def __init__(self, port: int) -> None:
        self.count = 0
        self.last = 0.0
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /events?topic=load HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        tail = b""
        try:
            while chunk := self.sock.recv(65536):
                data = tail + chunk
                found = data.count(self.MARK)
                if found:
                    self.count += found
                    self.last = time.perf_counter()
                tail = data[-len(self.MARK):]
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def fanout(url: str, port: int, subscribers: int, notifications: int) -> dict[str, float]:
    """Events delivered per second to ``subscribers`` streams while sysinfo raises ``notifications``."""
    per_watch = max(1, notifications // WATCHES)
    total = per_watch * WATCHES
    counters = [Counter(port) for _ in range(subscribers)]
    try:
        time.sleep(0.5)  # every stream subscribed
        with BridgeClient(url=url, token=TOKEN) as bc:
            sysinfo = bc.get_endpoint_client(ENDPOINT).get_plugin("sysinfo")
            t0 = time.perf_counter()
            for _ in range(WATCHES):
                sysinfo.watch(interval=INTERVAL, count=per_watch)
            deadline = time.monotonic() + 60
            while sum(c.count for c in counters) < total * subscribers and time.monotonic() < deadline:
                time.sleep(0.05)
        delivered = sum(c.count for c in counters)
        elapsed = max(c.last for c in counters) - t0
    finally:
        for counter in counters:
            counter.close()
    return {"delivered": delivered, "expected": total * subscribers, "seconds": elapsed, "rate": delivered / elapsed if elapsed > 0 else 0.0}


def failover(cluster: Replicas, endpoint_multi_url: bool) -> float | None:
    """Seconds from kill -9 of A until a call through B is answered again (None: not measurable)."""
    if not endpoint_multi_url:
        return None
    b = cluster.urls[1]
    cluster.kill(0, signal.SIGKILL)
    t0 = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2.0) as client:
        while time.perf_counter() - t0 < 30:
            try:
                if client.get(f"{b}/{ENDPOINT}/sysinfo/ping").status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    return float("inf")


def start_cluster_endpoint(cluster: Replicas, key: str) -> tuple[ServiceProcess, bool]:
    """The endpoint on A, told both replicas (``--url A,B``) when it takes several URLs."""
    a, b = cluster.bridges
    common: dict[str, Any] = {"key": key, "plugins": ["sysinfo"], "home": cluster.home("ep"), "log_dir": cluster.logs}
    try:
        return start_endpoint(ENDPOINT, a, args=["--url", f"{a.url},{b.url}"], timeout=20, **common), True
    except (RuntimeError, TimeoutError):  # an endpoint that takes one URL only
        return start_endpoint(ENDPOINT, a, **common), False


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbit-bench-ha-") as tmp:
        base = Path(tmp)
        env = dict(os.environ, RADICAL_ORBIT_BRIDGE_MAX_SUBSCRIBERS_PER_IDENTITY=str(args.subscribers + 16))
        (base / "lone").mkdir()
        with start_replicas(base, token=TOKEN, env={"RADICAL_ORBIT_BRIDGE_MAX_SUBSCRIBERS_PER_IDENTITY": str(args.subscribers + 16)}) as cluster:
            lone = start_bridge(token=TOKEN, env=env, home=base / "lone", log_dir=base / "lone-logs", name="lone-bridge")
            lone_ep = start_endpoint(ENDPOINT, lone, plugins=["sysinfo"], env=env, home=base / "lone", log_dir=base / "lone-logs")
            ep, multi = start_cluster_endpoint(cluster, cluster.enroll(ENDPOINT))
            try:
                a, b = cluster.urls
                lat = latency_rounds({"same": a, "forwarded": b, "lone": lone.url or ""}, args.requests, args.rounds)
                assert lone.url is not None
                fan_cluster = fanout(a, cluster.ports[1], args.subscribers, args.notifications)
                fan_lone = fanout(lone.url, int(lone.url.rsplit(":", 1)[1]), args.subscribers, args.notifications)
                took = failover(cluster, multi)
            finally:
                ep.stop()
                lone_ep.stop()
                lone.stop()
    return {"latency": lat, "fan_cluster": fan_cluster, "fan_lone": fan_lone, "failover": took, "multi_url": multi,
            "subscribers": args.subscribers}


def rows(r: dict[str, Any]) -> list[list[str]]:
    same, fwd, lone = r["latency"]["same"], r["latency"]["forwarded"], r["latency"]["lone"]
    added = ms(fwd) - ms(same)
    calls = f"{len(same)} sequential calls each, alternating"
    fc, fl = r["fan_cluster"], r["fan_lone"]
    fan_setup = f"{r['subscribers']} /events streams on B, {fc['expected'] // max(1, r['subscribers'])} notifications"
    took = r["failover"]
    if took is None:
        failover_row = ["failover time", "kill -9 the endpoint's replica", "n/a", "", "the endpoint takes one --url only"]
    else:
        verdict = "met" if took <= FAILOVER_TARGET else "missed"
        failover_row = ["failover time", "kill -9 the endpoint's replica; endpoint --url A,B",
                        f"{took:.2f} s", "", f"target <= {FAILOVER_TARGET:g} s: {verdict}"]
    return [
        ["forwarded call latency median", f"B -> Redis -> A -> endpoint; {calls}", f"{ms(fwd):.3f} ms",
         f"same replica {ms(same):.3f} ms", f"+{added:.3f} ms (target <= +1 ms: {'met' if added <= 1.0 else 'missed'})"],
        ["forwarded call latency p99", calls, f"{ms(fwd, 0.99):.3f} ms", f"same replica {ms(same, 0.99):.3f} ms", ""],
        ["same-replica call latency median", f"A (with Redis) -> endpoint; {calls}", f"{ms(same):.3f} ms",
         f"lone bridge {ms(lone):.3f} ms", f"{ms(same) - ms(lone):+.3f} ms"],
        failover_row,
        ["event fan-out through Redis", fan_setup, f"{fc['rate']:.0f} events/s",
         f"lone bridge {fl['rate']:.0f} events/s", f"{fc['delivered']} of {fc['expected']} delivered"],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="sequential calls per path for latency (default 2000)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating latency rounds (default 4)")
    ap.add_argument("--subscribers", type=int, default=20, help="/events streams for the fan-out (default 20)")
    ap.add_argument("--notifications", type=int, default=1500, help="notifications raised for the fan-out (default 1500)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    result = run(args)
    table = Table(title="Bridge replicas on Redis")
    for i, column in enumerate(["measure", "setup", "radical.orbit", "baseline", "result"]):
        table.add_column(column, justify="left" if i < 2 else "right")
    found = rows(result)
    for row in found:
        table.add_row(*row)
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": found}, indent=1) + "\n")
    sys.exit(0 if result["fan_cluster"]["delivered"] else 1)


if __name__ == "__main__":
    main()
