"""Run every benchmark and regenerate docs/benchmarks.md: the tables, then a short reading guide.

    python bench/run_all.py [--quick] [--only relay,globus,sessions,subscribers,endpoints,scoped,emulator,ha] [--no-write]

Each script starts real processes on 127.0.0.1 and prints its own tables; this driver
asks each for ``--json`` and writes their tables into the page. How the figures moved
from change to change is told in the commit messages, not on the page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"

#: name -> (script, extra args, extra args with --quick, section title)
BENCHES: dict[str, tuple[str, list[str], list[str], str]] = {
    "relay": ("relay.py", [], ["--requests", "1500", "--rounds", "4", "--latency-budget", "16", "--duration", "3"],
              "Relay: ours and the original Orbit"),
    "globus": ("globus.py", [], ["--quick"], "Globus plugin: through Orbit and the direct SDK call"),
    "sessions": ("sessions.py", [], [], "Globus plugin: what idle sessions cost"),
    "subscribers": ("subscribers.py", [], ["--subscribers", "300", "--notifications", "600"],
                    "Bridge: relay latency while /events subscribers are stuck"),
    "endpoints": ("endpoints.py", [], ["--endpoints", "200", "--calls", "400"],
                  "Bridge: 1,000 connected endpoints"),
    "scoped": ("scoped.py", [], ["--calls", "1000", "--rounds", "4"],
               "Bridge: per-user tokens and scoped events next to the admin token"),
    "emulator": ("emulator.py", [], ["--size", "128", "--rounds", "2", "--requests", "500"],
                 "Globus emulator: transfer engine and request rate"),
    "ha": ("ha.py", [], ["--requests", "1000", "--subscribers", "10"],
           "Bridge replicas on Redis: forwarding, failover, event fan-out"),
}
ROW_COLUMNS = ["measure", "setup", "radical.orbit", "baseline", "result"]

GUIDE = """
**Rerun** every bench and rewrite this page:

<!-- not-runnable: takes minutes, rewrites this page, and the relay bench installs the original Orbit from the package index -->
```bash
python bench/run_all.py
```

`--quick` makes shorter runs, `--only NAME,...` picks benches, `--no-write` prints the
page instead of rewriting it; each script also runs on its own:

```bash
python bench/run_all.py --quick --only emulator --no-write
python bench/relay.py --help
```

Every figure comes from real processes on 127.0.0.1,
started as a user starts them, and is compared with a baseline measured in the same
run. On the shared 2-core machine figures move by ±20 % from run to run, more while
other work runs (see the load average above): compare within one run, not across runs,
and rerun on your own hardware before drawing conclusions.

**Relay** (`bench/relay.py`): six servers, called by the same client code in
alternating rounds.

* *ours relay*: client → our bridge → our endpoint, sysinfo's `ping` route.
* *original relay*: the same through the original Orbit, `radical.orbit==0.2.0` from
  the package index, which the bench installs into a venv of its own
  (`~/.cache/radical-orbit-bench/orig-0.2.0`, or `--original-venv DIR`) and reuses;
  its cheapest route, sysinfo's `homedir`. Both relays speak plain HTTP on both sides.
  The original has no switch for that, so `bench/original_launch.py` runs its own
  bridge script and removes only the certificate and key from its `uvicorn.run` call.
  Its bridge hosts no plugins of its own (ours hosts none).
* *bare app*: one Starlette `GET /ping` route. Each relay is measured against a bare
  app served with its own stack's server settings (ours: uvloop + httptools, no
  access log; the original's: its own `uvicorn.run` arguments, listed under the table).
* *ours FastAPI app*: the same route as a FastAPI app, served the same way: what a
  plugin's route (plugins are FastAPI apps) gives when it is served directly, without
  Orbit. *capacity vs the route on FastAPI* is the relay's share of it; the targets
  still compare with the Starlette bare app. Its own *added median* and *capacity vs
  its bare app* are what FastAPI alone costs next to the Starlette app: every relayed
  plugin call pays them too, so the relay's capacity share can pass FastAPI's only
  because the bridge and the endpoint split the work between two processes.
* *floor: forwarder + FastAPI app*: the FastAPI app behind `bench/forwarder.py`, a
  process that only copies bytes both ways (no parsing). Any relay in front of a
  plugin costs at least this on the machine: one more process, two more loopback
  hops, and FastAPI's own cost. Its *added median* is what hops and FastAPI take
  from any relay's latency; its *capacity vs its bare app* is about as far as a relay
  in front of a plugin's route can get.
* *latency median / p99*: sequential calls with one httpx client.
* *added median / p99*: the relay minus its own bare app, i.e. what the relay costs
  per call with the server settings taken out.
* *req/s, httpx own clients / shared client*: 32 httpx threads, each with its own
  client or all sharing one. The client's GIL bounds these (the client sits near one
  core in the CPU table), so they show what a Python program gets, not what the relay
  can carry.
* *req/s, capacity*: 32 keep-alive connections from a light load generator (uvloop +
  httptools, a process of its own), so that the servers run out of CPU first.
  *capacity vs its bare app* is the relay's share of its bare app's capacity. When
  the capacity rows of the CPU table fall well short of the whole machine, other
  work held the CPUs and the capacity figures are pessimistic.
* *non-200 answers* must be 0; `bench/relay.py` exits non-zero when ours has any.
* *Targets* (issue 12): our added median ≤ 0.5× the original's, our relay capacity
  ≥ 3× the original's and ≥ 50 % of our bare app's. They read n/a when the original
  could not be installed or run; the notes say why.
