"""The one exception tree of radical.orbit, shared by bridge, endpoint, plugins and SDK.

Every class carries the HTTP status it maps to and a stable ``code`` string. Servers
render any :class:`OrbitError` as ``{"code", "message", "details", "request_id"}``
with ``status_code``; the client SDK reads ``code`` back and raises the same class
(:func:`error_from_payload`), so a caller catches the same name on both sides.

Every class is also a ``RuntimeError``: the original Orbit raised ``RuntimeError`` for
every failed call, and its users' scripts say ``except RuntimeError`` (docs/compat.md).
An error rebuilt from an HTTP answer reads as the original's did, ``HTTP <status> — ``
first, then our message (which names ``endpoint/plugin/route``); ``.message`` is ours
alone::

    OrbitError (500 internal_error, also RuntimeError)
     ├─ UsageError (400 bad_request, also ValueError)
     │   └─ ValidationError (422 validation_error)
     ├─ AuthenticationError (401 unauthorized)
     │   ├─ GlobusAuthError (401 globus_auth_failed)
     │   └─ ConsentRequiredError (401 consent_required)
     ├─ PermissionDeniedError (403 forbidden)
     ├─ NotFoundError (404 not_found)
     │   ├─ EndpointNotFoundError (404 endpoint_not_found)
     │   │   └─ EndpointWaitTimeoutError (also TimeoutError; client side only)
     │   ├─ PluginNotFoundError (404 plugin_not_found)
     │   └─ SessionNotFoundError (404 session_not_found)
     ├─ ConflictError (409 conflict)
     ├─ SessionExpiredError (410 session_expired)
     ├─ PayloadTooLargeError (413 payload_too_large)
     ├─ RateLimitedError (429 rate_limited)
     ├─ UpstreamError (502 upstream_error)
     │   └─ TransferError (502 globus_error)
     ├─ BridgeUnavailableError (503 bridge_unavailable)
     ├─ EndpointUnavailableError (503 endpoint_unavailable)
     ├─ PluginDisabledError (503 plugin_disabled)
     └─ GatewayTimeoutError (504 timeout)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BridgeUnavailableError",
    "ConflictError",
    "ConsentRequiredError",
    "EndpointNotFoundError",
    "EndpointUnavailableError",
    "EndpointWaitTimeoutError",
    "GatewayTimeoutError",
    "GlobusAuthError",
    "NotFoundError",
    "OrbitError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginDisabledError",
    "PluginNotFoundError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "SessionExpiredError",
    "SessionNotFoundError",
    "TransferError",
    "UpstreamError",
    "UsageError",
    "ValidationError",
    "describe_validation_errors",
    "error_from_payload",
    "quoted",
]


#: how much of a value an error message quotes
QUOTE_AT_MOST = 120


def quoted(value: object, limit: int = QUOTE_AT_MOST) -> str:
    """``repr(value)`` for an error message, text cut after ``limit`` characters with a
    count of the rest: a message must stay readable when the input is 100 KB."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value) - limit} more characters)"
    text = repr(value)
    return text if len(text) <= limit + 2 else f"{text[:limit]}... ({len(text) - limit} more characters)"


