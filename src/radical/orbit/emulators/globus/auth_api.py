"""The slice of Globus Auth the SDK and CLI need: the token endpoint and a few reads.

``POST /v2/oauth2/token`` speaks the ``client_credentials`` grant (confidential client,
HTTP Basic), the ``refresh_token`` grant and the ``authorization_code`` grant that
ends a browser login (see :mod:`.login_pages`). A native client names itself with
``client_id`` in the form and has no secret; a confidential one authenticates with
HTTP Basic, as the SDK's two login clients do. Answers carry ``other_tokens`` and never
an ``id_token`` (the SDK would try to verify it against OIDC discovery).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .context import Emulator, emulator_of
from .errors import json_response
from .logins import CodeError
from .settings import DEV_USERNAME
from .state import Identity, ScopeError, TokenRecord

__all__ = ["routes"]


async def form_of(request: Request) -> dict[str, str]:
    """The form-urlencoded body (no python-multipart needed for this one content type)."""
    from urllib.parse import parse_qsl

    raw = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def api_error(status: int, code: str, detail: str) -> Response:
    eid = str(uuid.uuid1())
    title = "Unauthorized" if status == 401 else "Forbidden" if status == 403 else "Error"
    body = {
        "errors": [{"status": str(status), "id": eid, "code": code, "detail": detail, "title": title}],
        "error_description": detail,
        "error": code.lower(),
    }
    return json_response(body, status)


def basic_client(request: Request) -> tuple[str, str] | None:
    """(client_id, secret) from HTTP Basic; None when absent or unreadable (invalid_client).

    Header bytes arrive latin-1 decoded, so ``Basic \xff`` reaches b64decode as a
    non-ASCII str, which raises a plain ValueError rather than binascii.Error.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        return None
    cid, sep, secret = decoded.partition(":")
    return (cid, secret) if sep else None


async def token(request: Request) -> Response:
    form = await form_of(request)
    em = emulator_of(request)
    grant = str(form.get("grant_type") or "")
    creds = basic_client(request)
    if creds is not None and not em.auth.check_client(*creds):
        return oauth_error("invalid_client", "Invalid client credentials", 401)
    if grant == "client_credentials":
        if creds is None:
            return oauth_error("invalid_client", "client_credentials requires HTTP Basic client authentication", 401)
        scope = str(form.get("scope") or "urn:globus:auth:scope:transfer.api.globus.org:all")
        try:
            body = em.auth.grant(Identity.for_client(creds[0]), creds[0], scope)
        except ScopeError as exc:
            return oauth_error("invalid_scope", f"Unknown scope: {exc}")
        return json_response(body)
    if grant == "refresh_token":
        client_id = creds[0] if creds else str(form.get("client_id") or "")
        if not client_id:
            return oauth_error("invalid_client", "client_id is required", 401)
        body2 = em.auth.refresh(str(form.get("refresh_token") or ""), client_id)
        if body2 is None:
            return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked", 401)
        return json_response(body2)
    if grant == "authorization_code":
        return exchange_code(em, form, creds)
    return oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported by the emulator")


def code_client(em: Emulator, form: dict[str, str], creds: tuple[str, str] | None) -> str | Response:
    """The client redeeming a code (already authenticated when Basic was sent), or the error."""
    named = str(form.get("client_id") or "")
    if creds is not None:
        if named and named != creds[0]:
            return oauth_error("invalid_client", "client_id in the form differs from the HTTP Basic client", 401)
        return creds[0]
    if not named:
        return oauth_error("invalid_client", "client_id is required (a confidential client uses HTTP Basic instead)", 401)
    if em.auth.has_client(named):
        return oauth_error("invalid_client", "A confidential client must authenticate with HTTP Basic", 401)
    if named != em.settings.native_client_id:
        return oauth_error("invalid_client", f"Unknown client_id '{named}'", 401)
    return named


def exchange_code(em: Emulator, form: dict[str, str], creds: tuple[str, str] | None) -> Response:
    """``grant_type=authorization_code``: the tokens of an approved browser login, once.

    Consents come with the scopes the login asked for: a dependent ``data_access``
    scope on the Transfer scope clears ConsentRequired for that collection.
    """
    client_id = code_client(em, form, creds)
    if isinstance(client_id, Response):
        return client_id
    code = str(form.get("code") or "")
    redirect_uri = form.get("redirect_uri")
    if not code or redirect_uri is None:
        return oauth_error("invalid_request", "code and redirect_uri are required")
    try:
        req = em.logins.redeem(code, client_id, redirect_uri, form.get("code_verifier"))
    except CodeError as exc:
        return oauth_error("invalid_grant", str(exc), 401)
    try:
        body = em.auth.grant(Identity.dev(), client_id, req.scope, refresh=req.offline)
    except ScopeError as exc:  # checked at the authorize step; kept for a changed scope parser
        return oauth_error("invalid_scope", f"Unknown scope: {exc}")
    for doc in [body, *body["other_tokens"]]:
        doc["state"] = req.state if req.state is not None else "_default"
    return json_response(body)


