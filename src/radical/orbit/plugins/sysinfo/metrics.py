"""Host metrics in the shape the original Orbit's sysinfo gave them (``get_metrics``).

``{system, cpu, memory, disks, network, gpus}``, read from the standard library and
Linux's ``/proc`` and ``/sys`` (psutil, which the original used, is no dependency of
ours). On other systems what only ``/proc`` knows is None or empty; nothing raises.
Every reader takes its root as an argument, so tests can point it at a fake tree.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["cpu_info", "disks", "gpus", "memory", "metrics", "network", "system"]

#: filesystems that live on another machine: ``type`` "shared"
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smbfs", "lustre", "gpfs", "beegfs", "pvfs2", "orangefs", "glusterfs", "cephfs", "afs", "dvs"}
)
#: ``ioctl`` request for an interface's IPv4 address (Linux)
_SIOCGIFADDR = 0x8915
#: how long the first CPU-usage sample waits for a second one
_CPU_SAMPLE = 0.1
#: the longest ``nvidia-smi`` may take
_GPU_TIMEOUT = 5.0
#: how long ``disks`` waits for the file systems' sizes, all of them together
STATVFS_WAIT = 2.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def system(proc: Path = Path("/proc")) -> dict[str, Any]:
    """``hostname``, ``user``, ``uptime`` (seconds), ``kernel``, ``arch``."""
    uname = platform.uname()
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = ""
    text = _read(proc / "uptime")
    uptime: float | None = None
    if text and text.split():
        with contextlib.suppress(ValueError):
            uptime = float(text.split()[0])
    return {"hostname": socket.gethostname(), "user": user, "uptime": uptime, "kernel": f"{uname.system} {uname.release}", "arch": uname.machine}


class CpuUsage:
    """CPU busy percentage since the previous call (the first call samples briefly)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._stat = proc / "stat"
        self._lock = threading.Lock()
        self._last: tuple[int, int] | None = None

    def _sample(self) -> tuple[int, int] | None:
        text = _read(self._stat)
        if not text or not text.startswith("cpu "):
            return None
        try:
            ticks = [int(x) for x in text.splitlines()[0].split()[1:]]
        except ValueError:
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return sum(ticks), idle

    def percent(self) -> float | None:
        with self._lock:
            before = self._last or self._sample()
            if self._last is None and before is not None:
                time.sleep(_CPU_SAMPLE)
            now = self._sample()
            self._last = now
        if before is None or now is None or now[0] <= before[0]:
            return None
        busy = (now[0] - before[0]) - (now[1] - before[1])
        return round(100.0 * busy / (now[0] - before[0]), 1)


