"""The browser half of Globus Auth's authorization-code login, for the emulator's dev user.

``GET /v2/oauth2/authorize`` (the URL ``oauth2_get_authorize_url`` builds) checks the
request and serves a consent page: who is signed in, which client asks, the scopes it
asks for, and a form with an "Allow" and a "Deny" button. The form posts back to the
same path; Allow answers 303 to ``redirect_uri?code=..&state=..``, Deny 303 to
``redirect_uri?error=access_denied&state=..``. With auto-approve on (a setting, or
``PATCH /_emulator/login``) the authorize request is answered with the code at once,
for tests without a browser. ``GET /v2/web/auth-code`` is the page a native app's
default redirect lands on: it shows the code to copy, as Globus's does.

Problems with ``client_id`` or ``redirect_uri`` are shown on an error page (sending the
browser to an unchecked address would make the emulator an open redirector); every
other problem goes back to the client as ``error=..&error_description=..`` on the
redirect, per RFC 6749 section 4.1.2.1. Every value a page shows is HTML-escaped.
Plain HTML: no script, nothing loaded from elsewhere.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth_api import form_of
from .context import Emulator, emulator_of
from .logins import LoginRequest
from .settings import DEV_USERNAME
from .state import Identity, ScopeError, parse_scopes, resource_server_of

__all__ = ["routes"]

AUTHORIZE = "/v2/oauth2/authorize"
#: parameters that may appear once only (RFC 6749 section 3.1)
SINGLE = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "access_type",
    "prefill_named_grant",
    "session_message",
)
#: RFC 7636 section 4.2: an S256 challenge is base64url, 43 characters; allow the
#: verifier alphabet and length so a too-short or foreign value is refused by name
_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
#: what a redirect URI may hold: printable ASCII without spaces (it goes in a header)
_URI_CHARS = re.compile(r"^[\x21-\x7e]+$")
#: the consent page shows dependent scopes this deep, the rest as text
_SHOWN_DEPTH = 4


class PageError(Exception):
    """An authorize request that cannot be sent back to the client: shown as a page."""


class RedirectError(Exception):
    """An authorize request refused in OAuth terms, sent back on the redirect."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, status: int = 200) -> Response:
    """A small self-contained HTML page; framing and caching are refused, as consent pages do."""
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
        "code{word-break:break-all}button{font-size:1em;margin-right:1em;padding:.4em 1.2em}</style>"
        f"</head><body><header><p>Globus Auth (emulator)</p></header><main>{body}</main></body></html>\n"
    )
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(doc, status_code=status, headers=headers, media_type="text/html; charset=utf-8")


def error_page(message: str, status: int = 400) -> Response:
    return page("Login error", f"<h1>Login error</h1><p>{esc(message)}</p>", status)


def redirect_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a redirect target, or None."""
    if len(uri) > 2048:
        return "redirect_uri is longer than 2048 characters"
    if not _URI_CHARS.match(uri):
        return "redirect_uri must be an absolute http(s) URL of printable ASCII characters (percent-encode the rest)"
    try:
        parts = urlsplit(uri)
    except ValueError:  # an unclosed "[" of an IPv6 address
        return "redirect_uri must be an absolute http or https URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "redirect_uri must be an absolute http or https URL"
    try:
        port = parts.port  # ValueError: not a number, or not 0-65535
    except ValueError:
        port = 0
    if not parts.hostname or port == 0:
        return "redirect_uri must name a host, and a port from 1 to 65535 if it names one"
    if parts.fragment or uri.endswith("#"):
        return "redirect_uri must not contain a fragment"
    return None


def redirect_to(uri: str, params: dict[str, str | None]) -> Response:
    """303 to ``uri`` with ``params`` added to its query (None values left out)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return Response(status_code=303, headers={"Location": urlunsplit(parts._replace(query=query)), "Cache-Control": "no-store"})


def client_kind(em: Emulator, client_id: str) -> str | None:
    """"confidential", "native" or None (unknown) for ``client_id``."""
    if em.auth.has_client(client_id):
        return "confidential"
    if client_id == em.settings.native_client_id:
        return "native"
    return None


def _client_and_redirect(em: Emulator, params: QueryParams) -> tuple[str, str, bool]:
    """(client_id, redirect_uri, confidential), or :class:`PageError`."""
    for name in ("client_id", "redirect_uri"):
        if len(params.getlist(name)) > 1:
            raise PageError(f"{name} was given more than once")
    client_id = params.get("client_id", "")
    if not client_id:
        raise PageError("client_id is required")
    kind = client_kind(em, client_id)
    if kind is None:
        raise PageError(f"Unknown client_id '{client_id}': use the emulator's native client id or a registered confidential client")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise PageError("redirect_uri is required")
    problem = redirect_problem(redirect_uri)
    if problem:
        raise PageError(problem)
    return client_id, redirect_uri, kind == "confidential"


def _pkce(params: QueryParams, confidential: bool) -> str | None:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise RedirectError("invalid_request", "code_challenge_method was given without a code_challenge")
        if not confidential:
            raise RedirectError("invalid_request", "code_challenge is required: native app clients must use PKCE (S256)")
        return None
    if method != "S256":
        shown = "missing (which means plain)" if method is None else f"'{method}'"
        raise RedirectError("invalid_request", f"code_challenge_method {shown} is not supported: use S256")
    if not _CHALLENGE.match(challenge):
        raise RedirectError("invalid_request", "code_challenge must be 43 to 128 characters of base64url (RFC 7636)")
    return challenge


