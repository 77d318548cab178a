"""Relay latency with a per-user token and scoped events, next to the default admin
token, side by side on one bridge (issue 13: within 10 % of today's).

    python bench/scoped.py [--calls 4000] [--rounds 10] [--json out.json]

A real bridge and endpoint (sysinfo) on 127.0.0.1, started as a user starts them.
Three client identities, made with ``radical-orbit bridge tokens add``:

* ``admin``: the bridge's default token, the one every setup had before per-user
  tokens (one identity that sees every event): today's way;
* ``user``: a per-user token; its sessions are its own and ``/events`` shows it only
  its own sessions' events;
* ``other``: another user whose sysinfo watches raise notifications all through the
  run, events that the admin's stream carries and the user's stream must filter out.

Both measured identities keep an ``/events`` stream open (read by a thread, as an SDK
listener does) while their calls, ``GET /bench/sysinfo/ping`` with httpx one at a
time, run in alternating rounds: admin, user, admin, user ... The ratio of the
user's median to the admin's is the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from measure import latencies, pct
from rich.console import Console
from rich.table import Table

from radical.orbit.testing import bridge_admin, start_bridge, start_endpoint

TOKEN = "bench-scoped-admin-token"
ENDPOINT = "bench"
#: the verdict's bound: the per-user median within 10 % of the admin's
TARGET = 1.10
#: the other identity's watches: each raises a notification every WATCH_INTERVAL seconds
WATCHES = 8
WATCH_INTERVAL = 0.05


class Stream:
    """One ``/events`` stream read by a thread; counts the notifications it is shown."""

    def __init__(self, url: str, token: str) -> None:
        self.seen = 0
        self.error: Exception | None = None
        self._client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10.0, read=60.0))
        self._url = f"{url}/events"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._url) as resp:
                for line in resp.iter_lines():
                    if line == "event: notification":
                        self.seen += 1
        except Exception as exc:  # noqa: BLE001 - closed under its feet at the end of the run
            self.error = exc

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orbit-bench-scoped-") as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        bridge = start_bridge(token=TOKEN, env=dict(os.environ), home=home, log_dir=logs)
        endpoint = None
        streams: list[Stream] = []
        try:
            endpoint = start_endpoint(ENDPOINT, bridge, plugins=["sysinfo"], env=dict(os.environ), home=home, log_dir=logs)
            tokens = {"admin": TOKEN}
            for name in ("user", "other"):
                tokens[name] = bridge_admin(bridge, "tokens", "add", name).strip()
            url = f"{bridge.url}/{ENDPOINT}/sysinfo/ping"
            clients = {name: httpx.Client(headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=30) for name in tokens}
            try:
                streams = [Stream(bridge.url or "", tokens["admin"]), Stream(bridge.url or "", tokens["user"])]
                other = clients["other"]
                sid = other.post(f"{bridge.url}/{ENDPOINT}/sysinfo/register_session", json={}).json()["sid"]
                per_round = max(1, args.calls // args.rounds)
                for name in ("admin", "user"):
                    latencies(clients[name], url, 200, budget=10)  # warm up
                # the other identity's notifications flow for about as long as the rounds take
                expected = 2 * args.calls * 0.0015 + 5
                count = int(expected / WATCH_INTERVAL)
                for _ in range(WATCHES):
                    other.post(f"{bridge.url}/{ENDPOINT}/sysinfo/watch", json={"sid": sid, "interval": WATCH_INTERVAL, "count": count})
                time.sleep(0.5)
                results: dict[str, list[float]] = {"admin": [], "user": []}
                t0 = time.perf_counter()
                for _ in range(args.rounds):
                    for name in ("admin", "user"):
                        results[name] += latencies(clients[name], url, per_round, budget=60)
                took = time.perf_counter() - t0
                time.sleep(0.5)
                seen = {"admin": streams[0].seen, "user": streams[1].seen}
            finally:
                for client in clients.values():
                    client.close()
        finally:
            for stream in streams:
                stream.close()
            if endpoint is not None:
                endpoint.stop()
            bridge.stop()
    return {"admin": results["admin"], "user": results["user"], "seen": seen, "took": took, "rounds": args.rounds}


def ms(values: list[float], q: float | None = None) -> str:
    return f"{1000 * (statistics.median(values) if q is None else pct(values, q)):.3f}"


def rows(r: dict[str, Any]) -> list[list[str]]:
    admin, user = r["admin"], r["user"]
    ratio = statistics.median(user) / statistics.median(admin)
    setup = f"one bridge, {r['rounds']} alternating rounds, {len(admin)} + {len(user)} calls"
    flow = f"{r['seen']['admin']} events to the admin's stream during the run, {r['seen']['user']} to the user's"
    verdict = "met" if ratio <= TARGET else "missed"
    return [
        ["relay latency median", setup, f"per-user token: {ms(user)} ms", f"admin token: {ms(admin)} ms",
         f"{ratio:.3f}x (target <= {TARGET:.2f}x: {verdict})"],
        ["relay latency p90", setup, f"per-user token: {ms(user, 0.9)} ms", f"admin token: {ms(admin, 0.9)} ms", ""],
        ["relay latency p99", setup, f"per-user token: {ms(user, 0.99)} ms", f"admin token: {ms(admin, 0.99)} ms", ""],
        ["events of another identity", setup, f"user's stream: {r['seen']['user']}", f"admin's stream: {r['seen']['admin']}", flow],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=4000, help="calls per identity (default 4000)")
    ap.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    result = run(args)
    table = Table(title="Relay latency: a per-user token with scoped events next to the admin token")
    for i, column in enumerate(["measure", "setup", "radical.orbit", "baseline", "result"]):
        table.add_column(column, justify="left" if i < 2 else "right")
    found = rows(result)
    for row in found:
        table.add_row(*row)
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": found, "ratio": statistics.median(result["user"]) / statistics.median(result["admin"])}) + "\n")


if __name__ == "__main__":
    main()
