"""Globus-shaped errors: ``{"code", "message", "request_id", "resource"}`` as JSON.

The SDK parses an error body only when its Content-Type is ``application/json``, so
every error the emulator sends goes through :func:`error_response`. Extra top-level
fields (``required_scopes`` for ConsentRequired) ride along in ``extra``.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from starlette.responses import Response

_ALPHABET = string.ascii_letters + string.digits


def new_request_id() -> str:
    """A 9-character id like the ones Globus puts in ``request_id``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))


class GlobusError(Exception):
    """An API error the emulator answers with, in Globus's own terms.

    :param status: HTTP status
    :param code: Globus error code, e.g. ``ClientError.NotFound``
    :param message: human text, as Globus would phrase it
    :param extra: extra top-level JSON fields (e.g. ``required_scopes``)
    :param headers: extra response headers (e.g. ``Retry-After``)
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"GlobusError({self.status}, {self.code!r}, {self.message!r})"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response (Content-Type application/json).

    ASCII-escaped, so a lone surrogate (an ``ls`` of a file name that is not UTF-8)
    is sent as ``\\udcff`` instead of failing to encode.
    """
    data = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=True).encode("ascii")
    return Response(data, status_code=status, headers=headers, media_type="application/json")


def error_response(exc: GlobusError, resource: str, request_id: str | None = None) -> Response:
    """Render ``exc`` as Globus does; the code is also sent in ``X-Transfer-API-Error``."""
    body: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "request_id": request_id or new_request_id(),
        "resource": resource,
    }
    body.update(exc.extra)
    headers = {"X-Transfer-API-Error": exc.code, **exc.headers}
    return json_response(body, exc.status, headers)


# Constructors for the errors used in more than one place.


def not_found(message: str) -> GlobusError:
    return GlobusError(404, "ClientError.NotFound", message)


def bad_request(message: str, code: str = "ClientError.BadRequest") -> GlobusError:
    return GlobusError(400, code, message)


def endpoint_not_found(endpoint_id: str) -> GlobusError:
    return GlobusError(404, "EndpointNotFound", f"No such endpoint '{endpoint_id}'")


def permission_denied(collection_name: str, collection_id: str, path: str) -> GlobusError:
    return GlobusError(
        403,
        "EndpointPermissionDenied",
        f"Denied by endpoint, Error (list)\nEndpoint: {collection_name} ({collection_id})\n"
        f"Message: Fatal FTP Response\n---\nDetails: 500 Command failed : Path not allowed: {path}\n",
    )
