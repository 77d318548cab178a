""""Log in with Globus" for the Explorer: the endpoint runs the authorization-code + PKCE flow.

The browser only carries the user to Globus Auth and back; the PKCE verifier and the
tokens never leave the endpoint::

    page ── login_start {redirect_uri, scopes?} ──▶ endpoint: state + verifier kept here
    page ◀── {authorize_url, state} ─────────────  (memory, 10 min, bound to the caller)
    browser ──▶ Globus Auth (consent) ──▶ <bridge>/ui/callback.html?code=...&state=...
    page ── login_finish {state, code} ──▶ endpoint: code + verifier ──▶ Globus Auth
    page ◀── {"sid", ...} ──────────────── a session on the refresh token, owned by the caller

A state is good once, for :data:`LOGIN_LIFETIME` seconds, and only for the identity
that started it: a sign-in link sent to someone else cannot finish in their browser
(their identity differs), and a stolen code is useless without the verifier.

The app is a *native* Globus app (public client, PKCE): ``-o globus.login_client_id=UUID``.
Register one at Globus with the redirect URI ``<bridge URL>/ui/callback.html``. Without
that option the emulator's native client is used when globus-sdk talks to an emulator
(an ``http://`` Globus Auth on a loopback address); otherwise ``login_start`` says
what to set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import globus_sdk

from ...errors import GlobusAuthError, UsageError
from .credentials import APP_NAME
from .errors import map_globus_errors

__all__ = ["LOGIN_LIFETIME", "GlobusLogins", "PendingLogin", "default_login_client_id"]

#: seconds between login_start and login_finish (a person reads a consent page)
LOGIN_LIFETIME = 600.0
#: logins in flight per identity and in all; beyond, the oldest is forgotten
PER_IDENTITY = 16
MAX_PENDING = 1000
#: the resource server whose refresh token the session runs on
TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"

Clock = Callable[[], float]


def _is_emulator(auth_url: str) -> bool:
    """An ``http://`` Globus Auth on a loopback address: the emulator (real Globus Auth is https)."""
    try:
        parts = urlsplit(auth_url)
        host = parts.hostname or ""
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    return parts.scheme == "http" and loopback


def default_login_client_id() -> str | None:
    """The emulator's native client id when globus-sdk points at an emulator, else None."""
    from ...emulators.globus.settings import NATIVE_CLIENT_ID

    with globus_sdk.NativeAppAuthClient(NATIVE_CLIENT_ID, app_name=APP_NAME) as probe:
        return NATIVE_CLIENT_ID if _is_emulator(probe.base_url) else None


def _flow_client(pending: PendingLogin) -> globus_sdk.NativeAppAuthClient:
    """A native-app client with the flow of ``pending`` started (no network)."""
    client = globus_sdk.NativeAppAuthClient(pending.client_id, app_name=APP_NAME)
    client.oauth2_start_flow(
        requested_scopes=pending.scopes,
        redirect_uri=pending.redirect_uri,
        state=pending.state,
        verifier=pending.verifier,
        refresh_tokens=True,
    )
    return client


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login between ``login_start`` and ``login_finish``."""

    state: str
    owner: str | None
    client_id: str
    verifier: str
    redirect_uri: str
    scopes: tuple[str, ...]
    local_collection: str | None
    until: float

    def __repr__(self) -> str:  # the verifier is half of a credential
        return f"PendingLogin(owner={self.owner!r}, client_id={self.client_id}, scopes={list(self.scopes)})"


class GlobusLogins:
    """Logins in flight on one endpoint, and the small pool that redeems their codes.

    :param endpoint: this endpoint's name; every state starts with it and a dot, so
        the callback page knows where to send the code
    """

    def __init__(self, endpoint: str, clock: Clock = time.monotonic) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self._pending: OrderedDict[str, PendingLogin] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def __repr__(self) -> str:
        return f"GlobusLogins({self.endpoint!r}, pending={len(self)})"

    # -- start ---------------------------------------------------------------------------
    def start(
        self,
        *,
        owner: str | None,
        client_id: str,
        redirect_uri: str,
        scopes: list[str],
        local_collection: str | None,
    ) -> dict[str, str]:
        """Keep a new login for ``owner``; ``{"authorize_url", "state"}`` for the browser."""
        pending = PendingLogin(
            state=f"{self.endpoint}.{secrets.token_urlsafe(24)}",
            owner=owner,
            client_id=client_id,
            verifier=secrets.token_urlsafe(48),  # 64 characters of RFC 7636's alphabet
            redirect_uri=redirect_uri,
            scopes=tuple(scopes),
            local_collection=local_collection,
            until=self.clock() + LOGIN_LIFETIME,
        )
        with _flow_client(pending) as client:
            url = client.oauth2_get_authorize_url()
        with self._lock:
            self._prune()
            mine = [key for key, held in self._pending.items() if held.owner == owner]
            for key in mine[: max(0, len(mine) - PER_IDENTITY + 1)]:
                del self._pending[key]
            while len(self._pending) >= MAX_PENDING:
                self._pending.popitem(last=False)
            self._pending[pending.state] = pending
        return {"authorize_url": url, "state": pending.state}

    def _prune(self) -> None:
        now = self.clock()
        for key in [key for key, held in self._pending.items() if held.until <= now]:
            del self._pending[key]

    # -- finish --------------------------------------------------------------------------
    def take(self, state: str, owner: str | None) -> PendingLogin:
        """The login ``state`` names, once, for the identity that started it.

        Another identity gets the same answer as an unknown state, and the login stays
        for its owner.
        """
        with self._lock:
            self._prune()
            held = self._pending.get(state)
            if held is None or held.owner != owner:
                raise UsageError(
                    "this Globus login is unknown or expired (a login must finish within 10 minutes, "
                    "once, in the browser of the identity that started it): start it again",
                    field="state",
                )
            del self._pending[state]
        return held

    async def refresh_token(self, pending: PendingLogin, code: str) -> str:
        """Redeem ``code`` with the verifier of ``pending``; the Transfer refresh token.

        Blocking globus-sdk work runs on this object's own small pool, not on the
        event loop and not on the default pool the endpoint's connection needs.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._exchange, pending, code)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="globus-login")
            return self._pool

    @staticmethod
    def _exchange(pending: PendingLogin, code: str) -> str:
        try:
            with _flow_client(pending) as client, map_globus_errors(what="login_finish"):
                tokens = client.oauth2_exchange_code_for_tokens(code)
        except GlobusAuthError as exc:
            raise GlobusAuthError(
                "login_finish: Globus Auth refused the authorization code (used already, expired, or "
                "from another login): start the login again",
                **exc.details,
            ) from None
        found = tokens.by_resource_server.get(TRANSFER_RESOURCE_SERVER) or {}
        refresh = found.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise GlobusAuthError(
                "login_finish: the login gave no Transfer refresh token; start it again with the "
                "Transfer scope (urn:globus:auth:scope:transfer.api.globus.org:all) among its scopes",
                resource_servers=sorted(tokens.by_resource_server),
            )
        return refresh

    def close(self) -> None:
        """Forget logins in flight and stop the pool (the plugin stops)."""
        with self._lock:
            self._pending.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
