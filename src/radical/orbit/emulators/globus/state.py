"""Auth state (tokens, confidential clients) and the small JSON persistence helper.

Tokens are kept by their SHA-256 only, in memory and in ``--state-dir``: the raw
bearer strings never reach a file, yet tokens the emulator issued stay valid across
its own restart when a state dir is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .settings import DEV_IDENTITY_ID, DEV_USERNAME

__all__ = [
    "AUTH_RS",
    "TRANSFER_RS",
    "TRANSFER_SCOPE",
    "AuthState",
    "Identity",
    "ScopeError",
    "TokenRecord",
    "atomic_write_json",
    "parse_scopes",
]

TRANSFER_RS = "transfer.api.globus.org"
AUTH_RS = "auth.globus.org"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
AUTH_SCOPES = {"openid", "profile", "email"}
_DATA_ACCESS = re.compile(r"https://auth\.globus\.org/scopes/([0-9a-fA-F-]{36})/data_access")
_URL_SCOPE = re.compile(r"^https://auth\.globus\.org/scopes/([^/]+)/")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temp file and rename (0600)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class ScopeError(ValueError):
    """A scope string the emulator's Auth does not know."""


def parse_scopes(scope: str) -> list[str]:
    """Split a scope string at top-level whitespace (dependent scopes stay attached)."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in scope:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch.isspace() and depth == 0:
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def resource_server_of(scope: str) -> str:
    base = scope.split("[", 1)[0]
    if base.startswith("urn:globus:auth:scope:transfer.api.globus.org:"):
        return TRANSFER_RS
    if base in AUTH_SCOPES or base.startswith("urn:globus:auth:scope:auth.globus.org:"):
        return AUTH_RS
    m = _URL_SCOPE.match(base)
    if m:
        return m.group(1)
    raise ScopeError(scope)


@dataclass
class Identity:
    id: str
    username: str
    name: str
    email: str | None = None

    @classmethod
    def dev(cls) -> Identity:
        return cls(DEV_IDENTITY_ID, DEV_USERNAME, "Orbit Dev User", DEV_USERNAME)

    @classmethod
    def for_client(cls, client_id: str) -> Identity:
        return cls(client_id, f"{client_id}@clients.auth.globus.org", f"client {client_id[:8]}", None)


@dataclass
class TokenRecord:
    """What the emulator remembers about one issued token (never the token itself)."""

    kind: str  # "access" | "refresh"
    identity_id: str
    username: str
    name: str
    client_id: str
    resource_server: str | None
    scopes: list[str]
    consents: list[str] = field(default_factory=list)
    issued_at: float = field(default_factory=time.time)
    expires_at: float | None = None

    def active(self, now: float | None = None) -> bool:
        return self.expires_at is None or (now or time.time()) < self.expires_at

    @property
    def identity(self) -> Identity:
        return Identity(self.identity_id, self.username, self.name, None if "@clients." in self.username else self.username)


class AuthState:
    """Issues and checks tokens; knows the confidential clients.

    :param token_lifetime: access token lifetime in seconds
    :param state_dir: persist token records and clients there (hashes only)
    """

    def __init__(self, token_lifetime: int, native_client_id: str, state_dir: Path | None = None) -> None:
        self.token_lifetime = token_lifetime
        self.native_client_id = native_client_id
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenRecord] = {}
        self._clients: dict[str, str] = {}  # client_id -> sha256(secret)
        self._path = state_dir / "auth.json" if state_dir else None
        self._load()

    # ---- persistence

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            tokens = {h: TokenRecord(**rec) for h, rec in data.get("tokens", {}).items()}
            clients = {str(k): str(v) for k, v in data.get("clients", {}).items()}
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:  # written by hand, or by another version
            raise ValueError(
                f"the token state file {self._path} cannot be read ({type(exc).__name__}); "
                "move it away to start with no issued tokens, or give another --state-dir"
            ) from None
        self._tokens = tokens
        self._clients.update(clients)

    def _save(self) -> None:
        if self._path is None:
            return
        now = time.time()
        tokens = {h: asdict(r) for h, r in self._tokens.items() if r.active(now)}
        atomic_write_json(self._path, {"tokens": tokens, "clients": self._clients})

    # ---- clients

    def add_client(self, client_id: str, secret: str) -> None:
        with self._lock:
            self._clients[client_id] = _hash(secret)
            self._save()

    def new_client(self, client_id: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Register a confidential client; the id and secret not given are generated."""
        import uuid

        cid, secret = client_id or str(uuid.uuid4()), secret or secrets.token_urlsafe(33)[:44]
        self.add_client(cid, secret)
        return cid, secret

    def has_client(self, client_id: str) -> bool:
        """Whether ``client_id`` is a registered confidential client."""
        with self._lock:
            return client_id in self._clients

    def check_client(self, client_id: str, secret: str) -> bool:
        with self._lock:
            known = self._clients.get(client_id)
        return known is not None and hmac.compare_digest(known, _hash(secret))

    # ---- tokens

    def _issue(self, rec: TokenRecord) -> str:
        token = "Ag" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[_hash(token)] = rec
            self._save()
        return token

    def lookup(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(_hash(token))

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(_hash(token), None)
            self._save()

    def expire_all(self) -> int:
        """Make every access token expired now (tests of refresh paths)."""
        n = 0
        with self._lock:
            for rec in self._tokens.values():
                if rec.kind == "access" and rec.active():
                    rec.expires_at = time.time() - 1
                    n += 1
            self._save()
        return n

    def grant(self, identity: Identity, client_id: str, scope_string: str, *, refresh: bool = False, lifetime: int | None = None) -> dict[str, Any]:
        """The token endpoint's answer for ``scope_string`` (one entry per resource server).

        Raises :class:`ScopeError` for unknown scopes.
        """
        scopes = parse_scopes(scope_string) or [TRANSFER_SCOPE]
        by_rs: dict[str, list[str]] = {}
        for sc in scopes:
            by_rs.setdefault(resource_server_of(sc), []).append(sc)
        lifetime = lifetime or self.token_lifetime
        docs: list[dict[str, Any]] = []
        for rs, rs_scopes in by_rs.items():
            consents = sorted({m.lower() for sc in rs_scopes for m in _DATA_ACCESS.findall(sc)})
            now = time.time()
            rec = TokenRecord(
                "access",
                identity.id,
                identity.username,
                identity.name,
                client_id,
                rs,
                rs_scopes,
                consents,
                issued_at=now,
                expires_at=now + lifetime,
            )
            doc: dict[str, Any] = {
                "access_token": self._issue(rec),
                "expires_in": lifetime,
                "resource_server": rs,
                "scope": " ".join(sc.split("[", 1)[0] for sc in rs_scopes),
                "token_type": "Bearer",
                "state": "_default",
            }
            if refresh:
                rrec = TokenRecord("refresh", identity.id, identity.username, identity.name, client_id, rs, rs_scopes, consents)
                doc["refresh_token"] = self._issue(rrec)
            docs.append(doc)
        first = docs[0]
        first["other_tokens"] = docs[1:]
        return first

    def refresh(self, refresh_token: str, client_id: str) -> dict[str, Any] | None:
        """Redeem a refresh token (None when unknown or bound to another client)."""
        rec = self.lookup(refresh_token)
        if rec is None or rec.kind != "refresh" or rec.client_id != client_id:
            return None
        out = self.grant(rec.identity, client_id, " ".join(rec.scopes))
        out["refresh_token"] = refresh_token
        return out
