"""Who is calling a plugin: the identity the bridge names in each relayed request.

The bridge puts the caller's identity (the name its token stands for) into the
``x-orbit-identity`` header of every request it relays, after dropping any header of
that name the client sent. The endpoint's dispatcher makes that name the current
identity while the plugin answers (:func:`calling_as`); plugin code reads it with
:func:`current_identity` to know whose session it may touch.

A request without the header (a plugin app called directly, as unit tests do) runs
as ``None``: one identity of its own, not "anyone".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from ..models.messages import IDENTITY_HEADER

__all__ = ["calling_as", "current_identity", "identity_in"]

_CALLER: ContextVar[str | None] = ContextVar("radical.orbit.caller", default=None)


def current_identity() -> str | None:
    """The identity of the request being answered (None: no bridge named one)."""
    return _CALLER.get()


@contextlib.contextmanager
def calling_as(identity: str | None) -> Iterator[None]:
    """Make ``identity`` the current one inside the ``with`` block (this task only)."""
    token = _CALLER.set(identity)
    try:
        yield
    finally:
        _CALLER.reset(token)


def identity_in(headers: Sequence[tuple[str, str]]) -> str | None:
    """The identity a relayed request's headers name, or None.

    The bridge appends its header last, so the search runs from the end; only the
    bridge's value counts (it drops a client's own before relaying).
    """
    for key, value in reversed(headers):
        if len(key) == len(IDENTITY_HEADER) and key.lower() == IDENTITY_HEADER:
            return value
    return None
