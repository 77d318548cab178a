"""The emulator's shared state, one object per app: collections, auth, faults, tasks.

The emulator stands on its own: of Orbit it imports only the error tree (``errors``,
for its validation messages), so it can be read, run and tested without the rest.
"""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from ...errors import describe_validation_errors
from .collections import CollectionRegistry, CollectionSpec, default_specs
from .engine import TaskEngine
from .faults import FaultSettings, FaultState
from .logins import Logins
from .settings import ClientSpec, EmulatorSettings
from .state import AuthState

__all__ = ["ConfigError", "ConfigFile", "Emulator", "emulator_of", "read_config"]

#: the distribution this package ships in (the top two name parts): its version is read
#: from the installed metadata, so no module of it is imported for it
DISTRIBUTION = ".".join(__name__.split(".")[:2])


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class ConfigError(ValueError):
    """The ``--config`` file cannot be used; the message names the file and the field."""


class ConfigFile(BaseModel):
    """The ``--config`` JSON file: every key checked, unknown ones refused (a typo would
    otherwise be silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    collections: list[CollectionSpec] | None = None
    clients: list[ClientSpec] = Field(default_factory=list)
    faults: FaultSettings | None = None


#: the largest ``--config`` file read (collections with seed files included, far more than
#: any needs): a device such as /dev/zero is refused at this size instead of filling memory
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def read_config(path: str | Path) -> ConfigFile:
    """Parse and check ``path``, before anything (a temp dir, a socket) is made.

    :raises ConfigError: the file is not a regular file, cannot be read, is larger than
        :data:`MAX_CONFIG_BYTES`, or is not a valid config (naming the file and what is wrong)
    """
    file = Path(path)
    try:
        if not stat.S_ISREG(file.stat().st_mode):  # before opening it: a FIFO would block the open
            raise ConfigError(f"{path}: not a regular file (a device, pipe or socket); give a JSON file")
        with file.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB, the most a config file may hold; give the right file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a JSON object with 'collections', 'clients' and/or 'faults'")
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        message, _ = describe_validation_errors(exc.errors())
        raise ConfigError(f"{path}: {message.removeprefix('invalid request: ')}") from None


class Emulator:
    """Everything one running emulator holds; ``app.state.emulator``."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        cfg = read_config(settings.config) if settings.config is not None else ConfigFile()
        root_from = "--root"
        if settings.root is None and settings.state_dir is not None:
            settings.root = Path(settings.state_dir) / "collections"  # restarts find the same data and ids
            self.temp_root = False
            root_from = "--state-dir"  # (its collections/ folder)
        elif settings.root is None:
            settings.root = Path(tempfile.mkdtemp(prefix="globus-emulator-"))
            self.temp_root = True
        else:
            self.temp_root = False
        try:
            self._build(settings, cfg, Path(settings.root), root_from)
        except BaseException:
            self.close()  # a start that failed leaves no temporary root behind
            raise

    def _build(self, settings: EmulatorSettings, cfg: ConfigFile, root: Path, root_from: str) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"the collections root {str(root)!r} cannot be made a directory ({exc.strerror}); give another {root_from}") from None
        if settings.collections is not None:
            specs = [CollectionSpec.model_validate(c) for c in settings.collections]
        else:
            specs = cfg.collections if cfg.collections is not None else default_specs(root)
        self.collections = CollectionRegistry(specs, root)
        if settings.state_dir is not None:
            try:
                Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"the state dir {str(settings.state_dir)!r} cannot be made a directory ({exc.strerror}); give another --state-dir") from None
        self.auth = AuthState(settings.token_lifetime, settings.native_client_id, settings.state_dir)
        client = settings.generated_client()
        self.auth.add_client(client.client_id, client.client_secret)
        for spec in [*settings.clients, *cfg.clients]:
            self.auth.add_client(spec.client_id, spec.client_secret)
        self.logins = Logins(settings.auth_code_lifetime, settings.auto_approve_login)
        if settings.faults is not None:
            faults = FaultSettings.model_validate(settings.faults) if settings.faults else None
        else:
            faults = cfg.faults
        self.faults = FaultState(faults)
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
            "version": _version(),
            "local_collection": self.collections.local_id,
            "collections": self.collections.summary(),
            "root": str(self.settings.root),
            "native_client_id": self.settings.native_client_id,
            "tasks": len(self.engine.tasks),
        }

    def close(self) -> None:
        """Stop the task threads, save state; remove the collections root if it was a temp dir."""
        engine = getattr(self, "engine", None)  # None: the start failed before it
        if engine is not None:
            engine.stop()
        if self.temp_root and self.settings.root is not None:
            shutil.rmtree(self.settings.root, ignore_errors=True)
            self.temp_root = False


def emulator_of(request: Request) -> Emulator:
    """The emulator serving ``request`` (``app.state.emulator``, set by ``create_app``)."""
    em: Emulator = request.app.state.emulator
    return em
