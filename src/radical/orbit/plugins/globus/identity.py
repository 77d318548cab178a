"""Which Globus identity a session's credential acts as: what the task journal is keyed by.

Asked once per session, in the background after it opened (never delaying
``register_session``), with no retries: an answer that does not come is "unknown",
and a session of an unknown identity simply re-adopts nothing. In order:

1. Globus Auth's userinfo for the credential: ``sub`` and every id of its identity
   set (the emulator answers any token; Globus needs the ``openid`` scope);
2. else Transfer itself: the ``owner_id`` of the credential's newest task, which
   Transfer answers with a Transfer-only token (no task yet means nothing to re-adopt).

The credential stays in the session's authorizer; nothing here keeps or logs it.
"""

from __future__ import annotations

import logging

import globus_sdk
from globus_sdk.transport import RetryConfig

from .credentials import APP_NAME

__all__ = ["credential_identities"]

log = logging.getLogger(__name__)


def credential_identities(tc: globus_sdk.TransferClient, name: str = "globus session") -> list[str]:
    """The Globus identity ids the credential of ``tc`` acts as, its primary one first; [] if
    neither Globus Auth nor Transfer says (blocking: run it on an executor)."""
    try:
        with globus_sdk.AuthClient(authorizer=tc.authorizer, app_name=APP_NAME, retry_config=RetryConfig(max_retries=0)) as auth:
            info = auth.userinfo().data
    except globus_sdk.GlobusError as exc:
        log.debug("%s: userinfo does not name the identity (%s); asking Transfer", name, type(exc).__name__)
    else:
        ids = [info.get("sub")] + [doc.get("sub") or doc.get("id") for doc in info.get("identity_set") or [] if isinstance(doc, dict)]
        found = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        if found:
            return found
    try:
        docs = tc.task_list(limit=1, orderby="request_time DESC").data.get("DATA") or []
    except globus_sdk.GlobusError as exc:
        log.debug("%s: Transfer does not name the identity either (%s)", name, type(exc).__name__)
        return []
    owners = [doc.get("owner_id") for doc in docs if isinstance(doc, dict)]
    return [o for o in owners if isinstance(o, str) and o][:1]
