"""Relay latency of one client while many ``/events`` subscribers are stuck (issue 13).

A real bridge and endpoint (sysinfo) on 127.0.0.1, started as a user starts them.
First the idle latency of ``GET /bench/sysinfo/ping`` (sequential httpx calls).
Then N raw ``/events`` streams that read their response head and nothing after it
(with a small receive buffer, so their sockets fill at once), and M notifications
raised by sysinfo watches as fast as sysinfo allows, which the bridge fans out to
every stream; the same calls are timed while the notifications flow. One SDK
listener reads along, to show that a stream that reads still gets every event. The
bridge's memory (RSS) is taken before the streams open and after the notifications.

Target (issue 13): the call's median latency with stuck subscribers <= 2x its idle median.

    python bench/subscribers.py [--subscribers 1500] [--notifications 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
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
from radical.orbit.testing import start_bridge, start_endpoint

TOKEN = "bench-subscribers-token"
ENDPOINT = "bench"
#: sysinfo runs at most 32 watches per session
WATCHES = 30
#: seconds between a watch's notifications (sysinfo's smallest is 0.01)
INTERVAL = 0.02


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux /proc), None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def stuck_stream(port: int) -> socket.socket:
    """``GET /events`` that reads the response head, then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        if not chunk:
            raise RuntimeError("the bridge closed an /events stream before answering")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        raise RuntimeError(f"/events refused: {status}")
    return sock


def run(args: argparse.Namespace) -> dict[str, Any]:
    per_watch = max(1, args.notifications // WATCHES)
    total = per_watch * WATCHES
    with tempfile.TemporaryDirectory(prefix="orbit-bench-subscribers-") as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        env = dict(os.environ, RADICAL_ORBIT_BRIDGE_MAX_SUBSCRIBERS_PER_IDENTITY=str(args.subscribers + 16))
        bridge = start_bridge(token=TOKEN, env=env, home=home, log_dir=logs)
        endpoint = None
        stuck: list[socket.socket] = []
        try:
            endpoint = start_endpoint(ENDPOINT, bridge, plugins=["sysinfo"], env=dict(os.environ), home=home, log_dir=logs)
            url = f"{bridge.url}/{ENDPOINT}/sysinfo/ping"
            with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http, BridgeClient(bridge.url, token=TOKEN) as bc:
                latencies(http, url, 100, budget=10)  # warm up
                idle = latencies(http, url, args.calls, budget=30)
                rss_before = rss_mib(bridge.pid)
                port = int((bridge.url or "").rsplit(":", 1)[1])
                t0 = time.perf_counter()
                stuck = [stuck_stream(port) for _ in range(args.subscribers)]
                opened = time.perf_counter() - t0
                rss_open = rss_mib(bridge.pid)

                session = bc.get_endpoint_client(ENDPOINT).get_plugin("sysinfo")
                session.info()
                seen = 0
                lock = threading.Lock()

                def count(topic: str, payload: dict[str, Any]) -> None:
                    nonlocal seen
                    with lock:
                        seen += 1

                session.register_notification_callback(count, topic="load")
                t0 = time.perf_counter()
                for _ in range(WATCHES):
                    session.watch(interval=INTERVAL, count=per_watch)
                during: list[float] = []
                deadline = t0 + per_watch * INTERVAL * 20 + 30
                while seen < total and time.perf_counter() < deadline:
                    during += latencies(http, url, 20, budget=5)
                flood = time.perf_counter() - t0
                rss_after = rss_mib(bridge.pid)
                session.close()
        finally:
            for sock in stuck:
                sock.close()
            if endpoint is not None:
                endpoint.stop()
            bridge.stop()
    return {
        "subscribers": args.subscribers,
        "notifications": total,
        "idle": idle,
        "during": during,
        "delivered": seen,
        "flood_s": flood,
        "open_s": opened,
        "rss_before": rss_before,
        "rss_open": rss_open,
        "rss_after": rss_after,
    }


def ms(values: list[float], q: float | None = None) -> str:
    if not values:
        return "n/a"
    return f"{1000 * (statistics.median(values) if q is None else pct(values, q)):.2f}"


def rows(r: dict[str, Any]) -> list[list[str]]:
    idle, during = r["idle"], r["during"]
    ratio = statistics.median(during) / statistics.median(idle) if during and idle else float("nan")
    setup = f"{r['subscribers']} stuck /events streams, {r['notifications']} notifications"
    mem = opened = "n/a"
    if None not in (r["rss_before"], r["rss_open"], r["rss_after"]):
        opened = f"+{r['rss_open'] - r['rss_before']:.0f} MiB with the streams open"
        mem = f"{r['rss_after']:.0f} MiB (+{r['rss_after'] - r['rss_before']:.0f})"
    return [
        ["relay latency median", setup, f"{ms(during)} ms", f"idle {ms(idle)} ms", f"{ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'missed'})"],
        ["relay latency p90", setup, f"{ms(during, 0.9)} ms", f"idle {ms(idle, 0.9)} ms", f"{len(during)} calls while stuck, {len(idle)} idle"],
        ["relay latency p99", setup, f"{ms(during, 0.99)} ms", f"idle {ms(idle, 0.99)} ms", ""],
        ["relay latency max", setup, f"{ms(during, 1.0)} ms", f"idle {ms(idle, 1.0)} ms", f"calls while stuck: {len(during) / r['flood_s']:.0f}/s"],
        ["events to a reading listener", setup, f"{r['delivered']} of {r['notifications']}", "", f"in {r['flood_s']:.1f} s"],
        ["bridge memory (RSS)", setup, mem, f"{r['rss_before']:.0f} MiB before the streams" if r["rss_before"] else "", opened],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=1500, help="stuck /events streams (default 1500)")
    ap.add_argument("--notifications", type=int, default=3000, help="notifications raised (default 3000)")
    ap.add_argument("--calls", type=int, default=500, help="sequential calls for the idle latency (default 500)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    result = run(args)
    table = Table(title="Relay latency of one client while /events subscribers are stuck")
    for i, column in enumerate(["measure", "setup", "with stuck subscribers", "baseline", "result"]):
        table.add_column(column, justify="left" if i < 2 else "right")
    found = rows(result)
    for row in found:
        table.add_row(*row)
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": found}, indent=1) + "\n")
    sys.exit(0 if result["during"] else 1)


if __name__ == "__main__":
    main()