class OrbitError(RuntimeError):
    """Base of every error radical.orbit raises on purpose.

    A ``RuntimeError`` so that scripts written for the original Orbit, which catch
    ``RuntimeError``, still catch ours.

    :param message: a sentence that says what went wrong and, where possible, the fix
    :param details: JSON-serialisable context (field names, ids, upstream codes);
        never credentials
    """

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, status_code: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details
        if status_code is not None:
            self.status_code = status_code
        self.request_id: str | None = None
        #: the status of the HTTP answer this error was rebuilt from (client side), else None
        self.http_status: int | None = None

    def __str__(self) -> str:
        """``HTTP <status> — message`` for an answer's error (the original Orbit's form), else the message."""
        if self.http_status is None:
            return self.message
        return f"HTTP {self.http_status} \u2014 {self.message}"

    def to_payload(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON body servers send for this error."""
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "request_id": request_id or self.request_id,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status_code})"


class UsageError(OrbitError, ValueError):
    status_code, code = 400, "bad_request"


class ValidationError(UsageError):
    status_code, code = 422, "validation_error"


class AuthenticationError(OrbitError):
    status_code, code = 401, "unauthorized"


class GlobusAuthError(AuthenticationError):
    code = "globus_auth_failed"


class ConsentRequiredError(AuthenticationError):
    code = "consent_required"


class PermissionDeniedError(OrbitError):
    status_code, code = 403, "forbidden"


class NotFoundError(OrbitError):
    status_code, code = 404, "not_found"


class EndpointNotFoundError(NotFoundError):
    code = "endpoint_not_found"


class EndpointWaitTimeoutError(EndpointNotFoundError, TimeoutError):
    """``wait_for_endpoint`` gave up: also the ``TimeoutError`` the original Orbit raised there."""

    code = "endpoint_wait_timeout"


class PluginNotFoundError(NotFoundError):
    code = "plugin_not_found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class ConflictError(OrbitError):
    status_code, code = 409, "conflict"


class SessionExpiredError(OrbitError):
    status_code, code = 410, "session_expired"


class PayloadTooLargeError(OrbitError):
    status_code, code = 413, "payload_too_large"


class RateLimitedError(OrbitError):
    status_code, code = 429, "rate_limited"


class UpstreamError(OrbitError):
    status_code, code = 502, "upstream_error"


class TransferError(UpstreamError):
    code = "globus_error"


class ResponseTooLargeError(UpstreamError):
    """A plugin's answer too large to relay in one frame (the bridge's limit)."""

    code = "response_too_large"


class BridgeUnavailableError(OrbitError):
    status_code, code = 503, "bridge_unavailable"


class EndpointUnavailableError(OrbitError):
    status_code, code = 503, "endpoint_unavailable"


class PluginDisabledError(OrbitError):
    status_code, code = 503, "plugin_disabled"


class GatewayTimeoutError(OrbitError):
    status_code, code = 504, "timeout"


def _all_classes() -> list[type[OrbitError]]:
    out: list[type[OrbitError]] = []
    todo: list[type[OrbitError]] = [OrbitError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


_BY_STATUS: dict[int, type[OrbitError]] = {
    400: UsageError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: SessionExpiredError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    502: UpstreamError,
    503: EndpointUnavailableError,
    504: GatewayTimeoutError,
}


def error_from_payload(status: int, payload: Any, *, context: str = "") -> OrbitError:
    """Rebuild the server's exception from an error response (client side).

    :param status: the HTTP status of the response
    :param payload: the decoded JSON body (anything; non-dicts are tolerated)
    :param context: what was being called (``endpoint/plugin/route``), prefixed to
        the message so users see where it failed
    """
    code = payload.get("code") if isinstance(payload, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    details = payload.get("details") if isinstance(payload, dict) else None
    if not isinstance(details, dict):
        details = {}
    by_code = {cls.code: cls for cls in _all_classes()}
    cls = by_code.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status, OrbitError)
    if not message:
        message = f"request failed with HTTP {status}"
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            message = payload["detail"]
    if context:
        message = f"{context}: {message}"
    exc = cls(message, status_code=status, **details)
    exc.http_status = status
    if isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
        exc.request_id = payload["request_id"]
    return exc


def describe_validation_errors(errors: list[dict[str, Any]] | Any) -> tuple[str, list[dict[str, Any]]]:
    """Turn pydantic/FastAPI error dicts into one readable sentence plus a field list."""
    fields: list[dict[str, Any]] = []
    parts: list[str] = []
    for err in errors or []:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):  # where it was, not a field
            loc = loc[1:]  # (a field may itself be called "path")
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":  # FastAPI puts the character offset where a field goes
            loc, msg = [], f"{msg} at character {'.'.join(loc) or '?'}; send a valid JSON object"
        field = ".".join(loc) or "body"
        fields.append({"field": field, "error": msg, "type": err.get("type")})
        parts.append(f"'{field}': {msg}")
    message = "invalid request: " + "; ".join(parts) if parts else "invalid request body"
    return message, fields
