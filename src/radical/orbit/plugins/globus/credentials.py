"""From a ``register_session`` credential to a ``globus_sdk.TransferClient``.

The credential lives only in memory, inside the authorizer this module builds; the
session never sees the secret again. Which authorizer, per credential kind:

=======================================  ===========================================
access_token                             AccessTokenAuthorizer (never renewed)
refresh_token + client_id (+ secret)     RefreshTokenAuthorizer via a Native or a
                                         Confidential app client (renews itself)
client_id + client_secret                ClientCredentialsAuthorizer (renews itself)
=======================================  ===========================================
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import globus_sdk
from globus_sdk.authorizers import GlobusAuthorizer
from globus_sdk.transport import RetryCheckResult, RetryConfig, RetryContext

from . import models as m

log = logging.getLogger(__name__)

APP_NAME = "radical.orbit"


class Refreshes:
    """Counts access-token renewals of one session (the renewing authorizer's ``on_refresh``).

    Called on an executor thread with the token response; only the count is kept,
    never the token. The first token, fetched while the client is built, is no
    renewal: calls before :meth:`arm` are not counted.
    """

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.count = 0
        self._armed = False

    def arm(self) -> None:
        """From now on, a token the authorizer fetches is a renewal."""
        self._armed = True

    def __call__(self, _response: Any) -> None:
        if not self._armed:
            return
        self.count += 1
        log.info("globus session %s...: access token renewed (%d so far)", self.sid[:8], self.count)


def secrets_of(req: m.RegisterGlobusSession) -> tuple[str, ...]:
    """The secret strings of a credential (for :mod:`.redact`, which masks them in logs)."""
    values = (req.access_token, req.refresh_token, req.client_secret)
    return tuple(v.get_secret_value() for v in values if v is not None)


def retry_config(stop: threading.Event | None) -> RetryConfig:
    """The SDK's retry policy, except that nothing is retried once ``stop`` is set.

    A closed session (or a stopping endpoint) should not keep a worker thread in the
    SDK's retry loop for half a minute; the check is registered before the SDK's own,
    so it decides first.
    """
    config = RetryConfig()
    if stop is not None:

        def stop_retrying(ctx: RetryContext) -> RetryCheckResult:
            return RetryCheckResult.do_not_retry if stop.is_set() else RetryCheckResult.no_decision

        config.checks.register_check(stop_retrying)
    return config


def _authorizer(req: m.RegisterGlobusSession, on_refresh: Refreshes | None) -> GlobusAuthorizer:
    if req.access_token is not None:
        return globus_sdk.AccessTokenAuthorizer(req.access_token.get_secret_value())
    assert req.client_id is not None  # the register model insists on it for the other kinds
    if req.refresh_token is not None:
        auth_client: globus_sdk.AuthLoginClient
        if req.client_secret is not None:
            auth_client = globus_sdk.ConfidentialAppAuthClient(req.client_id, req.client_secret.get_secret_value(), app_name=APP_NAME)
        else:
            auth_client = globus_sdk.NativeAppAuthClient(req.client_id, app_name=APP_NAME)
        return globus_sdk.RefreshTokenAuthorizer(req.refresh_token.get_secret_value(), auth_client, on_refresh=on_refresh)
    assert req.client_secret is not None
    confidential = globus_sdk.ConfidentialAppAuthClient(req.client_id, req.client_secret.get_secret_value(), app_name=APP_NAME)
    return globus_sdk.ClientCredentialsAuthorizer(confidential, globus_sdk.TransferClient.scopes.all, on_refresh=on_refresh)


def build_transfer_client(
    req: m.RegisterGlobusSession,
    on_refresh: Refreshes | None = None,
    *,
    stop: threading.Event | None = None,
) -> globus_sdk.TransferClient:
    """A TransferClient bound to the credential in ``req`` (blocking: may fetch a token).

    Base URLs come from globus-sdk itself (``GLOBUS_SDK_SERVICE_URL_TRANSFER`` /
    ``..._AUTH``, or ``GLOBUS_SDK_ENVIRONMENT``). Once ``stop`` is set, failed calls
    are not retried.
    """
    return globus_sdk.TransferClient(authorizer=_authorizer(req, on_refresh), app_name=APP_NAME, retry_config=retry_config(stop))
