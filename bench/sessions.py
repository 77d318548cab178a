"""What idle Globus sessions cost an endpoint: threads and memory per 1,000 sessions.

    python bench/sessions.py [--sessions 1000] [--workers 16] [--json FILE] [--markdown FILE]

The globus plugin is run in-process, as the endpoint runs it, and sessions are opened
through its ``register_session`` route with access tokens (registering one needs no
Globus call; the SDK points at a closed loopback port, so one that tried would fail).
Two layouts are measured, each in a fresh process so that one does not inherit the
other's heap:

* *a pool per session*: every session gets a thread pool of its own (how sessions ran
  before issue 13; its first call, building the client, starts a thread);
* *one pool per plugin*: every session submits to the plugin's one pool of ``workers``
  threads (what the plugin does now).

Reported per layout: threads added, resident memory added (``VmRSS``) and the Python
allocations still held (``tracemalloc``, in a separate run: tracing costs memory of
its own).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

LAYOUTS = {"per-session": "a pool per session (before)", "shared": "one pool per plugin (now)"}
#: sessions per client identity: within the endpoint's default cap of 500
PER_IDENTITY = 500
#: the issue's bound for 1,000 idle sessions
TARGET_MIB = 20.0


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


async def measure(layout: str, sessions: int, workers: int, traced: bool) -> dict[str, Any]:
    """Open ``sessions`` idle sessions; what they added (runs in a child process)."""
    from radical.orbit.endpoint.dispatch import build_scope, call_asgi
    from radical.orbit.models.messages import Request
    from radical.orbit.plugins.base import PluginContext
    from radical.orbit.plugins.caller import calling_as
    from radical.orbit.plugins.globus.plugin import PluginGlobus

    class PluginPoolPerSession(PluginGlobus):
        """The layout before: a pool of ``workers`` threads for each session."""

        def _session_executor(self, owner: str | None) -> Executor:
            return ThreadPoolExecutor(max_workers=self.poll_settings.workers, thread_name_prefix="globus-session")

    cls = PluginPoolPerSession if layout == "per-session" else PluginGlobus
    plugin = cls(PluginContext(endpoint="bench", notify=lambda *a: None, settings={"workers": workers}))
    await plugin.start()

    async def register(i: int) -> None:
        body = json.dumps({"access_token": f"bench-access-token-{i:07d}"}).encode()
        frame = Request(id=str(i), method="POST", path="/globus/register_session", headers=[("content-type", "application/json")])
        with calling_as(f"client-{i // PER_IDENTITY}"):
            status, _, out = await call_asgi(plugin.app, build_scope(frame, "/register_session"), body)
        if status != 200:
            raise SystemExit(f"register_session answered {status}: {out[:300]!r}")

    # imports, the app, first allocations, and the shared pool grown to its bound (it
    # starts threads as work arrives, up to ``workers``, as on any busy endpoint): not a
    # session's cost
    await asyncio.gather(*(register(sessions + i) for i in range(3 * workers)))
    gc.collect()
    threads0, rss0 = threading.active_count(), rss_mib()
    if traced:
        tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0] if traced else 0
    t0 = time.perf_counter()
    for i in range(sessions):
        await register(i)
    took = time.perf_counter() - t0
    gc.collect()
    heap = (tracemalloc.get_traced_memory()[0] - heap0) / 2**20 if traced else None
    out = {
        "threads": threading.active_count() - threads0,
        "rss_mib": rss_mib() - rss0,
        "traced_mib": heap,
        "register_ms": took / sessions * 1000,
    }
    if traced:
        tracemalloc.stop()
    await plugin.stop()
    return out


def child(layout: str, sessions: int, workers: int, traced: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", layout, "--sessions", str(sessions), "--workers", str(workers)]
    if traced:
        cmd.append("--traced")
    env = dict(os.environ, GLOBUS_SDK_SERVICE_URL_TRANSFER="http://127.0.0.1:9/", GLOBUS_SDK_SERVICE_URL_AUTH="http://127.0.0.1:9/")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{layout} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000, help="idle sessions to open (default 1000)")
    ap.add_argument("--workers", type=int, default=16, help="the plugin's workers option (default 16)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON (for bench/run_all.py)")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    ap.add_argument("--child", choices=sorted(LAYOUTS), help=argparse.SUPPRESS)
    ap.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.child, args.sessions, args.workers, args.traced))))
        return
    n = args.sessions
    per = 1000 / n
    results: dict[str, dict[str, Any]] = {}
    for layout, title in LAYOUTS.items():
        print(f"{title}: {n} sessions ...", flush=True)
        plain = child(layout, n, args.workers, traced=False)
        plain["traced_mib"] = child(layout, n, args.workers, traced=True)["traced_mib"]
        results[layout] = plain
    now, before = results["shared"], results["per-session"]
    setup = f"{n} idle sessions, access tokens, workers={args.workers}"

    def cost(r: dict[str, Any]) -> str:
        return f"+{r['threads'] * per:.0f} threads, +{r['rss_mib'] * per:.1f} MiB RSS, +{r['traced_mib'] * per:.1f} MiB traced"

    threads_ok = now["threads"] <= 0
    memory_ok = max(now["rss_mib"], now["traced_mib"]) * per <= TARGET_MIB
    rows = [
        ["idle sessions, per 1,000", setup, cost(now), f"a pool per session: {cost(before)}",
         (f"threads {'met' if threads_ok else 'NOT met'} (target: none), "
          f"memory {'met' if memory_ok else 'NOT met'} (target <= {TARGET_MIB:g} MiB)")],
        ["register_session, in-process", setup, f"{now['register_ms']:.2f} ms each",
         f"a pool per session: {before['register_ms']:.2f} ms each", "no Globus call (access token)"],
    ]
    head = ["measure", "setup", "radical.orbit", "baseline", "result"]
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)])
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "raw": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