* *Where the CPU went*: the cores each process used during each kind of run (the
  machine has 2).

**Globus plugin** (`bench/globus.py`, against the Globus emulator): *poll cycle* is
the Globus API calls per poll cycle for N tracked tasks (the baseline is one
`get_task` per task); *state change → callback* is how late a transfer's status
change reaches the client's callback; *ls under load* is `ls` with 100 `task_wait`s
in flight against idle; *per call* is one call through Orbit against the direct
globus-sdk call on the same emulator, on raw loopback and with emulated Globus latency.

**Idle sessions** (`bench/sessions.py`, the plugin in-process): threads and memory that
1,000 Globus sessions add while idle (registered with access tokens: no Globus call),
each layout in a fresh process. *RSS* is the process's resident memory, *traced* the
Python allocations still held (tracemalloc, in a run of its own). The baseline gives
every session a thread pool of its own, as before issue 13; now every session submits
to the plugin's one pool of `workers` threads, which grows to that bound as work
arrives; the baseline is taken after it did (concurrent registrations first), so the
rows show what the sessions themselves add. Target (issue 13): no new threads,
<= 20 MiB.

**Stuck subscribers** (`bench/subscribers.py`): 1,500 raw `/events` streams that read
their response head and never read again, while sysinfo watches raise 3,000
notifications that the bridge fans out to every stream; one client's sequential calls
through the relay against the same calls before the streams opened. Target (issue 13):
the median with stuck subscribers <= 2x the idle median. *events to a reading
listener* shows that a stream that does read still gets every event.

**Connected endpoints** (`bench/endpoints.py`): one real endpoint answers the measured
calls; a simulator (one helper process, raw WebSocket connections on one asyncio loop)
connects 1,000 more, each with the bridge host's endpoint key, a `register` frame and a
`pong` for every `ping`. *memory per connected endpoint* is the bridge's RSS with them
all connected minus its RSS with the real one alone, divided by their number; the
latency rows compare the same calls before and with the 1,000 connected.

**Scoped events** (`bench/scoped.py`): one bridge, the default (admin) token and a
per-user token, each with an `/events` stream open, calling in alternating rounds while
a third identity's sysinfo watches raise a few hundred notifications that the admin's
stream carries and the user's filters out. Target (issue 13): the per-user median
within 10 % of the admin's (ratio <= 1.10).

**Bridge replicas** (`bench/ha.py`, a redis-server and two replicas A and B, endpoint on
A, and a lone bridge as the baseline): *forwarded call* is a call through B, which
forwards it over Redis to A, against the same call through A (target, issue 16:
≤ +1 ms median); *same-replica call* is the call through A against the lone bridge
(what being a replica costs a call that needs no forwarding); *failover time* is from
kill -9 of A until a call through B is answered again, the endpoint having been told
both URLs (target: ≤ 3 s); *event fan-out* is notifications delivered per second over
all `/events` streams on B, every event having gone through the Redis Stream, against
the same streams on the lone bridge.

**Globus emulator** (`bench/emulator.py`): *copy throughput* is an emulator transfer
task against `cp -r` of the same tree (warm page cache, best of several); *get_task
rate* is sequential `get_task` requests through globus-sdk against bare httpx.
"""


def md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(columns), "|" + "---|" * len(columns), *(line(r) for r in rows), ""]


def relay_section(data: dict[str, Any]) -> list[str]:
    tables = data["tables"]
    lines: list[str] = []
    for name in ("comparison", "targets", "cpu"):
        spec = tables[name]
        lines += [f"**{spec['title']}**", "", *md_table(spec["columns"], spec["rows"])]
    lines += [f"* {note}" for note in tables["notes"]]
    return [*lines, ""]


def run_one(name: str, quick: bool) -> tuple[dict[str, Any], float]:
    script, args, quick_args, _ = BENCHES[name]
    with tempfile.TemporaryDirectory(prefix="orbit-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(HERE / script), *args, *(quick_args if quick else []), "--json", str(out)]
        env = dict(os.environ, COLUMNS="110", NO_COLOR="1")
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=1800)
        took = time.monotonic() - t0
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"benchmark {name} failed (exit {proc.returncode})")
        return json.loads(out.read_text()), took


def render(results: dict[str, tuple[dict[str, Any], float]], quick: bool, load_before: float) -> str:
    load = os.getloadavg()[0]
    lines = [
        "# Benchmarks",
        "",
        (
            f"Regenerated by `python bench/run_all.py{' --quick' if quick else ''}` on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load_before:.2f} before and {load:.2f} after the run. "
            "Figures move by ±20 % between runs on a shared 2-core machine; the reading guide "
            "below says what each row means and how to rerun."
        ),
        "",
    ]
    for name, (data, took) in results.items():
        script, _, _, title = BENCHES[name]
        lines += [f"## {title}", "", f"`bench/{script}`, {took:.0f} s.", ""]
        lines += relay_section(data) if name == "relay" else md_table(ROW_COLUMNS, [list(map(str, r)) for r in data["rows"]])
    lines += ["## Reading guide", "", GUIDE.strip(), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of: " + ", ".join(BENCHES))
    ap.add_argument("--no-write", action="store_true", help="print, but do not rewrite docs/benchmarks.md")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown bench(es): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    load_before = os.getloadavg()[0]
    results = {name: run_one(name, args.quick) for name in names}
    doc = render(results, args.quick, load_before)
    if args.no_write:
        print(doc)
    else:
        DOC.write_text(doc, encoding="utf-8")
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
