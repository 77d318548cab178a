"""The client SDK: :class:`BridgeClient`, :class:`EndpointClient`, :class:`PluginClient`.

Importable from here as the original Orbit's scripts do
(``from radical.orbit.client import BridgeClient``), and from ``radical.orbit``.
"""

from __future__ import annotations

from .bridge import BridgeClient
from .endpoint import EndpointClient
from .plugin import PluginClient

__all__ = ["BridgeClient", "EndpointClient", "PluginClient"]
