"""Browser sign-in: one-time sign-in secrets, cookie sessions and the CSRF rule.

A browser never holds the bridge token. ``radical-orbit explorer`` (a token holder)
asks for a one-time *sign-in secret* bound to its identity; the secret travels in the
URL fragment (never sent to a server, so not in logs or ``Referer``) and the page
trades it, once, for a *cookie session*: a random value in an ``HttpOnly``,
``SameSite=Strict`` cookie that stands for the same :class:`~.identity.Identity`.

Everything is kept in the bridge's memory, by the SHA-256 of the secret (a leaked
memory dump or log line shows no usable value); a bridge restart signs everyone out.

A cookie rides along on every request the browser makes to the bridge, whoever
asked for it, so a request authenticated by the cookie must show it comes from the
Explorer itself (:func:`cross_origin_problem`): no foreign ``Origin``, no
``Sec-Fetch-Site`` other than ``same-origin``, and for every unsafe method the
``X-Orbit-CSRF: 1`` header, which a page of another origin cannot add without a CORS
preflight the bridge never grants.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import Scope

from ..errors import AuthenticationError, OrbitError, PermissionDeniedError
from .identity import Identity

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "BrowserSessions",
    "BrowserSignIn",
    "SigninSecrets",
    "bridge_origin",
    "clear_cookie",
    "cookie_of",
    "cross_origin_problem",
    "session_cookie",
]

COOKIE_NAME = "orbit_session"
#: the header every state-changing cookie request carries (value ``1``)
CSRF_HEADER = "x-orbit-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: seconds a sign-in secret stays good (it is also single use)
SIGNIN_LIFETIME = 300.0
#: seconds a cookie session may stay unused before it ends
SESSION_IDLE = 12 * 3600.0
#: most sign-in secrets outstanding, and most cookie sessions, per identity; beyond
#: that the oldest goes (a script minting links in a loop cannot grow the bridge)
PER_IDENTITY = 64
#: most held in all; the oldest goes first
MAX_HELD = 10_000

_CSRF_HEADER_B = CSRF_HEADER.encode("ascii")
_COOKIE_B = COOKIE_NAME.encode("ascii")

Clock = Callable[[], float]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass(slots=True)
class _Held:
    identity: Identity
    #: monotonic time after which it is no longer good
    until: float


class _Store:
    """Secrets by digest, each with its identity and deadline; bounded per identity and in all."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.held: OrderedDict[str, _Held] = OrderedDict()

    def __len__(self) -> int:
        return len(self.held)

    def add(self, identity: Identity, lifetime: float) -> str:
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        self.prune(now)
        mine = [key for key, held in self.held.items() if held.identity.name == identity.name]
        for key in mine[: max(0, len(mine) - PER_IDENTITY + 1)]:
            del self.held[key]
        while len(self.held) >= MAX_HELD:
            self.held.popitem(last=False)
        self.held[_digest(secret)] = _Held(identity, now + lifetime)
        return secret

    def find(self, secret: str) -> tuple[str, _Held] | None:
        key = _digest(secret)
        held = self.held.get(key)
        if held is None:
            return None
        if held.until <= self.clock():
            del self.held[key]
            return None
        return key, held

    def prune(self, now: float) -> None:
        for key in [key for key, held in self.held.items() if held.until <= now]:
            del self.held[key]

    def drop_identity(self, name: str) -> int:
        return self.drop_unless(lambda other: other != name)

    def drop_unless(self, keep: Callable[[str], bool]) -> int:
        gone = [key for key, held in self.held.items() if not keep(held.identity.name)]
        for key in gone:
            del self.held[key]
        return len(gone)


class SigninSecrets:
    """One-time sign-in secrets: random, single use, good for :data:`SIGNIN_LIFETIME` seconds."""

    def __init__(self, lifetime: float = SIGNIN_LIFETIME, clock: Clock = time.monotonic) -> None:
        self.lifetime = lifetime
        self._store = _Store(clock)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"SigninSecrets(outstanding={len(self)})"

    def mint(self, identity: Identity) -> str:
        """A new secret that signs a browser in as ``identity``."""
        return self._store.add(identity, self.lifetime)

    def redeem(self, secret: str) -> Identity | None:
        """The identity of ``secret``, once; None when unknown, used or expired."""
        found = self._store.find(secret)
        if found is None:
            return None
        key, held = found
        del self._store.held[key]
        return held.identity

    def keep_identities(self, names: frozenset[str]) -> int:
        """Forget the secrets of every identity not in ``names`` (a link minted before its
        token was revoked must not sign a browser in); how many were forgotten."""
        return self._store.drop_unless(names.__contains__)


