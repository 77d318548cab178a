"""Who may talk to the bridge: client tokens (HTTP) and endpoint keys (the endpoint socket).

Checked straight on the ASGI scope (no Request object). The bridge's default token
(``bridge.token``) is the identity ``admin``; tokens made with ``radical-orbit bridge
tokens add`` and endpoint keys live hashed in the :class:`~.identities.IdentityStore`,
of which the bridge keeps an in-memory snapshot, re-read when the file changes
(:meth:`Authenticator.refresh`: about once a second, and at once when a token or key
is not in the snapshot, so one made a moment ago works; that costs one ``stat``).

The two kinds of secret never stand in for each other: a client token presented on
the endpoint socket is refused (403), an endpoint key on an HTTP route is unknown (401).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope

from ..errors import (
    AuthenticationError,
    ConflictError,
    EndpointUnavailableError,
    NotFoundError,
    OrbitError,
    PermissionDeniedError,
    UsageError,
)
from .identities import (
    DEFAULT_IDENTITY_NAME,
    LOCAL_KEY,
    ClaimRecord,
    IdentityFile,
    IdentityStore,
    KeyRecord,
    check_endpoint_name,
    digest,
    fold,
)
from .identity import ANONYMOUS, Identity

__all__ = ["DEFAULT_IDENTITY", "ENDPOINT_NAME_HEADER", "Admission", "Authenticator", "IdentitySource"]

log = logging.getLogger(__name__)

#: the identity of the bridge's default token (``bridge.token``): it may do everything
DEFAULT_IDENTITY = Identity(DEFAULT_IDENTITY_NAME, admin=True)
#: the header in which an endpoint names itself on the WebSocket upgrade request
ENDPOINT_NAME_HEADER = b"x-orbit-endpoint"


def bearer(scope: Scope) -> bytes | None:
    """The bearer credential of a scope's ``Authorization`` header (None: none, or another scheme)."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, presented = value.partition(b" ")
            return bytes(presented.strip()) if scheme.lower() == b"bearer" else None
    return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


@dataclass(frozen=True, slots=True)
class Admission:
    """An endpoint socket the bridge may accept: the name it holds and the key that holds it."""

    #: the name as first claimed (the case the bridge shows and keeps)
    name: str
    #: the name of the endpoint key that holds it
    key: str
    #: the name as this upgrade request gave it (the register frame must repeat it)
    requested: str


class IdentitySource(Protocol):
    """Where the identities come from: the file store, or the document shared through Redis."""

    def stamp(self) -> object:
        """What changes when the identities change (compared, never interpreted)."""

    def read(self) -> IdentityFile: ...

    def claim(self, name: str, owner: str) -> IdentityFile:
        """Record that key ``owner`` holds ``name`` (blocking: called in a thread)."""


class _Snapshot:
    """The store's content, indexed for the checks (digest -> record)."""

    def __init__(self, data: IdentityFile) -> None:
        self.tokens = {t.sha256: Identity(t.name, admin=t.admin) for t in data.tokens}
        self.keys: dict[str, KeyRecord] = {k.sha256: k for k in data.endpoint_keys}
        self.key_names = {fold(k.name) for k in data.endpoint_keys}
        self.claims: dict[str, ClaimRecord] = dict(data.claims)


