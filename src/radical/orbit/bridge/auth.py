"""Bearer-token check, in constant time, straight on the ASGI scope (no Request object)."""

from __future__ import annotations

import hmac

from starlette.types import Scope

from ..errors import AuthenticationError


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
        if self._token is None:
            return True
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, presented = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                return hmac.compare_digest(presented.strip(), self._token)
        return False

    @staticmethod
    def error() -> AuthenticationError:
        return AuthenticationError(
            "missing or wrong bridge token: send 'Authorization: Bearer <token>' "
            "(the bridge stores its token in ~/.radical/orbit/bridge.token)"
        )
