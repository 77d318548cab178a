"""The backplane seam (:mod:`.base`): in-process by default (:mod:`.local`), or Redis
(:mod:`.redis_backplane`, imported only when the bridge is given ``--redis``)."""

from __future__ import annotations

from .base import Backplane, Hooks, Publish
from .local import LocalBackplane

__all__ = ["Backplane", "Hooks", "LocalBackplane", "Publish"]
