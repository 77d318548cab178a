"""``radical-orbit globus ...``: Globus staging from a terminal, through Orbit.

client (this CLI) -> bridge -> endpoint's ``globus`` plugin -> Globus (or the emulator).
The click group lives in :mod:`.group`; ``radical.orbit.cli.globus:globus`` re-exports it.
"""

from __future__ import annotations

from .group import globus

__all__ = ["globus"]
