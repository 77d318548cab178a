"""``radical-orbit globus``: the click group (implemented in :mod:`.globus_cmds`)."""

from __future__ import annotations

from .globus_cmds import globus

__all__ = ["globus"]
