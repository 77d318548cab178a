"""``/ui``: the Explorer's static files and its sign-in API, with strict security headers.

The page itself (``src/radical/orbit/ui/``: HTML, ES modules, CSS) ships inside the
package and is served as it is, no token needed: it holds no data until the browser
signs in. Every ``/ui`` answer carries a Content-Security-Policy that allows nothing
but the bridge's own scripts, styles and requests, so an injected string cannot run
script or load from elsewhere.

Routes (answers are the shared JSON error shape on failure)::

    GET  /ui/ , /ui/<file>         static files (index.html, ES modules, CSS, icons)
    POST /ui/api/signin-link        bearer token -> {"url", "expires_in"}; the one-time
                                    secret rides in the URL fragment
    POST /ui/api/session            {"secret"} + X-Orbit-CSRF: 1 -> {"identity", "admin"}
                                    and the HttpOnly, SameSite=Strict session cookie
    GET  /ui/api/me                 {"identity", "admin"} | 401
    POST /ui/api/signout            + X-Orbit-CSRF: 1 -> {"signed_out"}; cookie revoked and cleared
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from ..errors import (
    AuthenticationError,
    NotFoundError,
    OrbitError,
    PayloadTooLargeError,
    UsageError,
)
from .auth import Authenticator
from .browser import (
    BrowserSignIn,
    bridge_origin,
    clear_cookie,
    cookie_of,
    cross_origin_problem,
    csrf_error,
    session_cookie,
)
from .identity import Identity
from .relay import send_error, send_json
from .settings import BridgeSettings

log = logging.getLogger(__name__)

__all__ = ["CSP", "UI_PREFIX", "ExplorerUI", "is_ui_path"]

UI_PREFIX = "/ui"
API_PREFIX = "/ui/api/"
#: nothing from outside the bridge, no inline script or style, no framing, no <base>
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode("ascii")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
#: content types by file suffix, whatever the host's mime.types says: with ``nosniff``
#: a browser runs an ES module only when it is served as JavaScript
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".json": b"application/json",
    ".woff2": b"font/woff2",
}
#: the largest body the sign-in API reads (a secret is 43 characters)
MAX_API_BODY = 4096


def is_ui_path(path: str) -> bool:
    """``/ui`` or anything below it."""
    return path.startswith(UI_PREFIX) and (len(path) == len(UI_PREFIX) or path[len(UI_PREFIX)] == "/")


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def with_security_headers(path: str, send: Send) -> Send:
    """``send`` that adds the security headers (and the right content type and caching)
    to the response start."""
    suffix = _suffix(path)
    is_page = path.endswith("/") or suffix == ".html" or path.startswith(API_PREFIX)
    cache = b"no-store" if is_page else b"no-cache"
    content_type = CONTENT_TYPES.get(suffix)

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(key, value) for key, value in message.get("headers", []) if key.lower() != b"cache-control"]
            if content_type is not None and 200 <= int(message["status"]) < 300:
                headers = [(key, value) for key, value in headers if key.lower() != b"content-type"]
                headers.append((b"content-type", content_type))
            headers.append((b"cache-control", cache))
            headers.extend(SECURITY_HEADERS)
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def read_small_body(receive: Receive, limit: int = MAX_API_BODY) -> bytes:
    """The request body, refused past ``limit`` bytes (the sign-in API takes tiny bodies)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes; send only {{\"secret\": ...}}", limit=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _secret_of(raw: bytes) -> str:
    try:
        body: Any = json.loads(raw or b"null")
    except ValueError:
        raise UsageError('the body must be JSON: {"secret": "<the part after #signin= in the sign-in link>"}', field="body") from None
    secret = body.get("secret") if isinstance(body, dict) else None
    if not isinstance(secret, str) or not secret or len(secret) > 256:
        raise UsageError(
            "'secret' must be the text after #signin= in the sign-in link (`radical-orbit explorer` prints one)",
            field="secret",
        )
    return secret


class ExplorerUI:
    """ASGI app for everything under ``/ui`` (the bridge sends those paths here first)."""

    def __init__(self, settings: BridgeSettings, tokens: Authenticator, signin: BrowserSignIn) -> None:
        self.settings = settings
        self.tokens = tokens
        self.signin = signin
        self.static = StaticFiles(packages=[("radical.orbit", "ui")], html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        send = with_security_headers(path, send)
        try:
            if path.startswith(API_PREFIX):
                await self.api(path[len(API_PREFIX) :], scope, receive, send)
            else:
                await self.files(scope, receive, send)
        except OrbitError as exc:
            await send_error(send, exc, None)

    async def files(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.static({**scope, "root_path": scope.get("root_path", "") + UI_PREFIX}, receive, send)
        except HTTPException as exc:
            if exc.status_code == 405:
                raise UsageError(f"{scope['method']} is not allowed on the Explorer's files; use GET", status_code=405) from None
            raise NotFoundError(f"no file {scope['path']} in the Explorer") from None

    # -- the sign-in API ---------------------------------------------------------------
    async def api(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        handlers = {
            ("POST", "signin-link"): self.signin_link,
            ("POST", "session"): self.open_session,
            ("GET", "me"): self.me,
            ("POST", "signout"): self.signout,
        }
        handler = handlers.get((method, route))
        if handler is None:
            if any(name == route for _, name in handlers):
                raise UsageError(f"{method} is not allowed on /ui/api/{route}", status_code=405)
            raise NotFoundError(f"no route /ui/api/{route} (known: signin-link, session, me, signout)")
        await handler(scope, receive, send)

    async def signin_link(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A token holder asks for a one-time sign-in link for its own identity."""
        identity = self.tokens.identify(scope)
        if identity is None:
            raise Authenticator.error()
        secret = self.signin.secrets.mint(identity)
        origin = bridge_origin(scope) or self.settings.url
        log.info("explorer: sign-in link minted for identity %s", identity.name)
        lifetime = self.signin.secrets.lifetime
        await send_json(send, 200, {"url": f"{origin}/ui/#signin={secret}", "expires_in": max(1, round(lifetime))})

    async def open_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The page trades a sign-in secret for its session cookie."""
        problem = cross_origin_problem(scope)
        if problem is not None:
            raise csrf_error(problem)
        secret = _secret_of(await read_small_body(receive))
        identity = self.signin.secrets.redeem(secret)
        if identity is not None and identity.name not in self.tokens.identities():
            identity = None  # minted before its token was revoked
        if identity is None:
            raise AuthenticationError(
                f"this sign-in link is not valid: it was used already, is older than "
                f"{self.signin.secrets.lifetime:g} seconds, or the bridge restarted since; "
                "run `radical-orbit explorer` for a new one",
                reason="signin_link_invalid",
            )
        old = cookie_of(scope)
        if old is not None:
            self.signin.sessions.revoke(old)
        cookie = self.signin.sessions.open(identity)
        log.info("explorer: browser signed in as identity %s", identity.name)
        secure = scope.get("scheme") == "https"
        await send_json(send, 200, self._who(identity), [(b"set-cookie", session_cookie(cookie, secure=secure))])

    async def me(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Who the page is signed in as (a bridge without auth: everyone is ``anonymous``)."""
        identity = self.tokens.identify(scope)
        if identity is None:
            found = self.signin.identify(scope, allowed=True)
            if found is None:
                raise AuthenticationError(
                    "not signed in: run `radical-orbit explorer` and open the link it prints",
                    reason="browser_not_signed_in",
                )
            if isinstance(found, OrbitError):
                raise found
            identity = found
        await send_json(send, 200, self._who(identity))

    async def signout(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Revoke the cookie's session and make the browser forget the cookie (idempotent)."""
        problem = cross_origin_problem(scope)
        if problem is not None:
            raise csrf_error(problem)
        cookie = cookie_of(scope)
        ended = self.signin.sessions.revoke(cookie) if cookie else False
        secure = scope.get("scheme") == "https"
        await send_json(send, 200, {"signed_out": ended}, [(b"set-cookie", clear_cookie(secure=secure))])

    @staticmethod
    def _who(identity: Identity) -> dict[str, Any]:
        return {"identity": identity.name, "admin": identity.admin}