class BrowserSessions:
    """Cookie sessions: the cookie value stands for an identity until it idles out or is revoked."""

    def __init__(self, idle: float = SESSION_IDLE, clock: Clock = time.monotonic) -> None:
        self.idle = idle
        self._store = _Store(clock)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"BrowserSessions(open={len(self)})"

    def open(self, identity: Identity) -> str:
        """A new cookie value for ``identity``."""
        return self._store.add(identity, self.idle)

    def identity(self, cookie: str) -> Identity | None:
        """Who ``cookie`` stands for (and it stays open ``idle`` seconds more); None if it does not."""
        found = self._store.find(cookie)
        if found is None:
            return None
        key, held = found
        held.until = self._store.clock() + self.idle
        self._store.held.move_to_end(key)
        return held.identity

    def revoke(self, cookie: str) -> bool:
        """End the session of ``cookie``; False when there was none."""
        return self._store.held.pop(_digest(cookie), None) is not None

    def revoke_identity(self, name: str) -> int:
        """End every session of identity ``name`` (its token was revoked); how many ended."""
        return self._store.drop_identity(name)

    def keep_identities(self, names: frozenset[str]) -> int:
        """End every session whose identity is not in ``names`` (the token store changed:
        a revoked token's browsers are signed out with it); how many ended."""
        return self._store.drop_unless(names.__contains__)


# -- HTTP pieces -------------------------------------------------------------------
def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def cookie_of(scope: Scope) -> str | None:
    """The ``orbit_session`` cookie of a request, or None.

    Read by hand from every ``Cookie`` header: only this one name matters, and a
    malformed cookie elsewhere in the header must not hide it.
    """
    for key, value in scope["headers"]:
        if key != b"cookie":
            continue
        for part in value.split(b";"):
            name, sep, found = part.strip().partition(b"=")
            if sep and name.strip() == _COOKIE_B:
                text = found.strip().strip(b'"').decode("latin-1")
                return text or None
    return None


def _origin_parts(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def bridge_origin(scope: Scope) -> str | None:
    """``scheme://host[:port]`` of the bridge as the client addressed it (``Host`` header)."""
    host = _header(scope, b"host")
    if not host:
        return None
    return f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}"


def cross_origin_problem(scope: Scope) -> str | None:
    """Why a cookie-authenticated request may not be the Explorer's own, or None.

    * ``Sec-Fetch-Site`` (sent by every current browser), when present, must be
      ``same-origin``: another port of the same host is ``same-site``, and SameSite
      cookies go there too;
    * ``Origin``, when present, must be the bridge's own origin;
    * an unsafe method needs ``X-Orbit-CSRF: 1`` (a custom header cannot be sent
      cross-origin without a CORS preflight, which the bridge never answers).
    """
    site = _header(scope, b"sec-fetch-site")
    if site is not None and site.lower() != b"same-origin":
        return f"the request came from another site (Sec-Fetch-Site: {site.decode('latin-1')})"
    origin = _header(scope, b"origin")
    if origin is not None:
        ours = bridge_origin(scope)
        theirs = _origin_parts(origin.decode("latin-1"))
        if ours is None or theirs is None or theirs != _origin_parts(ours):
            shown = origin.decode("latin-1")[:100]
            return f"the request's Origin ({shown}) is not the bridge's own ({ours or 'no Host header'})"
    if scope["method"] not in SAFE_METHODS and _header(scope, _CSRF_HEADER_B) != b"1":
        return f"a {scope['method']} request of a browser session needs the header 'X-Orbit-CSRF: 1'"
    return None


def csrf_error(problem: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"refused: {problem}. Browser sessions may only be used by the Explorer page the bridge serves at /ui/",
        reason="csrf",
    )


def signed_out_error() -> AuthenticationError:
    return AuthenticationError(
        "this browser session has ended (signed out, idle for too long, or the bridge restarted): "
        "run `radical-orbit explorer` for a new sign-in link",
        reason="browser_session_ended",
    )


def _cookie_attributes(secure: bool) -> str:
    return "; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def session_cookie(value: str, *, secure: bool) -> bytes:
    """The ``Set-Cookie`` value that hands a browser its session (no Max-Age: gone with the browser)."""
    return f"{COOKIE_NAME}={value}{_cookie_attributes(secure)}".encode("ascii")


def clear_cookie(*, secure: bool) -> bytes:
    """The ``Set-Cookie`` value that makes a browser forget its session cookie."""
    return f"{COOKIE_NAME}=; Max-Age=0{_cookie_attributes(secure)}".encode("ascii")


class BrowserSignIn:
    """The bridge's browser sign-in state: outstanding sign-in secrets and cookie sessions."""

    def __init__(self, secrets_: SigninSecrets | None = None, sessions: BrowserSessions | None = None) -> None:
        self.secrets = SigninSecrets() if secrets_ is None else secrets_
        self.sessions = BrowserSessions() if sessions is None else sessions

    def __repr__(self) -> str:
        return f"BrowserSignIn({self.secrets!r}, {self.sessions!r})"

    def identify(self, scope: Scope, *, allowed: bool) -> Identity | OrbitError | None:
        """The identity of a request's session cookie, the error to answer, or None (no cookie).

        :param allowed: whether the route may be called with a cookie at all (the
            relay, ``/endpoints`` and ``/events`` may; operator routes may not)
        """
        cookie = cookie_of(scope)
        if cookie is None:
            return None
        if not allowed:
            return PermissionDeniedError(
                f"{scope['path']} is not open to browser sessions: call it with the bridge token",
                reason="browser_session_not_allowed",
            )
        problem = cross_origin_problem(scope)
        if problem is not None:
            return csrf_error(problem)
        return self.sessions.identity(cookie) or signed_out_error()
