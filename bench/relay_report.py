"""bench/relay.py's results as tables: plain rows, so the terminal (rich) and docs/benchmarks.md
(bench/run_all.py, from the ``--json`` output) show the same thing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

NA = "n/a"
STACKS = ("ours", "original")
KINDS = ("relay", "bare", "fastapi", "floor")
#: the comparison table's columns: (stack, kind); only ours has a FastAPI app and a floor
COLUMNS = (("ours", "relay"), ("ours", "bare"), ("ours", "fastapi"), ("ours", "floor"), ("original", "relay"), ("original", "bare"))
#: kinds whose per-stack figures are their own, under this prefix (the rest show the relay's)
OWN_FIGURES = {"fastapi": "fastapi_", "floor": "floor_"}
SHORT_MODES = {"own": "httpx, own clients", "shared": "httpx, shared client", "capacity": "capacity"}
#: (target, required, limit, compare); the figures come from :func:`targets`
TARGETS = (
    ("our added median vs the original's", "<= 0.5x", 0.5, "le"),
    ("our relay capacity vs the original's", ">= 3x", 3.0, "ge"),
    ("our relay capacity vs our bare app's", ">= 50%", 0.5, "ge"),
)


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return NA if value is None else f"{value:{spec}}{suffix}"


def _side(results: dict[str, Any], stack: str, kind: str) -> dict[str, Any]:
    return dict(results.get(stack, {}).get(kind) or {})


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three targets, each with its measured ratio and met (None when it cannot be judged)."""
    ours, orig = results["ours"], results["original"]
    ours_cap, orig_cap = _side(results, "ours", "relay").get("rps_capacity"), _side(results, "original", "relay").get("rps_capacity")
    bare_cap = _side(results, "ours", "bare").get("rps_capacity")
    ours_added, orig_added = ours.get("added_median_ms"), orig.get("added_median_ms")
    figures = [
        (_ratio(ours_added, orig_added) if orig_added and orig_added > 0 else None, f"{_num(ours_added, '+.3f')} vs {_num(orig_added, '+.3f')} ms", "x"),
        (_ratio(ours_cap, orig_cap), f"{_num(ours_cap, '.0f')} vs {_num(orig_cap, '.0f')} req/s", "x"),
        (_ratio(ours_cap, bare_cap), f"{_num(ours_cap, '.0f')} vs {_num(bare_cap, '.0f')} req/s", "%"),
    ]
    out = []
    for (name, required, limit, compare), (value, detail, unit) in zip(TARGETS, figures, strict=True):
        met = None if value is None else (value <= limit if compare == "le" else value >= limit)
        shown = NA if value is None else (f"{value:.1%}" if unit == "%" else f"{value:.2f}x")  # one decimal more than the limit
        out.append({"target": name, "value": value, "measured": f"{shown} ({detail})", "required": required, "met": met})
    return out


def _rate(mode: str) -> Callable[[dict[str, Any]], str]:
    return lambda side: _num(side.get(f"rps_{mode}"), ".0f")


def _comparison(results: dict[str, Any]) -> dict[str, Any]:
    cols = list(COLUMNS)
    sides = [_side(results, s, k) for s, k in cols]
    # a stack without figures says why in each of its cells: "unavailable", "not run", "failed"
    missing = [(results[s].get("note") or NA).split(" (")[0].split(":")[0] for s, _ in cols]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label, *(cell(side) if side.get("requests") else why for side, why in zip(sides, missing, strict=True))]

    def per_stack(label: str, key: str, spec: str, suffix: str) -> list[str]:
        """A figure of each relay; the FastAPI app's and the floor's own, where they have one."""
        cells = [label]
        for (stack, kind), why in zip(cols, missing, strict=True):
            if kind in OWN_FIGURES:
                value = results[stack].get(f"{OWN_FIGURES[kind]}{key}")
                cells.append("" if value is None else _num(value, spec, suffix))
                continue
            value = results[stack].get(key)
            cells.append("" if kind != "relay" else why if value is None else _num(value, spec, suffix))
        return cells

    rows = [
        row("called", lambda s: f"GET {urlsplit(s['url']).path}"),
        row("latency requests", lambda s: str(s["requests"])),
        row("latency median (ms)", lambda s: _num(s.get("median_ms"), ".3f")),
        row("latency p99 (ms)", lambda s: _num(s.get("p99_ms"), ".3f")),
        per_stack("added median", "added_median_ms", "+.3f", " ms"),
        per_stack("added p99", "added_p99_ms", "+.3f", " ms"),
        *(row(f"req/s, {label}", _rate(mode)) for mode, label in SHORT_MODES.items()),
        per_stack("capacity vs its bare app", "capacity_vs_bare", ".1%", ""),
        per_stack("capacity vs the route on FastAPI", "capacity_vs_fastapi", ".1%", ""),
        row("non-200 answers", lambda s: str(s.get("errors", 0))),
    ]
    version = results["original"]["version"]
    columns = ["measure", "ours relay", "ours bare app", "ours FastAPI app", "floor: forwarder + FastAPI app", "original relay", "original bare app"]
    return {"title": f"Relay: ours ({results['ours']['version']}) next to the original Orbit ({version}), same run, same clients", "columns": columns, "rows": rows}


