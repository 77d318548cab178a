"""Globus plugin benchmark (issue 4): polling cost, notification latency, isolation, overhead.

Setup (loopback only): the Globus emulator, a bridge and an endpoint hosting
``globus``, each a real subprocess started through :mod:`radical.orbit.testing` with a
private temporary HOME; globus-sdk in the endpoint and in this process point at the
emulator through ``GLOBUS_SDK_SERVICE_URL_*``.

Measured:

1. Globus API calls per poll cycle for 1/10/100/1000 tracked ACTIVE tasks (queued
   behind a bandwidth cap), from the session's own counters, next to the one-get_task-
   per-task baseline, and the wall time of one cycle each way.
   Target: ceil(N/page) calls instead of N.
2. State change -> client callback latency: 12 transfers of different durations; a
   direct SDK observer polls the emulator every 50 ms to timestamp the change; the
   ``transfer_status`` callback of the SDK timestamps its arrival. Target p50 <= 2 s.
3. ``ls`` median latency idle vs. with 100 concurrent ``task_wait`` calls in flight.
   Target <= 1.5x.
4. Per-call latency (``ls``, ``get_task``) through Orbit vs. the direct globus-sdk call
   on the same emulator, on raw loopback and with 50 ms of emulated Globus latency.
   Target <= 2x.

    python bench/globus.py [--quick] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient

TOKEN = "bench-globus-token"
TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
TUTORIAL_2 = "31ce9ba0-176d-45a5-add3-f37d233ba47d"
PAGE = 1000
ROWS: list[tuple[str, ...]] = []


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


class Stack:
    """Emulator + bridge + endpoint (globus) under a temp dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.logs = root / "logs"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOBUS_", "RADICAL_ORBIT_"))}
        env["HOME"] = str(self.home)
        self.emu = procs.start_emulator(root=root / "emu", env=env, log_dir=self.logs)
        self.url = self.emu.url or ""
        env.update(GLOBUS_SDK_SERVICE_URL_TRANSFER=f"{self.url}/", GLOBUS_SDK_SERVICE_URL_AUTH=f"{self.url}/")
        self.local = httpx.get(f"{self.url}/health").json()["local_collection"]
        env["RADICAL_ORBIT_GLOBUS_COLLECTION"] = self.local
        env["RADICAL_ORBIT_LOG_LEVEL"] = "warning"
        self.bridge = procs.start_bridge(token=TOKEN, env=env, log_dir=self.logs)
        self.endpoint = procs.start_endpoint("bench", self.bridge, plugins=["globus"], env=env, log_dir=self.logs)
        os.environ["GLOBUS_SDK_SERVICE_URL_TRANSFER"] = f"{self.url}/"
        os.environ["GLOBUS_SDK_SERVICE_URL_AUTH"] = f"{self.url}/"
        self.token = httpx.post(f"{self.url}/_emulator/token", json={}).json()["access_token"]
        self.clients: list[BridgeClient] = []

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.url}/_emulator/{path}", timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    def sdk(self) -> Any:
        import globus_sdk

        return globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(self.token))

    def bc(self) -> BridgeClient:
        bc = BridgeClient(url=self.bridge.url, token=TOKEN)
        self.clients.append(bc)
        return bc

    def globus(self, bc: BridgeClient | None = None) -> Any:
        return (bc or self.bc()).get_endpoint_client("bench").get_plugin("globus", access_token=self.token)

    def big_file(self, name: str, size: int) -> str:
        path = self.root / "emu" / "tutorial2" / "home" / "dev" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
        return f"/~/{name}"

    def stop(self) -> None:
        for bc in self.clients:
            bc.close()
        for p in (self.endpoint, self.bridge, self.emu):
            p.stop()


