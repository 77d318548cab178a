"""The endpoint's key: where it is waited for, and what a refusal of it means.

An endpoint proves who it is to the bridge with an endpoint key (never a client
token), sent on the WebSocket upgrade request. The bridge refuses a bad one with an
HTTP status before the upgrade; :func:`key_refused` turns that status into the error
the endpoint stops with, saying what to run on the bridge host.
"""

from __future__ import annotations

import asyncio
import json
import logging

from websockets.exceptions import InvalidStatus

from ..errors import (
    AuthenticationError,
    ConflictError,
    OrbitError,
    PermissionDeniedError,
    UsageError,
)
from .settings import EndpointSettings

__all__ = ["ENROL_HINT", "FATAL_STATUSES", "bridge_says", "key_refused", "wait_for_key"]

log = logging.getLogger(__name__)

#: seconds between looks for the key file while there is none
KEY_POLL_INTERVAL = 0.25
#: what to do on the bridge host to get a key, for messages
ENROL_HINT = (
    "enrol this endpoint on the bridge host (radical-orbit bridge endpoints enroll {name}) and set "
    "RADICAL_ORBIT_ENDPOINT_KEY to the key it prints (or save it in a 0600 file for --key-file), "
    "or start the endpoint in the bridge's HOME"
)


async def wait_for_key(settings: EndpointSettings) -> tuple[str, str]:
    """The endpoint key and where it came from; waits while there is none yet.

    An endpoint started right after its bridge (``radical-orbit bridge & radical-orbit
    endpoint ...``) must not lose the race for the key file the bridge writes: it
    waits for it, and says once what it waits for.

    :raises UsageError: the key file is open to other users, or unusable
    """
    said = False
    while True:
        found = settings.load_key()
        if found is not None:
            if said:
                log.info("endpoint key found in %s", found[1])
            return found
        if not said:
            said = True
            unused = (
                f" A client token is configured ({settings.client_token_source}), but a client token cannot register an endpoint."
                if settings.client_token_source else ""
            )
            log.warning(
                "no endpoint key yet: waiting for %s (a bridge started in this HOME writes it).%s To connect to a bridge "
                "on another host, %s.",
                settings.key_path, unused, ENROL_HINT.format(name=settings.name),
            )
        await asyncio.sleep(KEY_POLL_INTERVAL)


def bridge_says(exc: InvalidStatus) -> str:
    """The message of the bridge's JSON refusal (empty if there is none)."""
    try:
        message = json.loads(exc.response.body or b"").get("message")
    except (ValueError, AttributeError):
        return ""
    return message if isinstance(message, str) else ""


def key_refused(settings: EndpointSettings, source: str, status: int, says: str) -> OrbitError:
    """The fatal error for an upgrade the bridge refused with ``status`` (never with the key in it)."""
    at = f"the bridge at {settings.url}"
    said = f" ({says})" if says else ""
    if status == 401:  # the bridge's own text says the same, without our name in the command
        return AuthenticationError(f"{at} does not accept this endpoint's key (from {source}): {ENROL_HINT.format(name=settings.name)}")
    if status == 403:
        return PermissionDeniedError(f"{at} refused this endpoint (key from {source}){said}")
    if status == 409:
        return ConflictError(f"{at} refused the name {settings.name!r}{said}")
    return UsageError(f"{at} refused the name {settings.name!r}{said}")


#: upgrade statuses that dialing again cannot change
FATAL_STATUSES = frozenset({400, 401, 403, 409})
