"""An emulator-backed Orbit stack for the globus integration tests (and bench/globus.py).

Real processes on 127.0.0.1, started the way a user starts them: the Globus emulator
(``radical-orbit emulator``), a bridge and an endpoint hosting ``globus`` at
``--log-level debug`` (via ``RADICAL_ORBIT_LOG_LEVEL``), pointed at the emulator through
globus-sdk's own ``GLOBUS_SDK_SERVICE_URL_TRANSFER`` / ``..._AUTH``.

The emulator gets a config with the two tutorial collections, a local collection and
a *mapped* collection that requires ``data_access`` consent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import ServiceProcess

TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
TUTORIAL_2 = "31ce9ba0-176d-45a5-add3-f37d233ba47d"
LOCAL = "0a11c0de-0000-4000-8000-00000000a11c"
MAPPED = "3a99ed00-0000-4000-8000-0000000a99ed"
BRIDGE_TOKEN = "globus-it-bridge-token-5c1f"

def emulator_config(root: Path) -> dict[str, Any]:
    godata = {f"home/dev/share/godata/file{n}.txt": f"file{n}: tutorial data\n" * 50 for n in (1, 2, 3)}
    common = {"entity_type": "GCSv4_host", "home": "/home/dev/", "files": godata}
    return {
        "collections": [
            {"id": TUTORIAL_1, "display_name": "Globus Tutorial Collection 1", "root": str(root / "t1"), **common},
            {"id": TUTORIAL_2, "display_name": "Globus Tutorial Collection 2", "root": str(root / "t2"), **common},
            {"id": LOCAL, "display_name": "Orbit IT Local", "root": str(root / "local"), "entity_type": "GCP_mapped_collection", "local": True},
            {
                "id": MAPPED,
                "display_name": "Facility DTN (mapped)",
                "root": str(root / "mapped"),
                "entity_type": "GCSv5_mapped_collection",
                "requires_data_access": True,
                "files": {"data/x.txt": "x\n"},
            },
        ]
    }


class GlobusStack:
    """Emulator + bridge + endpoints (``ep-globus`` by default) under one temp root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.logs = root / "logs"
        self.emu_root = root / "emulator"
        for d in (self.home, self.logs, self.emu_root):
            d.mkdir(parents=True, exist_ok=True)
        self.emulator: ServiceProcess | None = None
        self.bridge: ServiceProcess | None = None
        self.endpoints: dict[str, ServiceProcess] = {}
        self._clients: list[BridgeClient] = []

    # -- processes ---------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = scrubbed_environ(self.home)
        if self.emulator is not None:
            env["GLOBUS_SDK_SERVICE_URL_TRANSFER"] = f"{self.emulator.url}/"
            env["GLOBUS_SDK_SERVICE_URL_AUTH"] = f"{self.emulator.url}/"
        env.update(extra)
        return env

    def start(self, *, endpoint: bool = True) -> GlobusStack:
        cfg = self.root / "emulator.json"
        cfg.write_text(json.dumps(emulator_config(self.emu_root)))
        self.emulator = procs.start_emulator(
            root=self.emu_root, args=["--config", str(cfg), "--retry-interval", "0.2"], env=self.env(), log_dir=self.logs
        )
        self.bridge = procs.start_bridge(token=BRIDGE_TOKEN, env=self.env(), log_dir=self.logs)
        if endpoint:
            self.add_endpoint("ep-globus", RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)
        return self

    def add_endpoint(self, name: str, *, home: Path | None = None, args: Sequence[str] = (), **env: str) -> ServiceProcess:
        """Start endpoint ``name`` (globus plugin) with ``args`` (``-o globus.KEY=VALUE``...) and ``env``."""
        assert self.bridge is not None
        penv = self.env(RADICAL_ORBIT_LOG_LEVEL="debug", **env)
        key = None
        if home is not None:  # not the bridge's HOME: enrolled as for a remote host
            penv["HOME"] = str(home)
            key = procs.enroll_endpoint(self.bridge, name)
        proc = procs.start_endpoint(name, self.bridge, key=key, plugins=["globus"], args=args, env=penv, log_dir=self.logs)
        self.endpoints[name] = proc
        return proc

    def stop_endpoint(self, name: str) -> None:
        proc = self.endpoints.pop(name)
        proc.stop()

    def kill_endpoint(self, name: str) -> None:
        """``kill -9`` the endpoint: no goodbye to the bridge, its sessions gone with it."""
        proc = self.endpoints.pop(name)
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(10)
        proc.stop()  # closes its log file

    def restart_endpoint(self, name: str = "ep-globus") -> ServiceProcess:
        """Start ``name`` again (same name, same HOME, same local collection), as after a crash."""
        return self.add_endpoint(name, RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)

    def stop(self) -> None:
        for bc in self._clients:
            with contextlib.suppress(Exception):
                bc.close()
        for name in list(self.endpoints):
            self.stop_endpoint(name)
        for proc in (self.bridge, self.emulator):
            if proc is not None:
                proc.stop()

    # -- clients -----------------------------------------------------------------
    def client(self, **kwargs: Any) -> BridgeClient:
        assert self.bridge is not None
        bc = BridgeClient(url=self.bridge.url, token=BRIDGE_TOKEN, **kwargs)
        self._clients.append(bc)
        return bc

    def globus(self, endpoint: str = "ep-globus", **session: Any) -> Any:
        """A GlobusClient on ``endpoint`` (session registered when kwargs are given)."""
        bc = self.client()
        return bc.get_endpoint_client(endpoint).get_plugin("globus", **session)

    # -- the emulator's admin API (plays "Globus Auth" for tests) ------------------
    def admin(self, method: str, path: str, **kw: Any) -> Any:
        assert self.emulator is not None
        resp = httpx.request(method, f"{self.emulator.url}/_emulator/{path}", timeout=10, **kw)
        resp.raise_for_status()
        return resp.json()

    def token(self, *, refresh: bool = False, lifetime: int | None = None, consents: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"refresh": refresh}
        if lifetime:
            body["lifetime"] = lifetime
        if consents:
            body["consents"] = consents
        return dict(self.admin("POST", "token", json=body))

    def new_client(self) -> dict[str, str]:
        return dict(self.admin("POST", "clients"))

    def faults(self, **settings: Any) -> Any:
        return self.admin("PATCH", "faults", json=settings)

    def path_fault(self, collection: str, path: str, kind: str = "permission", times: int | None = None) -> str:
        body: dict[str, Any] = {"collection": collection, "path": path, "kind": kind}
        if times:
            body["times"] = times
        return str(self.admin("POST", "faults/paths", json=body)["id"])

    def emulator_tasks(self, access_token: str) -> dict[str, dict[str, Any]]:
        """Every task of the token's user, by id, straight from the emulator (not through Orbit)."""
        assert self.emulator is not None
        resp = httpx.get(
            f"{self.emulator.url}/v0.10/task_list", params={"limit": 1000},
            headers={"Authorization": f"Bearer {access_token}"}, timeout=10,
        )
        resp.raise_for_status()
        return {t["task_id"]: t for t in resp.json()["DATA"]}

    def reset_faults(self) -> None:
        self.admin("DELETE", "faults")

    def write(self, collection_dir: str, rel: str, data: bytes) -> Path:
        path = self.emu_root / collection_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@contextlib.contextmanager
def globus_stack(root: Path, *, endpoint: bool = True) -> Iterator[GlobusStack]:
    stack = GlobusStack(root)
    try:
        stack.start(endpoint=endpoint)
        yield stack
    finally:
        stack.stop()


def unique_dir() -> str:
    return f"/it-{uuid.uuid4().hex[:8]}/"
