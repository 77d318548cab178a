"""The emulator's shared state, one object per app: collections, auth, faults, tasks."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...__about__ import __version__
from .collections import CollectionRegistry, CollectionSpec, default_specs
from .faults import FaultSettings, FaultState
from .settings import EmulatorSettings
from .state import AuthState
from .tasks import TaskEngine

__all__ = ["Emulator"]


class Emulator:
    """Everything one running emulator holds; ``app.state.emulator``."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        cfg = settings.load_config_file()
        if settings.root is None and settings.state_dir is not None:
            settings.root = Path(settings.state_dir) / "collections"  # restarts find the same data and ids
            self.temp_root = False
        elif settings.root is None:
            settings.root = Path(tempfile.mkdtemp(prefix="globus-emulator-"))
            self.temp_root = True
        else:
            self.temp_root = False
        root = Path(settings.root)
        root.mkdir(parents=True, exist_ok=True)
        raw = settings.collections if settings.collections is not None else cfg.get("collections")
        specs = [CollectionSpec.model_validate(c) for c in raw] if raw is not None else default_specs(root)
        self.collections = CollectionRegistry(specs, root)
        if settings.state_dir is not None:
            Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        self.auth = AuthState(settings.token_lifetime, settings.native_client_id, settings.state_dir)
        client = settings.generated_client()
        self.auth.add_client(client.client_id, client.client_secret)
        for spec in list(settings.clients) + [c for c in cfg.get("clients", [])]:
            cid = spec["client_id"] if isinstance(spec, dict) else spec.client_id
            sec = spec["client_secret"] if isinstance(spec, dict) else spec.client_secret
            self.auth.add_client(cid, sec)
        fault_cfg = settings.faults if settings.faults is not None else cfg.get("faults")
        self.faults = FaultState(FaultSettings.model_validate(fault_cfg) if fault_cfg else None)
        self.engine = TaskEngine(
            self.collections,
            self.faults,
            state_dir=Path(settings.state_dir) if settings.state_dir else None,
            retry_interval=settings.retry_interval,
            max_active_transfers=settings.max_active_transfers,
            max_active_deletes=settings.max_active_deletes,
        )

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "service": "globus-emulator",
            "version": __version__,
            "local_collection": self.collections.local_id,
            "collections": self.collections.summary(),
            "root": str(self.settings.root),
            "native_client_id": self.settings.native_client_id,
            "tasks": len(self.engine.tasks),
        }

    def close(self) -> None:
        """Stop the task threads, save state; remove the collections root if it was a temp dir."""
        self.engine.stop()
        if self.temp_root and self.settings.root is not None:
            shutil.rmtree(self.settings.root, ignore_errors=True)
            self.temp_root = False
