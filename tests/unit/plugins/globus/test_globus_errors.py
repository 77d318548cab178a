"""map_globus_errors: every globus-sdk failure becomes one Orbit error, without credentials."""

from __future__ import annotations

import json
from typing import Any

import globus_sdk
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from radical.orbit.errors import (
    ConflictError,
    ConsentRequiredError,
    GlobusAuthError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TransferError,
    UpstreamError,
    UsageError,
)
from radical.orbit.plugins.globus.errors import map_globus_errors

TOKEN = "secret-token-abcdef"


def api_error(status: int, body: dict[str, Any], cls: type = globus_sdk.TransferAPIError, headers: dict[str, str] | None = None) -> Exception:
    req = requests.Request("GET", "http://x.invalid/v0.10/task_list", headers={"Authorization": f"Bearer {TOKEN}"}).prepare()
    resp = requests.Response()
    resp.status_code = status
    resp.reason = "R"
    resp._content = json.dumps(body).encode()
    resp.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    resp.request = req
    resp.url = req.url or ""
    return cls(resp)


def mapped(exc: Exception, auth_mode: str = "access_token") -> Exception:
    with pytest.raises(Exception) as info, map_globus_errors(auth_mode=auth_mode, what="op"):
        raise exc
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.__dict__)
    return info.value


def test_consent_required_names_scopes() -> None:
    scope = "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/abc/data_access]"
    err = mapped(api_error(403, {"code": "ConsentRequired", "message": "Missing required data_access consent", "request_id": "r", "required_scopes": [scope]}))
    assert isinstance(err, ConsentRequiredError) and err.status_code == 401
    assert scope in err.message and "register_session" in err.message
    assert err.details["required_scopes"] == [scope]


def test_expired_access_token_says_reregister() -> None:
    err = mapped(api_error(401, {"code": "AuthenticationFailed", "message": "Token is not active"}))
    assert isinstance(err, GlobusAuthError) and err.status_code == 401
    assert "re-register with a fresh token" in err.message


def test_refresh_failure_is_auth_error() -> None:
    err = mapped(api_error(400, {"error": "invalid_grant"}, cls=globus_sdk.AuthAPIError), auth_mode="refresh_token")
    assert isinstance(err, GlobusAuthError) and "refresh token" in err.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, UsageError), (403, PermissionDeniedError), (404, NotFoundError), (409, ConflictError), (502, TransferError), (500, TransferError)],
)
def test_status_mapping(status: int, cls: type) -> None:
    err = mapped(api_error(status, {"code": "Some.Code", "message": "msg", "request_id": "req-1"}))
    assert type(err) is cls
    assert err.details["globus_code"] == "Some.Code" and err.details["globus_request_id"] == "req-1"
    if cls in (TransferError, UsageError, ConflictError):
        # a Globus 4xx about the request stays a 4xx (the caller's to fix); the rest are 502
        assert err.status_code == (502 if cls is TransferError else status) and "req-1" in err.message


@pytest.mark.parametrize(
    ("code", "cls", "status"),
    [("ExternalError.MkdirFailed.Exists", ConflictError, 409), ("ExternalError.DirListingFailed.NotDirectory", UsageError, 400)],
)
def test_globus_502s_that_are_the_callers_mistake_become_4xx(code: str, cls: type, status: int) -> None:
    """Globus answers mkdir of an existing path and ls of a file with 502; the caller can fix both."""
    err = mapped(api_error(502, {"code": code, "message": "msg", "request_id": "req-1"}))
    assert type(err) is cls and err.status_code == status and code in err.message


def test_rate_limit_carries_wait() -> None:
    err = mapped(api_error(429, {"code": "RateLimited", "message": "x"}, headers={"Retry-After": "7"}))
    assert isinstance(err, RateLimitedError) and err.details["retry_after"] == 7.0 and "7 s" in err.message


def test_network_error_is_upstream() -> None:
    err = mapped(globus_sdk.GlobusConnectionError("ConnectionError on request", requests.ConnectionError("x")))
    assert type(err) is UpstreamError and err.status_code == 502


def test_usage_error_is_400() -> None:
    err = mapped(globus_sdk.GlobusSDKUsageError("bad"))
    assert isinstance(err, UsageError) and err.status_code == 400


@pytest.mark.parametrize(("status", "reason"), [(400, "Bad Request"), (414, "URI Too Long"), (431, "Request Header Fields Too Large")])
def test_refusal_that_is_not_globus_json_says_so(status: int, reason: str) -> None:
    """A front end refusing an over-long request answers HTML: the message said '(None)'."""
    req = requests.Request("GET", "http://x.invalid/v0.10/operation/endpoint/u/ls").prepare()
    resp = requests.Response()
    resp.status_code = status
    resp.reason = reason
    resp._content = b"<html>" + reason.encode() + b"</html>"
    resp.headers = CaseInsensitiveDict({"Content-Type": "text/html"})
    resp.request = req
    resp.url = req.url or ""
    with pytest.raises(UsageError) as info, map_globus_errors(what="ls"):
        raise globus_sdk.TransferAPIError(resp)
    message = info.value.message
    assert f"HTTP {status}, no Globus error code" in message and "None" not in message
    assert "is a path, filter or list very long?" in message
