"""Authorization-code logins in flight: consent tickets and single-use codes (PKCE).

A browser login has two steps the emulator must remember between requests: the
authorize request waiting on the consent page (a *ticket*, named in the page's form
so the POST cannot be forged without having seen the page) and the code the browser
carries back to the client (redeemed once, within ``code_lifetime`` seconds, by the
client it was issued to, with the same ``redirect_uri`` and, when the login used PKCE,
the verifier whose SHA-256 is the challenge). Both live in memory only and are kept
by their SHA-256, like tokens: a code is a credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["CodeError", "LoginRequest", "Logins", "pkce_challenge"]

#: how long the consent page's ticket stays usable (a person reads the page)
TICKET_LIFETIME = 3600.0
#: at most this many tickets and codes are held; the oldest go first (a flood of
#: authorize requests must not grow the emulator without bound)
MAX_PENDING = 10_000


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class CodeError(ValueError):
    """A code that cannot be redeemed; the message says why (``invalid_grant``)."""


@dataclass
class LoginRequest:
    """One checked authorize request: what the code will carry to the token endpoint."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    offline: bool
    code_challenge: str | None
    confidential: bool
    prefill_named_grant: str | None = None
    session_message: str | None = None
    created_at: float = field(default_factory=time.time)


@dataclass
class _Code:
    request: LoginRequest
    expires_at: float


class Logins:
    """Consent tickets and authorization codes; thread-safe.

    :param code_lifetime: seconds an authorization code may wait to be exchanged
    :param auto_approve: answer authorize requests with a code at once (no page)
    """

    def __init__(self, code_lifetime: int, auto_approve: bool = False) -> None:
        self.code_lifetime = code_lifetime
        self.auto_approve = auto_approve
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, tuple[LoginRequest, float]] = OrderedDict()
        self._codes: OrderedDict[str, _Code] = OrderedDict()

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._tickets.items() if exp <= now]:
            del self._tickets[key]
        for key in [k for k, c in self._codes.items() if c.expires_at <= now]:
            del self._codes[key]
        while len(self._tickets) > MAX_PENDING:
            self._tickets.popitem(last=False)
        while len(self._codes) > MAX_PENDING:
            self._codes.popitem(last=False)

    def open(self, request: LoginRequest) -> str:
        """Hold ``request`` for the consent page; returns the ticket the page's form names."""
        ticket = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self._tickets[_hash(ticket)] = (request, now + TICKET_LIFETIME)
            self._prune(now)
        return ticket

    def take(self, ticket: str) -> LoginRequest | None:
        """The request behind ``ticket``, once (None when unknown, used or expired)."""
        with self._lock:
            entry = self._tickets.pop(_hash(ticket), None)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def issue(self, request: LoginRequest) -> str:
        """A new single-use authorization code for an approved ``request``."""
        code = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._codes[_hash(code)] = _Code(request, now + self.code_lifetime)
            self._prune(now)
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str | None) -> LoginRequest:
        """Spend ``code``; raises :class:`CodeError` naming what did not match.

        The code is spent by the first attempt, right or wrong (a guessed verifier
        gets one try per code, as with a real authorization server).
        """
        with self._lock:
            entry = self._codes.pop(_hash(code), None) if code else None
        if entry is None:
            raise CodeError("The authorization code is invalid, expired or was already used")
        req = entry.request
        if entry.expires_at <= time.time():
            raise CodeError("The authorization code has expired")
        if req.client_id != client_id:
            raise CodeError("The authorization code was issued to another client")
        if req.redirect_uri != redirect_uri:
            raise CodeError("redirect_uri does not match the one of the authorization request")
        if req.code_challenge is not None:
            if not verifier:
                raise CodeError("code_verifier is required: the authorization request carried a code_challenge")
            if not hmac.compare_digest(pkce_challenge(verifier), req.code_challenge):
                raise CodeError("code_verifier does not match the code_challenge (S256)")
        return req

    def expire_codes(self) -> int:
        """Make every outstanding code expired now (tests of the expired-code answer)."""
        with self._lock:
            for entry in self._codes.values():
                entry.expires_at = time.time() - 1
            return len(self._codes)