def _cpu(results: dict[str, Any]) -> dict[str, Any]:
    roles = ("client", "bridge", "endpoint", "forwarder", "app")
    rows = []
    for mode, label in SHORT_MODES.items():
        for stack in STACKS:
            for kind in KINDS:
                used = _side(results, stack, kind).get("cpu_cores", {}).get(mode)
                if used:
                    rows.append([f"{label}: {stack} {kind}", *(_num(used.get(r), ".2f") if r in used else "" for r in roles), f"{sum(used.values()):.2f}"])
    columns = ["run", "client / load gen", "bridge", "endpoint", "forwarder", "app", "total"]
    return {"title": f"Where the CPU went (cores used during the runs; {results['cpus']} = the whole machine)", "columns": columns, "rows": rows}


def _notes(results: dict[str, Any]) -> list[str]:
    ours, orig = results["ours"], results["original"]
    notes = [
        f"ours ({ours['version']}): bridge and endpoint started by radical.orbit.testing; our bare app: {ours['server']}.",
        "ours FastAPI app: the same route as a FastAPI app (what a plugin is), served the same way, without Orbit.",
        "floor: the FastAPI app behind forwarder.py, a process that only copies bytes: the least any relay in front of a plugin costs here.",
        f"original ({orig['version']}, venv {orig['venv']}): " + (f"{orig['server']}; its bare app is served with the same settings." if orig.get("server") else "no figures."),
    ]
    notes += [f"{name}: {results[name]['note']}" for name in STACKS if results[name].get("note")]
    load = results["load_average"]
    notes.append(f"{results['cpus']} CPUs, load average {load[0]:.2f} -> {load[1]:.2f}, took {results['seconds']:.0f} s.")
    if load[0] > 1.0:
        notes.append("The machine was busy with other work: latency and rates are pessimistic.")
    return notes


def tables(results: dict[str, Any]) -> dict[str, Any]:
    """``{name: {title, columns, rows}}`` plus ``notes``: everything the report shows, as text."""
    found = targets(results)
    verdict = {True: "met", False: "missed", None: NA}
    target_rows = [[t["target"], t["measured"], t["required"], verdict[t["met"]]] for t in found]
    return {
        "comparison": _comparison(results),
        "targets": {"title": "Targets (issue 12)", "columns": ["target", "measured", "required", "verdict"], "rows": target_rows},
        "cpu": _cpu(results),
        "notes": _notes(results),
    }


def print_tables(console: Any, results: dict[str, Any]) -> None:
    """The tables with rich, verdicts coloured, then the notes."""
    from rich.table import Table

    colour = {"met": "[green]met[/]", "missed": "[red]missed[/]"}
    for name in ("comparison", "targets", "cpu"):
        spec = results["tables"][name]
        table = Table(title=spec["title"])
        for i, column in enumerate(spec["columns"]):
            table.add_column(column, justify="left" if i == 0 or name == "targets" else "right")
        for cells in spec["rows"]:
            table.add_row(*(colour.get(c, c) for c in cells))
        console.print(table)
    for note in results["tables"]["notes"]:
        console.print(note)
