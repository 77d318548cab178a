"""The in-process backplane: one bridge, nothing shared (the default).

Every answer is the one a lone bridge gives: a name is the local registry's
business, there is no one to forward to, events go straight into the local hub
(:attr:`LocalBackplane.publish` *is* :meth:`EventHub.publish`, so the endpoint
socket's path has no extra step), identities are the file store's.
"""

from __future__ import annotations

from typing import Any

from ...errors import EndpointNotFoundError
from ...models.messages import Response
from ..events import EventHub
from ..registry import EndpointConnection
from .base import Backplane

__all__ = ["LocalBackplane"]


class LocalBackplane(Backplane):
    """No peers: see the module docstring."""

    clustered = False
    replica = None

    def __init__(self, hub: EventHub | None = None) -> None:
        self.publish = (hub if hub is not None else EventHub()).publish

    def __repr__(self) -> str:
        return "LocalBackplane()"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    async def claim(self, conn: EndpointConnection) -> None:
        return None

    def release(self, conn: EndpointConnection) -> None:
        return None

    async def confirm(self, conn: EndpointConnection) -> bool:
        return True

    async def remote_endpoints(self) -> list[dict[str, Any]]:
        return []

    async def find(self, name: str) -> dict[str, Any] | None:
        return None

    async def forward(self, endpoint: str, plugin: str, request_id: str, frame_text: str, timeout: float, what: str) -> Response:
        raise EndpointNotFoundError(f"no endpoint named '{endpoint}' is connected", endpoint=endpoint)

    async def catch_up(self, last_event_id: str | None) -> None:
        return None

    async def sync_identities(self) -> bool:
        return False
