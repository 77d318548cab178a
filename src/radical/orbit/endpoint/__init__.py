"""The endpoint agent: dials the bridge, hosts plugins, answers relayed requests.

    settings = EndpointSettings.resolve(name="laptop", plugins="sysinfo")
    asyncio.run(EndpointAgent(settings).run(handle_signals=True))

``radical-orbit endpoint`` does exactly this. Endpoint side only: the client SDK
never imports this package.
"""

from __future__ import annotations

from .agent import Backoff, EndpointAgent
from .settings import EndpointSettings

__all__ = ["Backoff", "EndpointAgent", "EndpointSettings"]
