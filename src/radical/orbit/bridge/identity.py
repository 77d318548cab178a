"""Who is calling: the identity a bridge token stands for.

Every request the bridge accepts carries one :class:`Identity` in its ASGI scope
(``scope[SCOPE_KEY]``), put there by the token check in ``BridgeApp``. The relay hands
its name to the endpoint in the ``x-orbit-identity`` header
(:data:`~radical.orbit.models.messages.IDENTITY_HEADER`), so plugin sessions belong to
whoever opened them; ``/events`` shows an identity only its own sessions' events.
An admin identity sees everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

__all__ = ["ANONYMOUS", "SCOPE_KEY", "Identity", "identity_of"]

#: where the bridge keeps the caller's identity in an ASGI scope
SCOPE_KEY = "radical.orbit.identity"


@dataclass(frozen=True, slots=True)
class Identity:
    """A client identity.

    :param name: unique, shown in logs and to endpoints (never a secret)
    :param admin: sees every identity's events and may use the operator routes
    """

    name: str
    admin: bool = False

    def sees(self, owner: str | None) -> bool:
        """Whether an event owned by ``owner`` (None: nobody's, e.g. topology) is for us."""
        return owner is None or self.admin or owner == self.name


#: every caller of a bridge started with ``--no-auth``: one identity that sees all
ANONYMOUS = Identity("anonymous", admin=True)


def identity_of(scope: Scope) -> Identity:
    """The identity the token check put into ``scope`` (a bug if there is none)."""
    found = scope.get(SCOPE_KEY)
    if isinstance(found, Identity):
        return found
    raise LookupError("no identity in this scope: it did not pass the bridge's token check")
