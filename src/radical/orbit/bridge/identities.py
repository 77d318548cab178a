"""The bridge's identities on disk: hashed client tokens, endpoint keys and name claims.

One JSON file, ``~/.radical/orbit/bridge-identities.json`` (0600), shared by the
running bridge and the ``radical-orbit bridge tokens|endpoints`` commands::

    {"version": 1,
     "tokens": [{"name", "sha256", "admin", "created"}],
     "endpoint_keys": [{"name", "sha256", "created"}],
     "claims": {"<casefolded endpoint name>": {"name", "owner", "claimed"}}}

Only SHA-256 digests of secrets are stored: the secrets are 256 random bits, so a
digest is as good as the secret for checking and useless for presenting. Every
change is read-modify-write under an exclusive ``flock`` (the CLI and the bridge
may write at the same time) and lands through a temporary file and a rename, so a
reader never sees half a file. The bridge re-reads the file when it changes
(:meth:`IdentityStore.stamp`), which is how ``tokens revoke`` works without a restart.

The default client token (``bridge.token``) is not in here: it stays where it always
was and is the identity ``admin``. The LOCAL endpoint key (``endpoint.key``, key name
``local``) lets an endpoint started in the bridge's HOME register without enrolment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from ..config import (
    CLIENT_TOKEN_PREFIX,
    ENDPOINT_KEY_FILE,
    ENDPOINT_KEY_PREFIX,
    IDENTITIES_FILE,
    check_private_file,
    orbit_home,
    read_private_file,
    write_private_path,
)
from ..errors import ConflictError, NotFoundError, UsageError
from ..models.messages import ENDPOINT_NAME_PATTERN, RESERVED_NAMES

__all__ = [
    "DEFAULT_IDENTITY_NAME",
    "LOCAL_KEY",
    "ClaimRecord",
    "IdentityFile",
    "IdentityStore",
    "KeyRecord",
    "TokenRecord",
    "digest",
    "fold",
    "new_secret",
]

#: the key name of the bridge host's own endpoint key (``endpoint.key``)
LOCAL_KEY = "local"
#: the identity of the default token (``bridge.token``); and of every caller with ``--no-auth``
DEFAULT_IDENTITY_NAME = "admin"
_RESERVED_TOKEN_NAMES = frozenset({DEFAULT_IDENTITY_NAME, "anonymous"})
_NAME = re.compile(ENDPOINT_NAME_PATTERN)


def digest(secret: str | bytes) -> str:
    """The SHA-256 hex digest the store keeps instead of a secret."""
    return hashlib.sha256(secret.encode("utf-8") if isinstance(secret, str) else secret).hexdigest()


def new_secret(prefix: str) -> str:
    """A fresh secret: a recognisable prefix and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def fold(name: str) -> str:
    """Endpoint names are unique regardless of case: ``ep1`` and ``EP1`` are one name."""
    return name.casefold()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRecord(_Record):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    admin: bool = False
    created: str = ""


class KeyRecord(_Record):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: str = ""


class ClaimRecord(_Record):
    #: the endpoint name as first registered (its case is kept)
    name: str
    #: the name of the endpoint key that claimed it
    owner: str
    claimed: str = ""


class IdentityFile(_Record):
    """The file's content (see the module docstring)."""

    version: Literal[1] = 1
    tokens: list[TokenRecord] = Field(default_factory=list)
    endpoint_keys: list[KeyRecord] = Field(default_factory=list)
    claims: dict[str, ClaimRecord] = Field(default_factory=dict)

    def token(self, name: str) -> TokenRecord | None:
        return next((t for t in self.tokens if t.name == name), None)

    def key(self, name: str) -> KeyRecord | None:
        return next((k for k in self.endpoint_keys if fold(k.name) == fold(name)), None)