def _record(request: Request, form_token: str) -> TokenRecord | None:
    rec = emulator_of(request).auth.lookup(form_token) if form_token else None
    return rec if rec is not None and rec.active() else None


async def validate(request: Request) -> Response:
    form = await form_of(request)
    rec = _record(request, str(form.get("token") or ""))
    return json_response({"active": rec is not None})


async def introspect(request: Request) -> Response:
    form = await form_of(request)
    rec = _record(request, str(form.get("token") or ""))
    if rec is None:
        return json_response({"active": False})
    return json_response(
        {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(s.split("[", 1)[0] for s in rec.scopes),
            "client_id": rec.client_id,
            "username": rec.username,
            "name": rec.name,
            "email": rec.identity.email,
            "sub": rec.identity_id,
            "exp": int(rec.expires_at) if rec.expires_at else None,
            "iat": int(rec.issued_at),
            "nbf": int(rec.issued_at),
            "aud": [rec.resource_server, rec.client_id],
            "iss": "https://auth.globus.org",
        }
    )


async def revoke(request: Request) -> Response:
    form = await form_of(request)
    tok = str(form.get("token") or "")
    if tok:
        emulator_of(request).auth.revoke(tok)
    return json_response({"active": False})


def bearer(request: Request) -> TokenRecord | None:
    header = request.headers.get("authorization", "")
    scheme, _, tok = header.partition(" ")
    if scheme.lower() != "bearer" or not tok.strip():
        return None
    return _record(request, tok.strip())


def identity_doc(ident: Identity) -> dict[str, Any]:
    client = "@clients.auth.globus.org" in ident.username
    return {
        "id": ident.id,
        "username": ident.username,
        "name": ident.name,
        "email": ident.email,
        "status": "used",
        "identity_type": "client" if client else "login",
        "identity_provider": "6f2d2c2e-1b34-4e0a-9a48-0c0a5b7e0000",
        "organization": "RADICAL Orbit (emulated)",
    }


def unused_identity_doc(username: str) -> dict[str, Any]:
    """An identity nobody has signed in with yet: its id is fixed, the rest unknown
    (the shape of the SDK's canned ``get_identities`` answer for such a one)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, username)),
        "username": username,
        "name": None,
        "email": None,
        "status": "unused",
        "identity_provider": "6f2d2c2e-1b34-4e0a-9a48-0c0a5b7e0000",
        "organization": None,
    }


async def userinfo(request: Request) -> Response:
    rec = bearer(request)
    if rec is None:
        return api_error(401, "UNAUTHORIZED", "Call must be authenticated")
    ident = rec.identity
    return json_response(
        {
            "sub": ident.id,
            "preferred_username": ident.username,
            "name": ident.name,
            "email": ident.email,
            "identity_provider": "6f2d2c2e-1b34-4e0a-9a48-0c0a5b7e0000",
            "identity_provider_display_name": "Orbit Emulator",
            "organization": "RADICAL Orbit (emulated)",
            "last_authentication": int(time.time()),
            "identity_set": [identity_doc(ident)],
        }
    )


async def identities(request: Request) -> Response:
    creds = basic_client(request)
    if bearer(request) is None and (creds is None or not emulator_of(request).auth.check_client(*creds)):
        return api_error(401, "UNAUTHORIZED", "Call must be authenticated")
    known = {DEV_USERNAME: Identity.dev()}
    for coll in emulator_of(request).collections:
        doc = coll.endpoint_document()
        known.setdefault(doc["owner_string"], Identity(doc["owner_id"], doc["owner_string"], doc["owner_string"].split("@")[0], doc["owner_string"]))
    by_id = {i.id: i for i in known.values()}
    out = []
    for name in ",".join(request.query_params.getlist("usernames")).split(","):
        name = name.strip()
        if not name:
            continue
        if name in known:
            out.append(identity_doc(known[name]))
        else:  # Globus answers for any username: one nobody has signed in with is "unused"
            out.append(unused_identity_doc(name))
    auth = emulator_of(request).auth
    for iid in ",".join(request.query_params.getlist("ids")).split(","):
        iid = iid.strip()
        if iid in by_id:
            out.append(identity_doc(by_id[iid]))
        elif auth.has_client(iid):
            out.append(identity_doc(Identity.for_client(iid)))
        # an id Globus does not know is left out (the CLI then prints NO_SUCH_IDENTITY)
    return json_response({"identities": out})


routes = [
    Route("/v2/oauth2/token", token, methods=["POST"]),
    Route("/v2/oauth2/token/validate", validate, methods=["POST"]),
    Route("/v2/oauth2/token/introspect", introspect, methods=["POST"]),
    Route("/v2/oauth2/token/revoke", revoke, methods=["POST"]),
    Route("/v2/oauth2/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/v2/api/identities", identities, methods=["GET"]),
]