def check_login(em: Emulator, params: QueryParams) -> LoginRequest:
    """The authorize request as a :class:`LoginRequest`; raises PageError or RedirectError."""
    client_id, redirect_uri, confidential = _client_and_redirect(em, params)
    for name in SINGLE:
        if len(params.getlist(name)) > 1:
            raise RedirectError("invalid_request", f"{name} was given more than once")
    response_type = params.get("response_type")
    if not response_type:
        raise RedirectError("invalid_request", "response_type is required (code)")
    if response_type != "code":
        raise RedirectError("unsupported_response_type", f"response_type '{response_type}' is not supported: use code")
    scope = params.get("scope", "").strip()
    if not scope:
        raise RedirectError("invalid_scope", "scope is required")
    for sc in parse_scopes(scope):
        try:
            resource_server_of(sc)
        except ScopeError:
            raise RedirectError("invalid_scope", f"Unknown scope: {sc}") from None
    access_type = params.get("access_type", "online")
    if access_type not in ("online", "offline"):
        raise RedirectError("invalid_request", f"access_type '{access_type}' is not valid: use online or offline")
    return LoginRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=params.get("state"),
        offline=access_type == "offline",
        code_challenge=_pkce(params, confidential),
        confidential=confidential,
        prefill_named_grant=params.get("prefill_named_grant"),
        session_message=params.get("session_message"),
    )


def scope_items(scopes: list[str], depth: int = 0) -> str:
    """Nested ``<li>`` items: each scope with the dependent scopes in its brackets."""
    out = []
    for sc in scopes:
        base, bracket, rest = sc.partition("[")
        inner = rest[:-1] if bracket and rest.endswith("]") else None
        if inner is None or depth >= _SHOWN_DEPTH:
            out.append(f"<li><code>{esc(sc)}</code></li>")
            continue
        deps = scope_items(parse_scopes(inner), depth + 1)
        out.append(f"<li><code>{esc(base)}</code>, and on its behalf:<ul>{deps}</ul></li>")
    return "".join(out)


def consent_page(req: LoginRequest, ticket: str) -> Response:
    dev = Identity.dev()
    kind = "confidential (web) app" if req.confidential else "native app"
    grant = f"<p>Named grant: <code>{esc(req.prefill_named_grant)}</code></p>" if req.prefill_named_grant else ""
    message = f"<p>{esc(req.session_message)}</p>" if req.session_message else ""
    offline = "<p>It asks to keep this access while you are away (refresh tokens).</p>" if req.offline else ""
    body = (
        f"<h1>Allow access?</h1>{message}"
        f"<p>Signed in as <strong>{esc(dev.name)}</strong> (<code>{esc(DEV_USERNAME)}</code>).</p>"
        f"<p>The {kind} client <code>{esc(req.client_id)}</code> asks to:</p>"
        f'<ul id="scopes">{scope_items(parse_scopes(req.scope))}</ul>{offline}{grant}'
        f"<p>You will be sent back to <code>{esc(req.redirect_uri)}</code>.</p>"
        f'<form method="post" action="authorize">'
        f'<input type="hidden" name="ticket" value="{esc(ticket)}">'
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"
    )
    return page("Allow access? - Globus Auth (emulator)", body)


async def authorize(request: Request) -> Response:
    em = emulator_of(request)
    try:
        req = check_login(em, request.query_params)
    except PageError as exc:
        return error_page(str(exc))
    except RedirectError as exc:
        uri = request.query_params["redirect_uri"]  # checked before any RedirectError
        return redirect_to(uri, {"error": exc.error, "error_description": exc.description, "state": request.query_params.get("state")})
    if em.logins.auto_approve:
        return redirect_to(req.redirect_uri, {"code": em.logins.issue(req), "state": req.state})
    return consent_page(req, em.logins.open(req))


async def decide(request: Request) -> Response:
    """The consent form's POST: Allow issues a code, Deny refuses; either way back to the client."""
    form = await form_of(request)
    decision = form.get("decision", "")
    if decision not in ("allow", "deny"):
        return error_page("decision must be allow or deny")
    em = emulator_of(request)
    req = em.logins.take(form.get("ticket", ""))
    if req is None:
        return error_page("This login request is no longer valid (already answered, or expired): start the login again from the application.")
    if decision == "deny":
        return redirect_to(req.redirect_uri, {"error": "access_denied", "error_description": "The user denied the request", "state": req.state})
    return redirect_to(req.redirect_uri, {"code": em.logins.issue(req), "state": req.state})


async def auth_code(request: Request) -> Response:
    """Where a native app's default redirect_uri lands: the code, for the user to copy."""
    params = request.query_params
    if params.get("error"):
        return page("Login refused", f"<h1>Login refused</h1><p><code>{esc(params['error'])}</code></p>")
    code = params.get("code", "")
    if not code:
        return error_page("No authorization code in this address")
    body = f'<h1>Native App Authorization Code</h1><p>Copy this code into your application:</p><p><code id="auth-code">{esc(code)}</code></p>'
    return page("Authorization code - Globus Auth (emulator)", body)


routes = [
    Route(AUTHORIZE, authorize, methods=["GET"]),
    Route(AUTHORIZE, decide, methods=["POST"]),
    Route("/v2/web/auth-code", auth_code, methods=["GET"]),
]
