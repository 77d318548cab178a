"""The stack the Explorer's browser tests (and the screenshot script) drive: the Globus
emulator, a bridge and an endpoint ``ep1`` hosting ``globus`` and ``sysinfo``, each a
real ``radical-orbit`` process on 127.0.0.1, started as a user starts them.

The emulator serves the two tutorial collections, a local collection with a folder
tree to stage, a collection whose display name is HTML (it must show as text), and a
mapped collection that requires ``data_access`` consent.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import ServiceProcess

TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
TUTORIAL_2 = "31ce9ba0-176d-45a5-add3-f37d233ba47d"
LOCAL = "0a11c0de-0000-4000-8000-0000000b10c1"
HOSTILE = "0badc0de-0000-4000-8000-00000000b0b0"
MAPPED = "3a99ed00-0000-4000-8000-0000000b99ed"
BRIDGE_TOKEN = "explorer-browser-bridge-token-9d2e"
ENDPOINT = "ep1"
#: a name that is markup: it must reach the page as text, never run
HTML_NAME = '<img src=x onerror="document.body.dataset.pwned=1">pwned<b>bold'  # no "/": a file name
HOSTILE_NAME = '<script>document.body.dataset.pwned=1</script><i>Evil</i> "collection"'


def emulator_config(root: Path) -> dict[str, Any]:
    godata = {f"home/dev/share/godata/file{n}.txt": f"file{n}: tutorial data\n" * 40 for n in (1, 2, 3)}
    common = {"entity_type": "GCSv4_host", "home": "/home/dev/", "files": godata}
    run = {f"home/dev/runs/run-42/part-{n:02d}.dat": "x" * 200_000 for n in range(6)}
    run["home/dev/runs/run-42/notes/README.txt"] = "inputs of run 42\n"
    run["home/dev/inbox/keep.txt"] = "keep\n"
    return {
        "collections": [
            {"id": TUTORIAL_1, "display_name": "Globus Tutorial Collection 1", "root": str(root / "t1"), **common},
            {"id": TUTORIAL_2, "display_name": "Globus Tutorial Collection 2", "root": str(root / "t2"), **common},
            {
                "id": LOCAL,
                "display_name": "Orbit Lab DTN",
                "root": str(root / "local"),
                "entity_type": "GCP_mapped_collection",
                "home": "/home/dev/",
                "local": True,
                "files": run,
                # slow enough that a transfer is seen ACTIVE with progress
                "bandwidth": 400_000,
            },
            {
                "id": HOSTILE,
                "display_name": HOSTILE_NAME,
                "root": str(root / "hostile"),
                "entity_type": "GCSv4_host",
                "home": "/home/dev/",
                "files": {f"home/dev/{HTML_NAME}": "markup in a file name\n"},
            },
            {
                "id": MAPPED,
                "display_name": "Facility Archive (mapped)",
                "root": str(root / "mapped"),
                "entity_type": "GCSv5_mapped_collection",
                "requires_data_access": True,
                "home": "/home/dev/",
                "files": {"home/dev/archive/x.txt": "x\n"},
            },
        ]
    }


class ExplorerStack:
    """Emulator + bridge + ``ep1`` under one temp root, and what tests ask of them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.logs = root / "logs"
        self.emu_root = root / "collections"
        for d in (self.home, self.logs, self.emu_root):
            d.mkdir(parents=True, exist_ok=True)
        self.emulator: ServiceProcess | None = None
        self.bridge: ServiceProcess | None = None
        self.endpoints: dict[str, ServiceProcess] = {}
        self._clients: list[BridgeClient] = []

    # -- processes -------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = scrubbed_environ(self.home)
        if self.emulator is not None:
            env["GLOBUS_SDK_SERVICE_URL_TRANSFER"] = f"{self.emulator.url}/"
            env["GLOBUS_SDK_SERVICE_URL_AUTH"] = f"{self.emulator.url}/"
        env.update(extra)
        return env

    def start(self) -> ExplorerStack:
        cfg = self.root / "emulator.json"
        cfg.write_text(json.dumps(emulator_config(self.emu_root)), encoding="utf-8")
        self.emulator = procs.start_emulator(
            root=self.emu_root, args=["--config", str(cfg), "--retry-interval", "0.3"], env=self.env(), log_dir=self.logs
        )
        self.bridge = procs.start_bridge(token=BRIDGE_TOKEN, env=self.env(), log_dir=self.logs)
        self.add_endpoint(ENDPOINT)
        return self

    def add_endpoint(self, name: str, plugins: tuple[str, ...] = ("globus", "sysinfo")) -> ServiceProcess:
        assert self.bridge is not None
        proc = procs.start_endpoint(
            name,
            self.bridge,
            plugins=list(plugins),
            args=["-o", "globus.min_interval=0.5", "-o", "globus.max_interval=2"] if "globus" in plugins else [],
            env=self.env(RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL),
            log_dir=self.logs,
        )
        self.endpoints[name] = proc
        return proc

    def stop_endpoint(self, name: str) -> None:
        self.endpoints.pop(name).stop()

    def stop(self) -> None:
        for bc in self._clients:
            with contextlib.suppress(Exception):
                bc.close()
        for name in list(self.endpoints):
            self.stop_endpoint(name)
        for proc in (self.bridge, self.emulator):
            if proc is not None:
                proc.stop()

    def logs_tail(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} -----\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- the bridge ------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.bridge is not None and self.bridge.url
        return self.bridge.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {BRIDGE_TOKEN}"}

    def signin_url(self) -> str:
        """A fresh one-time sign-in link, as ``radical-orbit explorer`` gets it."""
        resp = httpx.post(f"{self.url}/ui/api/signin-link", headers=self.headers, timeout=10)
        resp.raise_for_status()
        return str(resp.json()["url"])

    def globus(self, **session: Any) -> Any:
        """A GlobusClient on ep1 for the same identity as the page (session when kwargs given)."""
        bc = BridgeClient(url=self.url, token=BRIDGE_TOKEN)
        self._clients.append(bc)
        return bc.get_endpoint_client(ENDPOINT).get_plugin("globus", **session)

    def relay(self, route: str, body: dict[str, Any]) -> Any:
        resp = httpx.post(f"{self.url}/{ENDPOINT}/globus/{route}", json=body, headers=self.headers, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def drop_globus_sessions(self) -> None:
        """Close every Globus session of the identity on ep1: the page starts unconnected."""
        for session in self.relay("sessions", {}).get("sessions", []):
            self.relay("unregister_session", {"sid": session["sid"]})

    # -- the emulator (plays Globus) -----------------------------------------------------
    def admin(self, method: str, path: str, **kw: Any) -> Any:
        assert self.emulator is not None
        resp = httpx.request(method, f"{self.emulator.url}/_emulator/{path}", timeout=10, **kw)
        resp.raise_for_status()
        return resp.json()

    def token(self, *, refresh: bool = False) -> dict[str, Any]:
        return dict(self.admin("POST", "token", json={"refresh": refresh}))

    def new_client(self) -> dict[str, str]:
        return dict(self.admin("POST", "clients"))

    def path_fault(self, collection: str, path: str, kind: str = "permission") -> str:
        return str(self.admin("POST", "faults/paths", json={"collection": collection, "path": path, "kind": kind})["id"])

    def clear_path_fault(self, fault_id: str) -> None:
        assert self.emulator is not None
        httpx.delete(f"{self.emulator.url}/_emulator/faults/paths/{fault_id}", timeout=10).raise_for_status()

    def collection_dir(self, name: str) -> Path:
        return self.emu_root / name

    def wait_file(self, path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not appear within {timeout} s")
            time.sleep(0.05)


@contextlib.contextmanager
def explorer_stack(root: Path) -> Iterator[ExplorerStack]:
    stack = ExplorerStack(root)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
