"""The backplane seam: what a bridge replica shares with the others, if any.

One bridge process is complete on its own; the backplane is where it would talk to
its peers. Two implementations:

* :class:`~.local.LocalBackplane` (the default): nothing is shared. Every method is
  the in-process answer (no peers, nothing to forward, events go straight to the
  local hub), so a single bridge behaves, and costs, exactly as without a seam.
* :class:`~.redis_backplane.RedisBackplane` (``--redis URL``): replicas share the
  endpoint directory (leases with fencing), forward requests to the replica that
  holds an endpoint, publish events into one Redis Stream and share the identities.

The bridge calls the backplane from five places: the endpoint socket (claim and
release a name, publish events), the relay (forward, confirm a lease), ``/events``
(catch up before a resume), the token check (look for identities made a moment ago)
and ``/health``. The backplane calls back into the bridge through :class:`Hooks`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...models.messages import Response
from ..registry import EndpointConnection, Registry

__all__ = ["Backplane", "Hooks", "NotHere", "Numbered", "Publish"]

#: a numbered notification: (endpoint name folded, the endpoint's run, its number)
Numbered = tuple[str, str, int]


class NotHere(Exception):
    """A forwarded request's endpoint is not (or no longer) connected to this replica."""


class Publish(Protocol):
    """:meth:`~..events.EventHub.publish`'s signature and two more: how the endpoint socket
    raises an event.

    ``numbered`` (endpoint, run, seq) stores a numbered notification only when that
    endpoint's run has no number as high stored (else it is a resend); ``stored`` is called
    once it is stored, or found stored already: then the endpoint may be told so.
    """

    def __call__(
        self,
        kind: str,
        *,
        endpoint: str | None,
        plugin: str | None,
        topic: str | None,
        session: str | None,
        payload: dict[str, Any],
        owner: str | None = None,
        ts: float | None = None,
        extra: dict[str, Any] | None = None,
        numbered: Numbered | None = None,
        stored: Callable[[], None] | None = None,
    ) -> int: ...


@dataclass(slots=True)
class Hooks:
    """What a clustered backplane needs from its bridge.

    :param registry: the endpoints connected to this replica
    :param serve_forwarded: relay a request another replica forwarded to an endpoint
        connected here: ``(endpoint, plugin, request_id, frame_text, timeout, what)``
    :param replaced: close a connection whose name another replica took over (4009)
    :param identities_changed: apply a new identity snapshot (enforce revocations)
    """

    registry: Registry
    serve_forwarded: Callable[[str, str, str, str, float, str], Awaitable[Response]]
    replaced: Callable[[EndpointConnection, str], Awaitable[None]]
    identities_changed: Callable[[], Awaitable[None]]


class Backplane(ABC):
    """What a replica shares with its peers (see the module docstring)."""

    #: True when there are (or may be) other replicas
    clustered: bool = False
    #: this process's replica id (random per process); None when not clustered
    replica: str | None = None
    #: raise an event (the in-process hub's publish, or the stream's outbox)
    publish: Publish

    def bind(self, hooks: Hooks) -> None:
        """Give the backplane what it calls back into (before :meth:`start`)."""

    @abstractmethod
    async def start(self) -> None:
        """Begin sharing (connect, load, subscribe); never fails for an unreachable peer."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop sharing and release what this replica holds."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """The body of ``GET /health``."""

    # -- the endpoint directory ----------------------------------------------------------
    @abstractmethod
    async def claim(self, conn: EndpointConnection) -> None:
        """Make this replica the owner of ``conn.name`` (after the local registry took it).

        :raises ConflictError: another endpoint key holds the name cluster-wide
        """

    @abstractmethod
    def release(self, conn: EndpointConnection) -> None:
        """``conn`` is gone: give its name up (if this replica still holds it)."""

    @abstractmethod
    async def confirm(self, conn: EndpointConnection) -> bool:
        """Whether this replica still owns ``conn``'s name once its lease ran out locally;
        False: it lost the name (the connection was closed as replaced)."""

    @abstractmethod
    async def remote_endpoints(self) -> list[dict[str, Any]]:
        """Infos of the endpoints connected to other replicas."""

    @abstractmethod
    async def find(self, name: str) -> dict[str, Any] | None:
        """Info of an endpoint connected to another replica (None: none is)."""

    # -- forwarding --------------------------------------------------------------------
    @abstractmethod
    async def forward(self, endpoint: str, plugin: str, request_id: str, frame_text: str, timeout: float, what: str) -> Response:
        """Relay a request through the replica that holds ``endpoint``.

        :raises OrbitError: 404 no such endpoint anywhere, 503 no owner answers or the
            backplane is unreachable, 504 no answer in time, or what the owner refused
        """

    # -- events and identities ------------------------------------------------------------
    @abstractmethod
    async def catch_up(self, last_event_id: str | None) -> None:
        """Before a resume: make sure the local hub has read the stream up to now."""

    @abstractmethod
    async def sync_identities(self) -> bool:
        """Look for identity changes at once (a token or key not in the snapshot);
        True if the snapshot changed."""
