"""Where the bridge's token comes from: ``--token`` > environment > file > generated.

Shared by ``radical-orbit bridge`` and the demo's ``--serve`` mode, so both resolve
(and if need be generate) the token the same way.
"""

from __future__ import annotations

import os
import secrets

from ..config import (
    BRIDGE_TOKEN_FILE,
    ENV_BRIDGE_TOKEN,
    orbit_home,
    read_private_file,
    write_private_file,
)
from ..errors import UsageError

__all__ = ["check_server_token", "resolve_server_token"]


def check_server_token(token: str, source: str) -> tuple[str, str]:
    """Refuse a token no client could present, without showing it.

    Clients send it in an HTTP header and accept printable ASCII only, and the bridge
    strips the presented token, so a bridge started with anything else (or with a
    space) would turn every client away.
    """
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise UsageError(
            f"the bridge token from {source} must be printable ASCII without spaces "
            "(as generated ones are): fix it, or remove it to have a new one generated"
        )
    return token, source


def resolve_server_token(token: str | None) -> tuple[str, str]:
    """The bridge token and where it came from: ``--token`` > env > file > generated.

    A generated token is written to ``~/.radical/orbit/bridge.token`` (0600) so that
    clients on this machine find it. The token itself is never shown.

    :raises UsageError: the token is unusable, or its file is open to other users
    """
    if token:
        return check_server_token(token, "--token")
    env = os.environ.get(ENV_BRIDGE_TOKEN)
    if env:
        return check_server_token(env, f"${ENV_BRIDGE_TOKEN}")
    path = orbit_home() / BRIDGE_TOKEN_FILE
    existing = read_private_file(path)  # refuses a file other users may read
    if existing:
        return check_server_token(existing, str(path))
    generated = secrets.token_urlsafe(32)
    written = write_private_file(BRIDGE_TOKEN_FILE, generated + "\n")
    return generated, f"{written} (new)"
