"""Translate globus-sdk exceptions into Orbit's error tree, once, at the edge.

::

    with map_globus_errors(auth_mode="access_token"):
        tc.operation_ls(collection)

=============================================  ====================================
globus-sdk                                     Orbit (HTTP status)
=============================================  ====================================
GlobusAPIError code ``ConsentRequired``        ConsentRequiredError (401), names
                                               ``required_scopes``
AuthAPIError (token grant / refresh failed),   GlobusAuthError (401); access tokens:
any 401                                        "re-register with a fresh token"
403                                            PermissionDeniedError (403)
404                                            NotFoundError (404)
429 (after the SDK's own retries)              RateLimitedError (429, ``retry_after``)
anything else                                  TransferError (502) with the Globus
                                               code, message and request id
NetworkError (connection, timeout)             UpstreamError (502)
GlobusSDKUsageError / ValueError from the SDK  UsageError (400)
=============================================  ====================================

Messages never contain credentials: they are built from Globus' own code, message
and request id (which never echo the token) and our wording.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import globus_sdk

from ...errors import (
    ConflictError,
    ConsentRequiredError,
    GlobusAuthError,
    NotFoundError,
    OrbitError,
    PermissionDeniedError,
    RateLimitedError,
    TransferError,
    UpstreamError,
    UsageError,
)

AUTH_ACCESS_TOKEN = "access_token"
AUTH_REFRESH_TOKEN = "refresh_token"
AUTH_CLIENT_CREDENTIALS = "client_credentials"

#: what to do when Globus rejects the credential, per auth mode
_AUTH_ADVICE = {
    AUTH_ACCESS_TOKEN: (
        "the Globus access token was rejected (expired or revoked; access tokens are not renewed): "
        "re-register with a fresh token"
    ),
    AUTH_REFRESH_TOKEN: (
        "the Globus refresh token was rejected by Globus Auth (revoked, expired or issued to another "
        "client id): obtain a new refresh token and re-register"
    ),
    AUTH_CLIENT_CREDENTIALS: (
        "Globus Auth rejected the client credentials (wrong client id/secret, or the client was "
        "deleted): check them and re-register"
    ),
}

CONSENT_HOWTO = (
    "re-acquire a token that carries these scopes (for example `globus session consent "
    "'<scope>'` with the Globus CLI, or a new login flow requesting them, such as "
    "login_start with these scopes) and call register_session again"
)


def _retry_after(err: globus_sdk.GlobusAPIError) -> float | None:
    try:
        value = err.headers.get("Retry-After")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _globus_details(err: globus_sdk.GlobusAPIError) -> dict[str, Any]:
    return {
        "globus_status": err.http_status,
        "globus_code": err.code,
        "globus_message": err.message,
        "globus_request_id": err.request_id,
    }


def translate(exc: BaseException, *, auth_mode: str | None = None, what: str = "") -> OrbitError | None:
    """The Orbit error for a globus-sdk exception, or None if it is not one of the SDK's.

    :param auth_mode: the session's credential kind, to give the right advice on 401
    :param what: the operation, prefixed to the message ("ls on <uuid>")
    """
    prefix = f"{what}: " if what else ""
    if isinstance(exc, globus_sdk.GlobusAPIError):
        details = _globus_details(exc)
        gmsg = exc.message or exc.http_reason or "no message"
        consent = exc.info.consent_required
        if consent or exc.code == "ConsentRequired":
            scopes = list(consent.required_scopes) if consent else []
            scope_txt = ", ".join(scopes) if scopes else "(Globus did not name them)"
            return ConsentRequiredError(
                f"{prefix}Globus requires consent for scopes {scope_txt}: {CONSENT_HOWTO}",
                required_scopes=scopes,
                **details,
            )
        if isinstance(exc, globus_sdk.AuthAPIError) and exc.http_status < 500:
            advice = _AUTH_ADVICE.get(auth_mode or "", "the Globus credential was rejected: re-register")
            return GlobusAuthError(f"{prefix}{advice} (Globus Auth said: {gmsg})", auth_mode=auth_mode, **details)
        status = exc.http_status
        if status == 401:
            advice = _AUTH_ADVICE.get(auth_mode or "", "the Globus credential was rejected: re-register")
            return GlobusAuthError(f"{prefix}{advice} (Globus said: {exc.code}: {gmsg})", auth_mode=auth_mode, **details)
        if status == 403:
            return PermissionDeniedError(f"{prefix}Globus denied permission ({exc.code}): {gmsg}", **details)
        if status == 404:
            return NotFoundError(f"{prefix}not found on Globus ({exc.code}): {gmsg}", **details)
        if status == 429:
            wait = _retry_after(exc)
            when = f"retry after {wait:g} s" if wait is not None else "retry later"
            return RateLimitedError(
                f"{prefix}Globus rate limit hit even after the SDK's retries: {when}",
                retry_after=wait,
                **details,
            )
        rid = f", request id {exc.request_id}" if exc.request_id else ""
        # no code: the answer was not Globus' JSON (a front end refusing an over-long request, a proxy)
        code = exc.code if exc.code and exc.code != "Error" else f"HTTP {status}, no Globus error code"
        if status in (400, 413, 414, 431) or (exc.code or "").endswith(".NotDirectory"):
            # Globus refused the request itself (a bad filter, path or option, or one too long), or
            # answered ls of a file with 502 ExternalError.DirListingFailed.NotDirectory: the caller's to fix
            hint = "" if exc.code and exc.code != "Error" else " (is a path, filter or list very long?)"
            return UsageError(f"{prefix}Globus rejected the request ({code}): {gmsg}{hint}{rid}", **details)
        if status == 409 or (exc.code or "").endswith(".Exists"):
            # Globus answers mkdir on an existing path with 502 ExternalError.MkdirFailed.Exists
            return ConflictError(f"{prefix}Globus reports a conflict ({code}): {gmsg}{rid}", **details)
        return TransferError(f"{prefix}Globus error {status} ({code}): {gmsg}{rid}", **details)
    if isinstance(exc, globus_sdk.NetworkError):
        kind = type(exc).__name__
        return UpstreamError(f"{prefix}could not reach Globus ({kind}); check the network and try again", network_error=kind)
    if isinstance(exc, globus_sdk.GlobusSDKUsageError):
        return UsageError(f"{prefix}{exc}")
    return None


@contextlib.contextmanager
def map_globus_errors(*, auth_mode: str | None = None, what: str = "") -> Iterator[None]:
    """Re-raise globus-sdk exceptions as the matching :class:`OrbitError` (``from`` the original)."""
    try:
        yield
    except OrbitError:
        raise
    except globus_sdk.GlobusError as exc:
        mapped = translate(exc, auth_mode=auth_mode, what=what)
        if mapped is None:
            raise UpstreamError(f"{what + ': ' if what else ''}unexpected Globus SDK error ({type(exc).__name__})") from exc
        raise mapped from exc
