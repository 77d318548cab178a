"""sysinfo's routes for the original Orbit's calls: homedir, host_role, metrics (served in-process)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from radical.orbit.endpoint.dispatch import build_scope, call_asgi
from radical.orbit.models.messages import Request
from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.sysinfo import metrics
from radical.orbit.plugins.sysinfo.host import host_role
from radical.orbit.plugins.sysinfo.plugin import PluginSysinfo


def make() -> PluginSysinfo:
    return PluginSysinfo(PluginContext(endpoint="ep", notify=lambda *a: None))


async def call(plugin: PluginSysinfo, method: str, route: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = [("content-type", "application/json")] if body is not None else []
    frame = Request(id="r", method=method, path=f"/sysinfo{route}", query="", headers=headers)
    status, _, out = await call_asgi(plugin.app, build_scope(frame, route), data)
    return status, json.loads(out)


class TestRoutes:
    def test_homedir_and_host_role_need_no_session(self, home: Path) -> None:
        plugin = make()
        assert asyncio.run(call(plugin, "GET", "/homedir")) == (200, {"homedir": str(home)})
        status, role = asyncio.run(call(plugin, "GET", "/host_role"))
        assert status == 200 and set(role) == {"role", "scheduler", "job_id", "psij_executor", "python_version"}
        assert role["role"] in ("login", "compute", "standalone")

    def test_metrics_needs_a_session(self) -> None:
        async def main() -> tuple[int, Any, int, Any]:
            plugin = make()
            bad = await call(plugin, "POST", "/metrics", {"sid": "unknown"})
            _, reg = await call(plugin, "POST", "/register_session", {})
            return (*bad, *await call(plugin, "POST", "/metrics", {"sid": reg["sid"]}))

        bad_status, bad, status, answer = asyncio.run(main())
        assert bad_status == 404 and bad["code"] == "session_not_found"
        assert status == 200 and set(answer) == {"system", "cpu", "memory", "disks", "network", "gpus"}
        assert answer["cpu"]["cores_logical"] == os.cpu_count()
        assert set(answer["system"]) == {"hostname", "user", "uptime", "kernel", "arch"}
        assert set(answer["memory"]) == {"total", "available", "used", "percent"}


class TestHostRole:
    def test_compute_login_standalone(self) -> None:
        def which(found: set[str]) -> Any:
            return lambda cmd: f"/usr/bin/{cmd}" if cmd in found else None

        assert host_role({"SLURM_JOB_ID": "123"}, which({"sbatch"}))["role"] == "compute"
        compute = host_role({"PBS_JOBID": "9.pbs"}, which(set()))
        assert (compute["role"], compute["scheduler"], compute["job_id"], compute["psij_executor"]) == ("compute", "pbs", "9.pbs", "pbs")
        login = host_role({}, which({"bsub"}))
        assert (login["role"], login["scheduler"], login["job_id"]) == ("login", "lsf", None)
        alone = host_role({}, which(set()))
        assert (alone["role"], alone["scheduler"], alone["psij_executor"]) == ("standalone", "none", "local")


class TestReaders:
    """Each reader against a made-up /proc and /sys, and against nothing at all."""

    def test_from_a_fake_tree(self, tmp_path: Path) -> None:
        proc, sys_root = tmp_path / "proc", tmp_path / "sys"
        proc.mkdir()
        (proc / "uptime").write_text("1234.5 99.0\n")
        (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\n")
        (proc / "cpuinfo").write_text(
            "".join(
                f"processor\t: {n}\nvendor_id\t: GenuineTest\nmodel name\t: Test CPU\nphysical id\t: 0\n"
                f"core id\t\t: {n // 2}\ncpu MHz\t\t: {1000 + n * 100}.0\n\n"
                for n in range(4)
            )
        )
        (proc / "mounts").write_text(f"/dev/sda1 {tmp_path} ext4 rw 0 0\nproc /proc proc rw 0 0\nserver:/x {tmp_path} nfs rw 0 0\n")
        (sys_root / "block" / "sda" / "queue").mkdir(parents=True)
        (sys_root / "block" / "sda" / "queue" / "rotational").write_text("0\n")
        assert metrics.system(proc)["uptime"] == 1234.5
        assert metrics.memory(proc) == {"total": 1024000, "available": 256000, "used": 768000, "percent": 75.0}
        cpu = metrics.cpu_info(proc, sys_root)
        assert (cpu["model"], cpu["vendor"], cpu["cores_physical"], cpu["freq_mhz"]) == ("Test CPU", "GenuineTest", 2, 1150.0)
        disks = metrics.disks(proc, sys_root)
        assert [(d["device"], d["type"]) for d in disks] == [("/dev/sda1", "local ssd")]  # one per mount point
        assert disks[0]["total"] > 0 and 0 <= disks[0]["percent"] <= 100

    def test_a_hung_mount_does_not_hold_the_answer(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A network mount whose server is gone blocks statvfs in the kernel: the
        others are still answered, the hung one is named, and asking again starts no
        second probe of it; once it answers, its sizes are back."""
        proc, hung = tmp_path / "proc", tmp_path / "hung"
        proc.mkdir()
        hung.mkdir()
        (proc / "mounts").write_text(f"/dev/sda1 {tmp_path} ext4 rw 0 0\nserver:/gone {hung} nfs rw 0 0\n")
        real, release, calls = os.statvfs, threading.Event(), Counter[str]()

        def statvfs(path: Any) -> os.statvfs_result:
            calls[str(path)] += 1
            if str(path) == str(hung):
                release.wait(60)  # the server is gone
            return real(path)

        monkeypatch.setattr(metrics.os, "statvfs", statvfs)
        try:
            for _ in range(2):
                started = time.monotonic()
                found = {d["mount"]: d for d in metrics.disks(proc, tmp_path / "sys", wait=0.3)}
                assert time.monotonic() - started < 10  # the wait, not the hung call (slack for a loaded machine)
                assert found[str(tmp_path)]["total"] > 0
                stalled = found[str(hung)]
                assert (stalled["type"], stalled["total"], stalled["used"], stalled["percent"]) == ("shared", None, None, None)
                assert stalled["error"] == "no answer within 0.3 s (a hung network mount?)"
            assert calls[str(hung)] == 1  # the second call found the first probe still waiting
        finally:
            release.set()
        deadline = time.monotonic() + 30
        while str(hung) in metrics._SizeProbe.running and time.monotonic() < deadline:
            time.sleep(0.01)
        found = {d["mount"]: d for d in metrics.disks(proc, tmp_path / "sys", wait=5)}
        assert found[str(hung)]["total"] > 0 and "error" not in found[str(hung)]
        assert calls[str(hung)] == 2

    def test_from_nothing(self, tmp_path: Path) -> None:
        empty = tmp_path / "none"
        assert metrics.system(empty)["uptime"] is None
        assert metrics.memory(empty)["available"] is None
        assert metrics.disks(empty, empty) == [] and metrics.network(empty) == []
        assert metrics.cpu_info(empty, empty)["cores_logical"] == os.cpu_count()

    def test_network(self, tmp_path: Path) -> None:
        net = tmp_path / "class" / "net"
        for name, state in (("lo", "unknown"), ("down0", "down"), ("nosuchif0", "up")):
            (net / name).mkdir(parents=True)
            (net / name / "operstate").write_text(state)
        assert metrics.network(tmp_path) == []  # loopback, down, and no IPv4 address: all left out
        for iface in metrics.network():
            assert iface["interface"] != "lo" and iface["ip"].count(".") == 3

    def test_cpu_usage(self, tmp_path: Path) -> None:
        stat = tmp_path / "stat"
        stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
        usage = metrics.CpuUsage(tmp_path)
        assert usage.percent() is None  # no time passed between the two samples
        stat.write_text("cpu  150 0 150 900 0 0 0 0 0 0\n")
        assert usage.percent() == 50.0
        assert metrics.CpuUsage(tmp_path / "none").percent() is None
