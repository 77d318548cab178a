"""Who calls the globus plugin: the identity the bridge names in ``x-orbit-identity``.

The bridge sets that header on every relayed request (after dropping a client's own),
so the plugin can tell whose sessions a request may see (the ``sessions`` route) and
whose browser login it finishes. :class:`CallerFromHeader` wraps the plugin's app and
makes the header's value :func:`caller_identity` while a request is answered.

When the plugin framework itself carries the caller for every plugin (issue 13,
part C: ``plugins.caller.current_identity``), :func:`caller_identity` becomes that
and the wrapper goes; nothing else here changes.
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from ...models.messages import IDENTITY_HEADER

__all__ = ["CallerFromHeader", "caller_identity"]

_HEADER = IDENTITY_HEADER.encode("ascii")
_CALLER: ContextVar[str | None] = ContextVar("radical.orbit.globus.caller", default=None)


def caller_identity() -> str | None:
    """The identity of the request being answered (None: no bridge named one, e.g. a unit test)."""
    return _CALLER.get()


class CallerFromHeader:
    """ASGI middleware: the request's ``x-orbit-identity`` is the caller while it is answered.

    The bridge appends its header last, so the last one counts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name: str | None = None
        for key, value in scope["headers"]:
            if key == _HEADER:
                name = value.decode("latin-1")
        token = _CALLER.set(name)
        try:
            await self.app(scope, receive, send)
        finally:
            _CALLER.reset(token)