class Authenticator:
    """The bridge's one check of every caller.

    :param token: the default token (identity ``admin``), or None with ``auth=False``
    :param store: the identity store (tokens, endpoint keys, name claims)
    :param auth: False (``--no-auth``): every HTTP caller is :data:`ANONYMOUS`;
        endpoints still need a key
    """

    def __init__(self, token: str | None, store: IdentityStore | IdentitySource, *, auth: bool = True) -> None:
        self._token = token.encode("utf-8") if (auth and token) else None
        self.auth = auth
        self.store = store
        self._stamp = store.stamp()
        self._view = _Snapshot(store.read())
        #: counts snapshot changes, whoever caused them (the watcher acts on each one)
        self.generation = 0
        self._claiming = asyncio.Lock()
        #: with the Redis backplane: look for identity changes at once (a token or key
        #: not in the snapshot may have been made a moment ago)
        self.resync: Callable[[], Awaitable[bool]] | None = None

    @property
    def enabled(self) -> bool:
        return self.auth

    def __repr__(self) -> str:
        return f"Authenticator(auth={self.auth}, tokens={len(self._view.tokens)}, keys={len(self._view.keys)})"

    # -- keeping up with the file ----------------------------------------------------------
    def identities(self) -> frozenset[str]:
        """The names of every client identity a token currently stands for."""
        names = {identity.name for identity in self._view.tokens.values()}
        if self._token is not None:
            names.add(DEFAULT_IDENTITY.name)
        if not self.auth:
            names.add(ANONYMOUS.name)
        return frozenset(names)

    def fingerprints(self) -> dict[str, str]:
        """Each current identity's name -> what stands for it now (its token's digest and
        admin flag): a name whose fingerprint changed had its token revoked, even when a
        new token took the name since."""
        found = {identity.name: f"{sha}:{int(identity.admin)}" for sha, identity in self._view.tokens.items()}
        if self._token is not None:
            found[DEFAULT_IDENTITY.name] = "default:1"
        if not self.auth:
            found[ANONYMOUS.name] = "anonymous:1"
        return found

    def refresh(self) -> bool:
        """Re-read the store if its file changed; True if the snapshot changed.

        A file that cannot be used (made readable by others, or broken by an edit)
        keeps the last good snapshot and is reported, so a slip on the bridge host
        does not lock everybody out or let anybody in.
        """
        stamp = self.store.stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._view = _Snapshot(self.store.read())
        except UsageError as exc:
            log.error("identity store not reloaded (the previous one stays in force): %s", exc.message)
            return False
        self.generation += 1
        return True

    async def refresh_shared(self) -> bool:
        """:meth:`refresh`, after asking the shared store for changes (if there is one);
        True if the snapshot changed."""
        before = self.generation
        if self.resync is not None:
            await self.resync()
        self.refresh()
        return self.generation != before

    def _adopt(self, data: IdentityFile) -> None:
        """Use what we just wrote; the stamp stays old, so the next :meth:`refresh`
        reads the file once more (and sees what others wrote meanwhile)."""
        self._view = _Snapshot(data)
        self.generation += 1

    # -- clients -------------------------------------------------------------------------
    def identify(self, scope: Scope) -> Identity | None:
        """The identity the scope's bearer token stands for, or None (refuse it)."""
        if not self.auth:
            return ANONYMOUS
        presented = bearer(scope)
        if not presented:
            return None
        return self._client(presented)

    def _client(self, presented: bytes) -> Identity | None:
        if self._token is not None and hmac.compare_digest(presented, self._token):
            return DEFAULT_IDENTITY
        # looked up by the digest of what the caller sent: how long the lookup takes
        # depends on that digest, never on a stored secret (a hash of one is no use to
        # a caller), so there is nothing to learn from timing it
        wanted = digest(presented)
        found = self._view.tokens.get(wanted)
        if found is None and self.refresh():  # a token added a moment ago works at once
            found = self._view.tokens.get(wanted)
        return found

    @staticmethod
    def error() -> AuthenticationError:
        return AuthenticationError(
            "missing or wrong bridge token: send 'Authorization: Bearer <token>' "
            "(the bridge stores its default token in ~/.radical/orbit/bridge.token; "
            "`radical-orbit bridge tokens add NAME` makes one per user)"
        )

    # -- endpoints ------------------------------------------------------------------------
    async def admit(self, scope: Scope) -> Admission:
        """Check an endpoint's upgrade request: its key, its name, the name's claim.

        A first registration of a free name claims it for the key, on disk, before the
        socket is accepted.

        :raises OrbitError: 401 no or unknown key, 403 a client token or a key enrolled
            for another name, 400 a missing or unusable name, 409 a name another key holds
        """
        presented = bearer(scope)
        if not presented:
            raise AuthenticationError(
                "no endpoint key: an endpoint sends 'Authorization: Bearer <endpoint key>' "
                "(radical-orbit endpoint finds ~/.radical/orbit/endpoint.key, $RADICAL_ORBIT_ENDPOINT_KEY or --key-file)"
            )
        key = self._view.keys.get(digest(presented))
        if key is None and (self.refresh() or await self.refresh_shared()):  # enrolled a moment ago
            key = self._view.keys.get(digest(presented))
        if key is None:
            if self._client(presented) is not None:
                raise PermissionDeniedError(
                    "a client token cannot register an endpoint; enrol it: radical-orbit bridge endpoints enroll NAME"
                )
            raise AuthenticationError(
                "unknown endpoint key: enrol the endpoint on the bridge host (radical-orbit bridge endpoints enroll NAME) "
                "and give the endpoint the key it prints, or start the endpoint in the bridge's HOME"
            )
        name = self._name(scope)
        if key.name != LOCAL_KEY and fold(key.name) != fold(name):
            raise PermissionDeniedError(
                f"this endpoint key was enrolled for {key.name!r} and cannot register {name!r}: "
                f"start the endpoint with --name {key.name}, or enrol {name!r} on the bridge host"
            )
        held = self._view.claims.get(fold(name))
        if held is not None:
            if held.owner != key.name:
                raise self._taken(held.name)
            return Admission(held.name, key.name, name)
        return await self._claim(name, key.name)

    @staticmethod
    def _name(scope: Scope) -> str:
        raw = _header(scope, ENDPOINT_NAME_HEADER)
        if raw is None:
            raise UsageError("missing X-Orbit-Endpoint header: an endpoint names itself in it on the upgrade request")
        try:
            return check_endpoint_name(raw.decode("ascii"))
        except UnicodeDecodeError:
            raise UsageError("the X-Orbit-Endpoint header must be an endpoint name (letters, digits, '.', '_', '-')") from None

    @staticmethod
    def _taken(name: str) -> ConflictError:
        return ConflictError(
            f"the endpoint name {name!r} is claimed by another endpoint key; "
            f"forget it on the bridge host: radical-orbit bridge endpoints forget {name}",
            endpoint=name,
        )

    async def _claim(self, name: str, key: str) -> Admission:
        async with self._claiming:  # one claim at a time: the file decides, in order
            try:
                data = await asyncio.to_thread(self.store.claim, name, key)
            except ConflictError:
                self.refresh()
                held = self._view.claims.get(fold(name))
                raise self._taken(held.name if held else name) from None
            except NotFoundError:
                self.refresh()
                raise AuthenticationError("this endpoint key was revoked on the bridge host; enrol the endpoint again") from None
            except (OSError, OrbitError) as exc:
                text = exc.message if isinstance(exc, OrbitError) else (exc.strerror or str(exc))
                log.error("cannot record the claim of endpoint name %r: %s", name, text)
                raise EndpointUnavailableError(f"the bridge cannot record the claim of {name!r} right now; retry later") from None
        self._adopt(data)
        held = self._view.claims[fold(name)]
        log.info("endpoint name %r claimed by endpoint key %r", held.name, key)
        return Admission(held.name, key, name)

    def revoked(self, name: str, key: str) -> str | None:
        """Why a connected endpoint may no longer hold ``name`` with ``key`` (None: it may)."""
        if fold(key) not in self._view.key_names:
            return "its endpoint key was revoked"
        held = self._view.claims.get(fold(name))
        if held is None or held.owner != key:
            return "its name was released on the bridge host"
        return None
