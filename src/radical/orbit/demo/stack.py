"""The demo's stack: the Globus emulator, a bridge and an endpoint as real processes.

Started exactly as a user would start them (``radical-orbit emulator|bridge|endpoint``),
on free loopback ports, with logs in ``<workdir>/logs``; stopped on exit or Ctrl-C.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .. import testing as procs

ENDPOINT_NAME = "demo-dtn"


@dataclass
class DemoStack:
    """Handles on the three running services.

    :param workdir: holds ``collections/`` (the emulator's disk) and ``logs/``
    :param home: HOME of the services (``None``: the user's own, for ``--serve``)
    """

    workdir: Path
    home: Path | None
    emulator: procs.ServiceProcess | None = None
    bridge: procs.ServiceProcess | None = None
    endpoint: procs.ServiceProcess | None = None
    emulator_info: dict[str, Any] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def collections_root(self) -> Path:
        return self.workdir / "collections"

    @property
    def bridge_url(self) -> str:
        assert self.bridge is not None and self.bridge.url
        return self.bridge.url

    @property
    def bridge_token(self) -> str:
        assert self.bridge is not None and self.bridge.token
        return self.bridge.token

    @property
    def emulator_url(self) -> str:
        assert self.emulator is not None and self.emulator.url
        return self.emulator.url

    @property
    def local_collection(self) -> str:
        return str(self.emulator_info["local_collection"])

    def collection_root(self, collection_id: str) -> Path:
        """On-disk folder of an emulated collection (the demo seeds and checks data there)."""
        for coll in self.emulator_info.get("collections", []):
            if coll.get("id") == collection_id:
                return Path(coll["root"])
        raise KeyError(f"the emulator has no collection {collection_id}")

    def _bridge_token(self) -> str:
        if self.home is not None:
            return secrets.token_urlsafe(32)
        # --serve: the bridge a user's other shell finds through ~/.radical/orbit,
        # resolved exactly as `radical-orbit bridge` resolves its token
        from ..bridge.token_file import resolve_server_token

        return resolve_server_token(None)[0]

    def start(self, *, bridge_port: int | None = None, emulator_port: int | None = None) -> None:
        """Start emulator, bridge and endpoint; each must answer before the next starts."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.collections_root.mkdir(parents=True, exist_ok=True)
        common: dict[str, Any] = {"home": self.home, "log_dir": self.log_dir}
        self.emulator = procs.start_emulator(port=emulator_port, root=self.collections_root, **common)
        self.emulator_info = httpx.get(f"{self.emulator_url}/health", timeout=10).json()
        self.bridge = procs.start_bridge(port=bridge_port, token=self._bridge_token(), **common)
        env = procs.env_with_home(None, self.home)
        root = self.emulator_url + "/"
        env.update(
            {
                # how globus-sdk (inside the endpoint) is pointed at the emulator
                "GLOBUS_SDK_SERVICE_URL_TRANSFER": root,
                "GLOBUS_SDK_SERVICE_URL_AUTH": root,
                # step 1 of the plugin's local collection discovery
                "RADICAL_ORBIT_GLOBUS_COLLECTION": self.local_collection,
            }
        )
        self.endpoint = procs.start_endpoint(
            ENDPOINT_NAME, self.bridge, plugins=["globus", "sysinfo"], env=env, log_dir=self.log_dir
        )

    def api_calls(self) -> int:
        """Globus API requests the emulator has served (its per-route counters)."""
        try:
            data = httpx.get(f"{self.emulator_url}/_emulator/counters", timeout=10).json()
        except httpx.HTTPError:
            return -1
        counters = data.get("counters", {})
        total = 0
        for key, value in counters.items():
            # keys look like "GET /v0.10/task/{id}"; count Transfer and Auth API calls only
            if (" /v0.10/" in key or " /v2/" in key) and isinstance(value, int | float):
                total += int(value)
        return total

    def set_bandwidth(self, collection_id: str, bytes_per_second: float) -> None:
        httpx.patch(
            f"{self.emulator_url}/_emulator/faults",
            json={"bandwidth": {collection_id: bytes_per_second}},
            timeout=10,
        ).raise_for_status()

    def add_path_fault(self, collection_id: str, path: str, kind: str) -> None:
        """Make task work on ``path`` (a subtree) of a collection hit a fault."""
        httpx.post(
            f"{self.emulator_url}/_emulator/faults/paths",
            json={"collection": collection_id, "path": path, "kind": kind},
            timeout=10,
        ).raise_for_status()

    def stop(self) -> None:
        for proc in (self.endpoint, self.bridge, self.emulator):
            if proc is not None:
                proc.stop()
