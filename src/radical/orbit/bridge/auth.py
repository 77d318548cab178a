"""Bearer-token check, in constant time, straight on the ASGI scope (no Request object)."""

from __future__ import annotations

import hmac

from starlette.types import Scope

from ..errors import AuthenticationError
from .identity import ANONYMOUS, Identity

#: the identity of the bridge's one token (today's default: it may do everything)
DEFAULT_IDENTITY = Identity("admin", admin=True)


class TokenCheck:
    """``ok(scope)`` is True when the scope carries ``Authorization: Bearer <token>``.

    :param token: the bridge token, or None to accept everyone (``--no-auth``)
    """

    def __init__(self, token: str | None) -> None:
        self._token = token.encode("utf-8") if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:
        return f"TokenCheck(enabled={self.enabled})"

    def ok(self, scope: Scope) -> bool:
        return self.identify(scope) is not None

    def identify(self, scope: Scope) -> Identity | None:
        """The identity the scope's bearer token stands for, or None (refuse it)."""
        if self._token is None:
            return ANONYMOUS
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, presented = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return None
                return DEFAULT_IDENTITY if hmac.compare_digest(presented.strip(), self._token) else None
        return None

    @staticmethod
    def error() -> AuthenticationError:
        return AuthenticationError(
            "missing or wrong bridge token: send 'Authorization: Bearer <token>' "
            "(the bridge stores its token in ~/.radical/orbit/bridge.token)"
        )
