"""The bridge: the hub endpoints dial and clients call (``radical-orbit bridge``).

It imports no plugin: it learns what each endpoint offers from its ``register`` frame.
"""

from __future__ import annotations

from .app import BridgeApp, create_app
from .settings import BridgeSettings

__all__ = ["BridgeApp", "BridgeSettings", "create_app"]