@contextmanager
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="orbit-bench-globus-") as tmp:
        st = Stack(Path(tmp))
        try:
            yield st
        finally:
            st.stop()


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# -- 1. calls per poll cycle ------------------------------------------------------------
def bench_polling(sizes: list[int]) -> None:
    with stack() as st:
        tc = st.sdk()
        src = st.big_file("hold.bin", 1_000_000)
        st.admin("PATCH", "faults", json={"bandwidth": {TUTORIAL_2: 500}})  # tasks stay ACTIVE (3 run, rest queue)
        import globus_sdk

        def submit(_: int) -> str:
            td = globus_sdk.TransferData(TUTORIAL_2, st.local)
            td.add_item(src, f"/hold-{time.time_ns()}.bin")
            return str(tc.submit_transfer(td)["task_id"])

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, range(max(sizes))))
        print(f"  created {len(ids)} ACTIVE tasks in {time.monotonic() - t0:.1f} s")
        sessions = {}
        for n in sizes:
            g = st.globus()
            g.track(ids[:n])
            sessions[n] = (g, g.session_info()["poller"])
        deadline = time.monotonic() + 30
        results = {}
        while sessions and time.monotonic() < deadline:
            time.sleep(0.5)
            for n, (g, base) in list(sessions.items()):
                now = g.session_info()["poller"]
                cycles = now["cycles"] - base["cycles"]
                if cycles >= 3:
                    results[n] = ((now["task_list_calls"] - base["task_list_calls"]) / cycles, now["get_task_calls"] - base["get_task_calls"], now["chunk"])
                    del sessions[n]
        for n in sizes:
            if n not in results:
                continue
            per_cycle, get_calls, chunk = results[n]
            ids_n = ids[:n]
            chunks = [ids_n[i : i + chunk] for i in range(0, n, chunk)]

            def one_cycle(chunks: list[list[str]] = chunks) -> None:
                for c in chunks:
                    tc.task_list(limit=len(c), filter="task_id:" + ",".join(c) + "/type:TRANSFER,DELETE")

            def baseline_cycle(ids_n: list[str] = ids_n) -> None:
                for t in ids_n:
                    tc.get_task(t)

            t_ours = statistics.median(timed(one_cycle, 3))
            t_base = timed(baseline_cycle, 1)[0]
            ROWS.append((
                "poll cycle", f"{n} tasks", f"{per_cycle:.2f} calls (target {math.ceil(n / PAGE)}; {chunk} ids/call)",
                f"{n} get_task calls", f"{t_ours * 1000:.0f} ms vs {t_base * 1000:.0f} ms",
            ))
            print(f"  N={n}: {per_cycle:.2f} task_list calls/cycle (chunk {chunk}, extra get_task {get_calls}); cycle {t_ours*1000:.0f} ms vs baseline {t_base*1000:.0f} ms")


# -- 2. state change -> callback latency ------------------------------------------------
def bench_latency(count: int) -> None:
    with stack() as st:
        g = st.globus()
        arrived: dict[str, float] = {}
        lock = threading.Lock()

        def on_status(topic: str, payload: dict[str, Any]) -> None:
            if payload.get("status") in ("SUCCEEDED", "FAILED"):
                with lock:
                    arrived.setdefault(payload["task_id"], time.monotonic())

        g.register_notification_callback(on_status, topic="transfer_status")
        st.admin("PATCH", "faults", json={"bandwidth": {TUTORIAL_2: 400_000}})
        sizes = [int(400_000 * (0.5 + 5.5 * i / max(1, count - 1))) for i in range(count)]
        files = [st.big_file(f"lat-{i}.bin", s) for i, s in enumerate(sizes)]
        ids: list[str] = []
        observed: dict[str, float] = {}
        stop = threading.Event()
        tc = st.sdk()

        def observe() -> None:
            while not stop.is_set():
                if ids:
                    cur = list(ids)
                    for d in tc.task_list(limit=len(cur), filter="task_id:" + ",".join(cur) + "/type:TRANSFER")["DATA"]:
                        if d["status"] != "ACTIVE":
                            observed.setdefault(d["task_id"], time.monotonic())
                time.sleep(0.05)

        th = threading.Thread(target=observe, daemon=True)
        th.start()
        for i, f in enumerate(files):
            ids.append(g.submit_transfer(TUTORIAL_2, "local", [{"source": f, "destination": f"/lat/{i}.bin"}])["task_id"])
            time.sleep(0.3)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(arrived) < len(ids):
            time.sleep(0.2)
        stop.set()
        th.join()
        lat = [arrived[t] - observed[t] for t in ids if t in arrived and t in observed]
        p50, p95 = statistics.median(lat), pct(lat, 0.95)
        ROWS.append(("state change -> callback", f"{len(lat)} transfers", f"p50 {p50:.2f} s / p95 {p95:.2f} s", "original: 2.5-8.2 s", "target p50 <= 2 s"))
        print(f"  latency over {len(lat)} tasks: p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(lat):.2f} s")