def cpu_info(proc: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> dict[str, Any]:
    """``model``, ``vendor``, ``cores_physical``, ``cores_logical``, ``freq_mhz``, ``load_avg``."""
    model = vendor = None
    cores: set[tuple[str, str]] = set()
    mhz: list[float] = []
    physical = core = ""
    for line in (_read(proc / "cpuinfo") or "").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and model is None:
            model = value
        elif key == "vendor_id" and vendor is None:
            vendor = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
        elif key == "cpu MHz":
            with contextlib.suppress(ValueError):
                mhz.append(float(value))
        elif not key and (physical or core):  # a blank line ends one processor's block
            cores.add((physical, core))
            physical = core = ""
    if physical or core:
        cores.add((physical, core))
    freq = round(sum(mhz) / len(mhz), 1) if mhz else None
    if freq is None:
        khz = _int(sys_root / "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
        freq = round(khz / 1000, 1) if khz else None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    logical = os.cpu_count() or 0
    return {
        "model": model or platform.processor() or None,
        "vendor": vendor or platform.processor() or None,
        "cores_physical": len(cores) or logical,
        "cores_logical": logical,
        "freq_mhz": freq,
        "load_avg": load,
    }


def memory(proc: Path = Path("/proc")) -> dict[str, Any]:
    """``total``, ``available``, ``used`` (bytes) and ``percent`` used."""
    values: dict[str, int] = {}
    for line in (_read(proc / "meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            values[key] = int(rest.split()[0]) * 1024
    total = values.get("MemTotal")
    available = values.get("MemAvailable", values.get("MemFree"))
    if total is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    used = total - available if total is not None and available is not None else None
    percent = round(100.0 * used / total, 1) if used is not None and total else None
    return {"total": total, "available": available, "used": used, "percent": percent}


def _disk_kind(device: str, sys_root: Path) -> str:
    """``local ssd`` / ``local hdd`` from the block device's ``rotational`` flag, else ``local``."""
    name = Path(os.path.realpath(device)).name if device.startswith("/dev/") else ""
    for candidate in (name, name.rstrip("0123456789"), name.rsplit("p", 1)[0]):
        flag = _read(sys_root / "block" / candidate / "queue" / "rotational") if candidate else None
        if flag is not None:
            return "local hdd" if flag.strip() == "1" else "local ssd"
    return "local"


class _SizeProbe:
    """``os.statvfs(mount)`` in a daemon thread of its own.

    On a network file system whose server is gone (a hung NFS or Lustre mount, common
    on HPC login nodes) the call blocks in the kernel and cannot be interrupted; the
    caller stops waiting for it, and the probe stays registered until the call
    returns, so asking again starts no second thread for the same mount.
    """

    #: mount -> its probe, while its call has not returned
    running: ClassVar[dict[str, _SizeProbe]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, mount: str) -> None:
        self.mount = mount
        self.done = threading.Event()
        self.result: os.statvfs_result | None = None
        threading.Thread(target=self._run, name=f"statvfs {mount}", daemon=True).start()

    @classmethod
    def of(cls, mount: str) -> _SizeProbe:
        """The probe still running for ``mount``, or a new one."""
        with cls.lock:
            probe = cls.running.get(mount)
            if probe is None:
                probe = cls.running[mount] = cls(mount)
            return probe

    def _run(self) -> None:
        try:
            self.result = os.statvfs(self.mount)
        except OSError:
            self.result = None
        finally:
            with self.lock:
                if self.running.get(self.mount) is self:
                    del self.running[self.mount]
            self.done.set()


def disks(proc: Path = Path("/proc"), sys_root: Path = Path("/sys"), wait: float = STATVFS_WAIT) -> list[dict[str, Any]]:
    """Mounted local and network filesystems: ``mount``, ``device``, ``fstype``, ``type``, ``total``, ``used``, ``percent``.

    The sizes are asked for in parallel and waited for ``wait`` seconds in all: a
    mount that has not answered by then is listed with ``total``, ``used`` and
    ``percent`` None and an ``error`` that says so, instead of holding the answer.
    """
    found: list[tuple[str, str, str, bool]] = []
    listed: set[str] = set()  # a mount point once, as its first line names it
    for line in (_read(proc / "mounts") or "").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
        shared = fstype in NETWORK_FS
        if mount in listed or not (shared or device.startswith("/dev/")) or fstype == "squashfs" or "/snap/" in mount:
            continue
        listed.add(mount)
        found.append((device, mount, fstype, shared))
    probes = [_SizeProbe.of(mount) for _, mount, _, _ in found]
    deadline = time.monotonic() + wait
    out: list[dict[str, Any]] = []
    for (device, mount, fstype, shared), probe in zip(found, probes, strict=True):
        kind = "shared" if shared else _disk_kind(device, sys_root)
        if not probe.done.wait(max(0.0, deadline - time.monotonic())):
            out.append({
                "mount": mount, "device": device, "fstype": fstype, "type": kind, "total": None, "used": None, "percent": None,
                "error": f"no answer within {wait:g} s (a hung {'network ' if shared else ''}mount?)",
            })
            continue
        st = probe.result
        if st is None:  # gone, or not ours to read
            continue
        total = st.f_blocks * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        usable = used + st.f_bavail * st.f_frsize
        out.append({
            "mount": mount,
            "device": device,
            "fstype": fstype,
            "type": kind,
            "total": total,
            "used": used,
            "percent": round(100.0 * used / usable, 1) if usable else 0.0,
        })
    return out


def _ipv4(interface: str) -> str | None:
    """The interface's IPv4 address (Linux ``SIOCGIFADDR``), or None."""
    try:
        import fcntl  # POSIX only

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", interface.encode()[:15]))
    except (ImportError, OSError):
        return None
    return socket.inet_ntoa(packed[20:24])


def _int(path: Path) -> int:
    text = _read(path)
    try:
        return max(int(text.strip()), 0) if text else 0
    except ValueError:
        return 0


def network(sys_root: Path = Path("/sys")) -> list[dict[str, Any]]:
    """Interfaces that are up and have an IPv4 address (loopback left out):
    ``interface``, ``ip``, ``mac``, ``speed_mbps``, ``rx_bytes``, ``tx_bytes``."""
    base = sys_root / "class" / "net"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for name in names:
        here = base / name
        if name == "lo" or (_read(here / "operstate") or "").strip() == "down":
            continue
        ip = _ipv4(name)
        if ip is None:
            continue
        out.append({
            "interface": name,
            "ip": ip,
            "mac": (_read(here / "address") or "").strip() or None,
            "speed_mbps": _int(here / "speed"),
            "rx_bytes": _int(here / "statistics" / "rx_bytes"),
            "tx_bytes": _int(here / "statistics" / "tx_bytes"),
        })
    return out


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them (``id``, ``name``, ``util_gpu``,
    ``util_mem`` percent, ``mem_total`` MiB); empty without it."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "--query-gpu=index,name,utilization.gpu,utilization.memory,memory.total"
    try:
        done = subprocess.run(
            [exe, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=_GPU_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    out: list[dict[str, Any]] = []
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 5:
            continue
        number = [int(f) if f.isdigit() else None for f in fields]
        out.append({"id": fields[0], "name": fields[1], "util_gpu": number[2], "util_mem": number[3], "mem_total": number[4]})
    return out


_USAGE = CpuUsage()


def metrics() -> dict[str, Any]:
    """Everything at once, as the original's ``get_metrics`` answered (blocking: run it in a thread)."""
    cpu = cpu_info()
    cpu["percent"] = _USAGE.percent()
    return {"system": system(), "cpu": cpu, "memory": memory(), "disks": disks(), "network": network(), "gpus": gpus()}
