"""The in-process backplane: one bridge, nothing shared (the default).

Every answer is the one a lone bridge gives: a name is the local registry's
business, there is no one to forward to, events go straight into the local hub
(:meth:`LocalBackplane.publish` adds only the check that a numbered notification is
not a resend), identities are the file store's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import EndpointNotFoundError
from ...models.messages import Response
from ..events import EventHub
from ..registry import EndpointConnection
from .base import Backplane, Numbered

__all__ = ["LocalBackplane"]


class LocalBackplane(Backplane):
    """No peers: see the module docstring."""

    clustered = False
    replica = None

    def __init__(self, hub: EventHub | None = None) -> None:
        self.hub = hub if hub is not None else EventHub()
        #: per endpoint (folded name): the run and number of its last stored notification
        self._numbers: dict[str, tuple[str, int]] = {}
        self.publish = self._publish

    def _publish(self, kind: str, *, numbered: Numbered | None = None, stored: Callable[[], None] | None = None, **event: Any) -> int:
        """:class:`~.base.Publish`: ``event`` into the hub, unless it is a resend of a stored one."""
        visited = 0
        if numbered is None or not self._stored_already(*numbered):
            visited = self.hub.publish(kind, **event)
        if stored is not None:
            stored()
        return visited

    def _stored_already(self, key: str, run: str, seq: int) -> bool:
        """Whether ``key``'s run stored a number as high; else ``seq`` is recorded as stored."""
        last = self._numbers.get(key)
        if last is not None and last[0] == run and seq <= last[1]:
            return True
        self._numbers[key] = (run, seq)
        return False

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
