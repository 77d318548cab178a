"""Helpers shared by the emulator unit tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from radical.orbit.emulators.globus import RunningEmulator


def root_of(emu: RunningEmulator, collection_id: str) -> Path:
    coll = emu.emulator.collections.get(collection_id)
    assert coll is not None
    return Path(coll.root)


def make_tree(base: Path, spec: dict[str, Any]) -> None:
    """Create files (str/bytes values) and directories (dict values) under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        path = base / name
        if isinstance(value, dict):
            make_tree(path, value)
        elif isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(value)




def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