# -- 3 + 4. ls under load, Orbit vs direct ------------------------------------------------
def bench_isolation_and_overhead(waiters: int, samples: int) -> None:
    with stack() as st:
        g = st.globus()
        tc = st.sdk()
        ls_orbit = lambda: g.ls(TUTORIAL_1, "/home/share/godata/")
        for _ in range(10):
            ls_orbit()
        idle = timed(ls_orbit, samples)  # more idle samples after the load, against drift
        # a long task to wait on
        st.admin("PATCH", "faults", json={"bandwidth": {TUTORIAL_2: 1000}})
        long_id = g.submit_transfer(TUTORIAL_2, "local", [{"source": st.big_file("long.bin", 1_000_000), "destination": "/long.bin"}])["task_id"]
        wait_bc = st.bc()
        wg = wait_bc.get_endpoint_client("bench").get_plugin("globus")
        wg._sid = g.sid  # the same session, another HTTP connection pool
        started = threading.Barrier(waiters + 1)

        def wait_one() -> None:
            started.wait()
            wg.task_wait(long_id, timeout=30)

        threads = [threading.Thread(target=wait_one, daemon=True) for _ in range(waiters)]
        for th in threads:
            th.start()
        started.wait()
        time.sleep(1.0)
        busy = timed(ls_orbit, samples)
        g.cancel_task(long_id)
        for th in threads:
            th.join(timeout=40)
        wg._sid = None
        idle += timed(ls_orbit, samples)
        st.admin("PATCH", "faults", json={"bandwidth": {}})
        ratio = statistics.median(busy) / statistics.median(idle)
        ROWS.append((
            "ls under load", f"{waiters} task_waits", f"{statistics.median(busy) * 1000:.1f} ms vs idle {statistics.median(idle) * 1000:.1f} ms",
            "original: 19 s with 6", f"{ratio:.2f}x (target <= 1.5x)",
        ))
        print(f"  ls median idle {statistics.median(idle)*1000:.1f} ms, with {waiters} waits {statistics.median(busy)*1000:.1f} ms ({ratio:.2f}x)")

        def compare(label: str, orbit: Callable[[], Any], direct: Callable[[], Any], n: int) -> None:
            for _ in range(5):
                orbit(), direct()
            o, d = [], []
            for _ in range(n):  # alternate so background load hits both alike
                o += timed(orbit, 1)
                d += timed(direct, 1)
            mo, md = statistics.median(o), statistics.median(d)
            ROWS.append(("per call", label, f"Orbit {mo * 1000:.1f} ms (p95 {pct(o, .95) * 1000:.1f})", f"direct SDK {md * 1000:.1f} ms (p95 {pct(d, .95) * 1000:.1f})", f"{mo / md:.2f}x (target <= 2x)"))
            print(f"  {label}: Orbit {mo*1000:.1f} ms vs direct {md*1000:.1f} ms ({mo/md:.2f}x)")

        noop = statistics.median(timed(g.session_info, samples))
        ROWS.append(("per call", "no-op plugin call (session_info)", f"Orbit {noop * 1000:.1f} ms", "no Globus call", "the relay's share of the rows below"))
        print(f"  no-op plugin call through Orbit: {noop*1000:.1f} ms")
        compare("ls, loopback", ls_orbit, lambda: tc.operation_ls(TUTORIAL_1, path="/home/share/godata/"), samples)
        compare("get_task, loopback", lambda: g.get_task(long_id), lambda: tc.get_task(long_id), samples)
        compare_in_process(st, long_id, samples)
        st.admin("PATCH", "faults", json={"latency": 0.05})
        compare("ls, +50 ms Globus latency", ls_orbit, lambda: tc.operation_ls(TUTORIAL_1, path="/home/share/godata/"), max(10, samples // 3))
        compare("get_task, +50 ms Globus latency", lambda: g.get_task(long_id), lambda: tc.get_task(long_id), max(10, samples // 3))
        st.admin("DELETE", "faults")


def compare_in_process(st: Stack, task_id: str, samples: int) -> None:
    """The plugin's own share: GlobusSession.get_task in this process (no bridge/endpoint hop)."""
    import asyncio

    from radical.orbit.plugins.base import PluginContext
    from radical.orbit.plugins.globus import models as gm
    from radical.orbit.plugins.globus.plugin import PluginGlobus

    tc = st.sdk()

    async def run() -> tuple[list[float], list[float]]:
        plugin = PluginGlobus(PluginContext(endpoint="bench-inproc", notify=lambda *a: None))
        await plugin.start()
        session: Any = await plugin.open_session(gm.RegisterGlobusSession(access_token=st.token))
        ours, direct = [], []
        for i in range(samples + 5):
            t0 = time.perf_counter()
            await session.get_task(task_id)
            t1 = time.perf_counter()
            tc.get_task(task_id)
            t2 = time.perf_counter()
            if i >= 5:
                ours.append(t1 - t0)
                direct.append(t2 - t1)
        await plugin.stop()
        return ours, direct

    ours, direct = asyncio.run(run())
    mo, md = statistics.median(ours), statistics.median(direct)
    ROWS.append(("per call", "get_task, plugin in-process (no relay)", f"GlobusSession {mo * 1000:.1f} ms", f"direct SDK {md * 1000:.1f} ms", f"+{(mo - md) * 1000:.1f} ms: the plugin's own share"))
    print(f"  get_task in-process: session {mo*1000:.1f} ms vs direct {md*1000:.1f} ms")


def render() -> str:
    head = ("measure", "setup", "radical.orbit", "baseline", "result")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in ROWS]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="globus plugin benchmark (loopback)")
    ap.add_argument("--quick", action="store_true", help="fewer tasks and samples")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    t0 = time.monotonic()
    print("1. API calls per poll cycle")
    bench_polling([1, 10, 100] if args.quick else [1, 10, 100, 1000])
    print("2. state change -> client callback latency")
    bench_latency(6 if args.quick else 12)
    print("3./4. ls under load; Orbit vs direct SDK")
    bench_isolation_and_overhead(100, 15 if args.quick else 40)
    table = render()
    print()
    print(table)
    print(f"\n(total {time.monotonic() - t0:.0f} s)")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        import json

        args.json.write_text(json.dumps({"rows": [list(r) for r in ROWS]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
