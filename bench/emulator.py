"""Globus emulator benchmark (issue 3): copy throughput next to ``cp -r``, and get_task requests/s.

Setup: the emulator as a real process (``radical.orbit.testing.start_emulator``) with its
collections under a temporary root; a tree of mixed file sizes (one large file, some
medium ones and many small ones) in its local collection. The same tree is copied by
``cp -r`` and by an emulator transfer task (local collection -> local collection,
submitted with the real globus-sdk, timed from submit to SUCCEEDED), alternating, best
of ``--rounds`` (who goes first alternates; dirty pages are flushed with sync(2) before
each run). Both read from a warm page cache. Target: emulator within 1.5x of cp.
Then ``get_task`` on a finished task: sequential requests/s through the SDK
(TransferClient, keep-alive session) and through a bare httpx client.

    python bench/emulator.py                 # a 256 MiB tree
    python bench/emulator.py --size 1024     # the 1 GiB run
    python bench/emulator.py --verify        # also a verify_checksum=True transfer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import globus_sdk
import httpx
from rich.console import Console
from rich.table import Table

from radical.orbit.emulators.globus import dev_token, sdk_environment
from radical.orbit.testing import start_emulator

MiB = 1024 * 1024
#: seconds between get_task polls while timing a transfer; the time is read only when a
#: poll sees SUCCEEDED, so this bounds the error added to the copy's time
POLL = 0.005


def make_tree(base: Path, total_mib: int) -> tuple[int, int]:
    """~40% one big file, ~40% in 1-16 MiB files, ~20% in 4-256 KiB files; returns (files, bytes)."""
    base.mkdir(parents=True)
    total = total_mib * MiB
    chunk = os.urandom(4 * MiB)

    def write(path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            left = size
            while left > 0:
                n = min(left, len(chunk))
                fh.write(chunk[:n])
                left -= n

    files = 0
    write(base / "big.bin", int(total * 0.4))
    files += 1
    medium_budget = int(total * 0.4)
    i = 0
    while medium_budget > 0:
        size = min(medium_budget, (1 + (i * 7) % 16) * MiB)
        write(base / "medium" / f"m{i:03d}.bin", size)
        medium_budget -= size
        files += 1
        i += 1
    small_budget = total - int(total * 0.4) - int(total * 0.4)
    i = 0
    while small_budget > 0:
        size = min(small_budget, 4096 * (1 + (i * 13) % 64))
        write(base / "small" / f"d{i % 20:02d}" / f"s{i:05d}.dat", size)
        small_budget -= size
        files += 1
        i += 1
    nbytes = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    return files, nbytes


def time_cp(src: Path, dst: Path) -> float:
    shutil.rmtree(dst, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return time.perf_counter() - start


def time_transfer(tc: globus_sdk.TransferClient, ep: str, src: str, dst: str, dst_path: Path, verify: bool) -> tuple[float, dict[str, object]]:
    shutil.rmtree(dst_path, ignore_errors=True)
    td = globus_sdk.TransferData(ep, ep, verify_checksum=verify, label="bench")
    td.add_item(src, dst, recursive=True)
    start = time.perf_counter()
    tid = tc.submit_transfer(td)["task_id"]
    while True:
        doc = tc.get_task(tid)
        if doc["status"] != "ACTIVE":
            break
        time.sleep(POLL)
    elapsed = time.perf_counter() - start
    if doc["status"] != "SUCCEEDED":
        raise RuntimeError(f"bench transfer ended {doc['status']}: {doc['fatal_error']}")
    return elapsed, dict(doc.data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="tree size in MiB (default 256; 1024 for the 1 GiB run)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is reported")
    ap.add_argument("--requests", type=int, default=1000, help="get_task requests per client")
    ap.add_argument("--verify", action="store_true", help="also time a transfer with verify_checksum=True")
    ap.add_argument("--json", type=Path, help="also write the results as JSON (for bench/run_all.py)")
    args = ap.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory(prefix="orbit-bench-emulator-") as tmp:
        tmpdir = Path(tmp)
        root = tmpdir / "root"
        proc = start_emulator(root=root, log_dir=tmpdir / "logs", home=tmpdir / "home")
        try:
            url = proc.url or ""
            os.environ.update(sdk_environment(url))
            ep = httpx.get(f"{url}/health").json()["local_collection"]
            local_root = root / "local"
            console.print(f"building a {args.size} MiB tree of mixed file sizes ...")
            files, nbytes = make_tree(local_root / "src", args.size)
            tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(dev_token(url)["access_token"]))
            cp_times, emu_times, ver_times = [], [], []
            doc: dict[str, object] = {}
            time_cp(local_root / "src", tmpdir / "warm")  # warm the page cache once
            shutil.rmtree(tmpdir / "warm")
            for rnd in range(args.rounds):
                # alternate who goes first, and flush dirty pages before each run, so neither
                # pays for the other's writeback
                for which in ("cp", "emu") if rnd % 2 == 0 else ("emu", "cp"):
                    shutil.rmtree(tmpdir / "cp_dst", ignore_errors=True)
                    shutil.rmtree(local_root / "emu_dst", ignore_errors=True)
                    os.sync()
                    if which == "cp":
                        cp_times.append(time_cp(local_root / "src", tmpdir / "cp_dst"))
                    else:
                        t, doc = time_transfer(tc, ep, "/src/", "/emu_dst/", local_root / "emu_dst", False)
                        emu_times.append(t)
                if args.verify:
                    shutil.rmtree(local_root / "emu_dst", ignore_errors=True)
                    os.sync()
                    t, _ = time_transfer(tc, ep, "/src/", "/emu_dst/", local_root / "emu_dst", True)
                    ver_times.append(t)
            shutil.rmtree(local_root / "emu_dst", ignore_errors=True)
            assert doc["files_transferred"] == files and doc["bytes_transferred"] == nbytes

            tid = str(doc["task_id"])
            token = dev_token(url)["access_token"]
            start = time.perf_counter()
            for _ in range(args.requests):
                tc.get_task(tid)
            sdk_rps = args.requests / (time.perf_counter() - start)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
                start = time.perf_counter()
                for _ in range(args.requests):
                    client.get(f"/v0.10/task/{tid}").raise_for_status()
                raw_rps = args.requests / (time.perf_counter() - start)
            counters = httpx.get(f"{url}/_emulator/counters").json()["counters"]
        finally:
            proc.stop()

    cp_best, emu_best = min(cp_times), min(emu_times)
    table = Table(title=f"Copy throughput: {files} files, {nbytes / MiB:.0f} MiB (best of {args.rounds}, warm cache)")
    table.add_column("method")
    table.add_column("seconds", justify="right")
    table.add_column("MiB/s", justify="right")
    table.add_column("vs cp -r", justify="right")
    table.add_row("cp -r", f"{cp_best:.2f}", f"{nbytes / MiB / cp_best:.0f}", "1.00x")
    ratio = emu_best / cp_best
    style = "green" if ratio <= 1.5 else "red"
    table.add_row("emulator transfer task", f"{emu_best:.2f}", f"{nbytes / MiB / emu_best:.0f}", f"[{style}]{ratio:.2f}x[/{style}]")
    if ver_times:
        vb = min(ver_times)
        table.add_row("emulator, verify_checksum", f"{vb:.2f}", f"{nbytes / MiB / vb:.0f}", f"{vb / cp_best:.2f}x")
    console.print(table)
    rt = Table(title=f"get_task on one task, {args.requests} sequential requests")
    rt.add_column("client")
    rt.add_column("requests/s", justify="right")
    rt.add_column("ms/request", justify="right")
    rt.add_row("globus-sdk TransferClient", f"{sdk_rps:.0f}", f"{1000 / sdk_rps:.2f}")
    rt.add_row("bare httpx (keep-alive)", f"{raw_rps:.0f}", f"{1000 / raw_rps:.2f}")
    console.print(rt)
    console.print(f"emulator request counter for GET /v0.10/task/{{id}}: {counters.get('GET /v0.10/task/{id}', 0)}")
    console.print(f"target (emulator within 1.5x of cp -r): {'met' if ratio <= 1.5 else 'NOT met'}")
    if args.json:
        rows = [
            [
                "copy throughput",
                f"{files} files, {nbytes / MiB:.0f} MiB, warm cache, best of {args.rounds}",
                f"emulator task {emu_best:.2f} s ({nbytes / MiB / emu_best:.0f} MiB/s)",
                f"cp -r {cp_best:.2f} s",
                f"{ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'missed'})",
            ],
            [
                "get_task rate",
                f"{args.requests} sequential requests",
                f"globus-sdk {sdk_rps:.0f} req/s",
                f"bare httpx {raw_rps:.0f} req/s",
                f"{1000 / sdk_rps:.2f} ms per SDK call",
            ],
        ]
        if ver_times:
            vb = min(ver_times)
            rows.append(["copy + verify_checksum", "same tree", f"{vb:.2f} s", f"cp -r {cp_best:.2f} s", f"{vb / cp_best:.2f}x (MD5 on both sides)"])
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