def check_token_name(name: str) -> str:
    """A client identity's name: what endpoints see in ``x-orbit-identity`` and logs show."""
    if not _NAME.match(name):
        raise UsageError(f"invalid token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if name.casefold() in _RESERVED_TOKEN_NAMES:
        raise UsageError(f"the token name {name!r} is reserved (the default token in bridge.token is 'admin'); pick another one")
    return name


def check_endpoint_name(name: str) -> str:
    """A name an endpoint may register under (the bridge's routes keep theirs)."""
    if not _NAME.match(name):
        raise UsageError(f"invalid endpoint name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if name.lower() in RESERVED_NAMES:
        raise UsageError(f"endpoint name {name!r} is reserved for the bridge's own routes; pick another one")
    return name


def check_enrol_name(name: str) -> str:
    """An endpoint name that can be enrolled (its key is then named after it)."""
    check_endpoint_name(name)
    if fold(name) == LOCAL_KEY:
        raise UsageError(f"{name!r} is the name of the bridge host's own endpoint key; enrol the endpoint under another name")
    return name


class IdentityStore:
    """``bridge-identities.json`` and ``endpoint.key`` in one directory.

    :param home: the directory (default: ``~/.radical/orbit``)
    """

    def __init__(self, home: Path | None = None) -> None:
        self.home = home if home is not None else orbit_home()
        self.path = self.home / IDENTITIES_FILE
        self.key_path = self.home / ENDPOINT_KEY_FILE
        self._lock_path = self.home / f".{IDENTITIES_FILE}.lock"

    def __repr__(self) -> str:
        return f"IdentityStore({str(self.path)!r})"

    # -- reading and writing -------------------------------------------------------------
    def stamp(self) -> tuple[int, int, int, int] | None:
        """What changes when the file is rewritten, or its mode changed (None: no file).

        The mode counts: a store refused for being open to others is read again once
        ``chmod 600`` fixed it, not only at its next rewrite.
        """
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)

    def read(self) -> IdentityFile:
        """The file's content (empty when there is none).

        :raises UsageError: the file is open to other users, or is not a store this
            version understands (naming the file and what is wrong)
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return IdentityFile()
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        check_private_file(self.path)
        # bytes that are not UTF-8, or arrays nested too deeply for json, are as broken as
        # a stray '{': the same message, and a running bridge keeps what it had
        try:
            return IdentityFile.model_validate(json.loads(raw.decode("utf-8")))
        except (ValueError, RecursionError, PydanticValidationError) as exc:
            where = ""
            if isinstance(exc, UnicodeDecodeError):
                where = " (it is not UTF-8 text)"
            elif isinstance(exc, RecursionError):
                where = " (it is nested too deeply)"
            elif isinstance(exc, PydanticValidationError) and exc.errors():
                first = exc.errors()[0]
                where = f" at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            raise UsageError(
                f"{self.path} is not a valid identity store{where}; restore it from a backup "
                "(or move it away to start with no extra tokens, enrolments or claims)"
            ) from None

    def _write(self, data: IdentityFile) -> None:
        write_private_path(self.path, data.model_dump_json(indent=2) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def edit(self) -> Iterator[IdentityFile]:
        """Read, let the caller change, write back: all under the lock."""
        with self._locked():
            data = self.read()
            yield data
            self._write(data)

    # -- client tokens -----------------------------------------------------------------
    def add_token(self, name: str, *, admin: bool = False) -> str:
        """A new client token for identity ``name``; returns the secret (not stored)."""
        check_token_name(name)
        secret = new_secret(CLIENT_TOKEN_PREFIX)
        with self.edit() as data:
            if data.token(name) is not None:
                raise ConflictError(f"a token named {name!r} exists; revoke it first: radical-orbit bridge tokens revoke {name}")
            data.tokens.append(TokenRecord(name=name, sha256=digest(secret), admin=admin, created=_now()))
        return secret

    def revoke_token(self, name: str) -> TokenRecord:
        with self.edit() as data:
            found = data.token(name)
            if found is None:
                known = ", ".join(t.name for t in data.tokens) or "none"
                raise NotFoundError(f"no token named {name!r} (tokens: {known})")
            data.tokens.remove(found)
        return found

    # -- endpoint keys and names ---------------------------------------------------------
    def enroll(self, name: str) -> str:
        """A new endpoint key that may register (only) ``name``, which it claims at once."""
        check_enrol_name(name)
        secret = new_secret(ENDPOINT_KEY_PREFIX)
        with self.edit() as data:
            claim = data.claims.get(fold(name))
            if claim is not None or data.key(name) is not None:
                held = claim.name if claim is not None else name
                raise ConflictError(
                    f"the endpoint name {held!r} is already claimed; to enrol it anew, "
                    f"release it first: radical-orbit bridge endpoints forget {held}"
                )
            now = _now()
            data.endpoint_keys.append(KeyRecord(name=name, sha256=digest(secret), created=now))
            data.claims[fold(name)] = ClaimRecord(name=name, owner=name, claimed=now)
        return secret

    def forget(self, name: str) -> tuple[ClaimRecord | None, KeyRecord | None]:
        """Release ``name`` and revoke a key enrolled for it; what was removed."""
        with self.edit() as data:
            claim = data.claims.pop(fold(name), None)
            key = data.key(name) if fold(name) != LOCAL_KEY else None
            if key is not None:
                data.endpoint_keys.remove(key)
            if claim is None and key is None:
                known = ", ".join(sorted(c.name for c in data.claims.values())) or "none"
                raise NotFoundError(f"no endpoint named {name!r} is claimed or enrolled (claimed: {known})")
        return claim, key

    def claim(self, name: str, owner: str) -> IdentityFile:
        """Record that key ``owner`` holds ``name`` (unless it already does); the new content.

        The file decides, not a caller's earlier snapshot: two keys racing for one free
        name are serialised by the lock and the second gets the conflict.

        :raises ConflictError: another key holds the name
        :raises NotFoundError: the key ``owner`` was revoked meanwhile
        """
        with self.edit() as data:
            if data.key(owner) is None:
                raise NotFoundError(f"the endpoint key {owner!r} was revoked")
            held = data.claims.get(fold(name))
            if held is not None and held.owner != owner:
                raise ConflictError(f"the endpoint name {held.name!r} is claimed by another endpoint key")
            if held is None:
                data.claims[fold(name)] = ClaimRecord(name=name, owner=owner, claimed=_now())
        return data

    def ensure_local_key(self) -> Path:
        """Make sure ``endpoint.key`` exists and the store knows its digest as ``local``.

        The digest is stored before the key file appears, so an endpoint that finds
        the file is never refused for a key the bridge does not know yet. An existing
        key file is the truth: a store that lost its entry (or never had one) learns it.

        :raises UsageError: ``endpoint.key`` is open to other users
        """
        with self._locked():
            existing = read_private_file(self.key_path)
            secret = existing or new_secret(ENDPOINT_KEY_PREFIX)
            data = self.read()
            record = data.key(LOCAL_KEY)
            if record is None or record.sha256 != digest(secret):
                if record is not None:
                    data.endpoint_keys.remove(record)
                data.endpoint_keys.append(KeyRecord(name=LOCAL_KEY, sha256=digest(secret), created=_now()))
                self._write(data)
            if existing is None:
                write_private_path(self.key_path, secret + "\n")
        return self.key_path
