"""Identities shared through Redis: the same document as ``bridge-identities.json``.

:class:`RedisIdentityStore` is :class:`~..identities.IdentityStore` with the document
in Redis (``orbit:identities``) instead of a file: ``radical-orbit bridge
tokens|endpoints ... --redis URL`` edits it, and a replica records name claims in it.
Every change is read-modify-write under a lock in Redis (the file store's ``flock``),
bumps ``orbit:identities:version`` and is announced on the ``orbit:identities``
channel. A command that revokes waits until every replica that heard the
announcement says it applied it (``orbit:identities:ack``), so when it returns a
revoked token is refused everywhere.

:class:`SharedIdentities` is what a replica's :class:`~..auth.Authenticator` reads:
the last document loaded from Redis (by :class:`~.redis_backplane.RedisBackplane`,
on an announcement or a version change), plus this replica's own ``endpoint.key``
as the key ``local``, which therefore never has to leave its host. Every replica's
local key is called ``local`` and so holds the names ``local`` claimed: they are all
the bridge operator's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from pydantic import ValidationError as PydanticValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...config import read_private_file
from ...errors import BridgeUnavailableError, ConflictError, NotFoundError, UsageError
from ..identities import (
    LOCAL_KEY,
    ClaimRecord,
    IdentityFile,
    IdentityStore,
    KeyRecord,
    digest,
    fold,
)
from .redis_scripts import (
    IDENTITIES_ACK,
    IDENTITIES_CHANNEL,
    IDENTITIES_KEY,
    IDENTITIES_LOCK,
    IDENTITIES_VERSION,
)
from .redis_url import redacted_url

__all__ = ["RedisIdentityStore", "SharedIdentities", "parse_document"]

#: seconds a command waits for the replicas to confirm a change
CONFIRM_TIMEOUT = 3.0
#: seconds the edit lock is held at most (a crashed editor cannot block the others longer)
LOCK_TTL_MS = 10_000
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_UNREACHABLE = (redis.RedisError, OSError)


def parse_document(text: str | None, where: str) -> IdentityFile:
    """The identity document, or a :class:`UsageError` that says what is wrong with it."""
    if not text:
        return IdentityFile()
    try:
        return IdentityFile.model_validate(json.loads(text))
    except (ValueError, RecursionError, PydanticValidationError):  # RecursionError: nested too deeply
        raise UsageError(
            f"the identity document in {where} is not a valid identity store; restore it "
            f"(or delete the key {IDENTITIES_KEY} to start with no extra tokens, enrolments or claims)"
        ) from None


class RedisIdentityStore(IdentityStore):
    """:class:`~..identities.IdentityStore` kept in Redis (see the module docstring).

    :param url: the Redis URL (its password, if any, stays out of every message)
    :param confirm: wait for the replicas to apply each change before returning
    """

    def __init__(self, url: str, home: Path | None = None, *, confirm: bool = True) -> None:
        super().__init__(home)
        self.where = f"Redis at {redacted_url(url)}"
        self.confirm = confirm
        self.redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        #: replicas that heard the last change but did not confirm it in time
        self.unconfirmed = 0
        #: the version the last change wrote
        self.written = 0

    def __repr__(self) -> str:
        return f"RedisIdentityStore({self.where!r})"

    def close(self) -> None:
        self.redis.close()

    def _unreachable(self, exc: BaseException) -> BridgeUnavailableError:
        return BridgeUnavailableError(f"cannot reach {self.where} ({type(exc).__name__}: {exc}); is it running?")

    def stamp(self) -> tuple[int, int, int, int] | None:
        try:
            version = self.redis.get(IDENTITIES_VERSION)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None
        return (int(str(version)), 0, 0, 0) if version is not None else None

    def read(self) -> IdentityFile:
        try:
            text = self.redis.get(IDENTITIES_KEY)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None
        return parse_document(str(text) if text is not None else None, self.where)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_TTL_MS / 1000
        try:
            while not self.redis.set(IDENTITIES_LOCK, token, nx=True, px=LOCK_TTL_MS):
                if time.monotonic() > deadline:
                    raise BridgeUnavailableError(f"the identity document in {self.where} stayed locked by another editor; retry")
                time.sleep(0.02)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None
        try:
            yield
        finally:
            with contextlib.suppress(*_UNREACHABLE):
                self.redis.eval(_UNLOCK, 1, IDENTITIES_LOCK, token)

    def _write(self, data: IdentityFile) -> None:
        self.written = self._store(data)

    def _store(self, data: IdentityFile) -> int:
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(IDENTITIES_KEY, data.model_dump_json())
                pipe.incr(IDENTITIES_VERSION)
                _, version = pipe.execute()
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None
        return int(version)

    @contextlib.contextmanager
    def edit(self) -> Iterator[IdentityFile]:
        """Read, let the caller change, write back under the lock; then announce it."""
        self.written = 0
        with self._locked():
            data = self.read()
            yield data
            self._write(data)
        self._announce(self.written)

    def _announce(self, version: int) -> None:
        """Tell the replicas; with ``confirm``, wait until those listening applied it."""
        try:
            if not self.confirm:
                self.redis.publish(IDENTITIES_CHANNEL, str(version))
                return
            with self.redis.pubsub() as acks:
                acks.subscribe(IDENTITIES_ACK)
                acks.get_message(timeout=1.0)  # the subscription's own confirmation
                listening = int(self.redis.publish(IDENTITIES_CHANNEL, str(version)))
                applied: set[str] = set()
                deadline = time.monotonic() + CONFIRM_TIMEOUT
                while len(applied) < listening and (left := deadline - time.monotonic()) > 0:
                    message = acks.get_message(ignore_subscribe_messages=True, timeout=left)
                    if message is None:
                        continue
                    replica, _, seen = str(message["data"]).partition(" ")
                    if seen.isdigit() and int(seen) >= version:
                        applied.add(replica)
                self.unconfirmed = max(0, listening - len(applied))
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None

    def claim(self, name: str, owner: str) -> IdentityFile:
        """:meth:`IdentityStore.claim`, where the key ``local`` (each replica's own) always exists."""
        with self.edit() as data:
            if owner != LOCAL_KEY and data.key(owner) is None:
                raise NotFoundError(f"the endpoint key {owner!r} was revoked")
            held = data.claims.get(fold(name))
            if held is not None and held.owner != owner:
                raise ConflictError(f"the endpoint name {held.name!r} is claimed by another endpoint key")
            if held is None:
                data.claims[fold(name)] = ClaimRecord(name=name, owner=owner, claimed=_now())
        return data

    def ensure_local_key(self) -> Path:
        """A replica's local key stays in its HOME (:class:`SharedIdentities` adds it)."""
        return IdentityStore(self.home).ensure_local_key()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SharedIdentities:
    """The document a replica last loaded from Redis, plus its own local key (in memory).

    :meth:`stamp` and :meth:`read` never touch the network (the token check calls
    them on the event loop); :meth:`install` is how a loaded document arrives;
    :meth:`claim` runs in a thread (the Authenticator's) and talks to Redis.
    """

    def __init__(self, url: str, home: Path) -> None:
        self.writer = RedisIdentityStore(url, home, confirm=False)
        key_path = IdentityStore(home).ensure_local_key()
        secret = read_private_file(key_path)
        self._local = KeyRecord(name=LOCAL_KEY, sha256=digest(secret or secrets.token_hex(32)), created="")
        self.version: int | None = None
        #: what was installed: (version, digest of the document's text)
        self.tag: tuple[int, str | None] | None = None
        self.document = IdentityFile()
        self.where = self.writer.where

    def __repr__(self) -> str:
        return f"SharedIdentities({self.where!r}, version={self.version})"

    def close(self) -> None:
        self.writer.close()

    @staticmethod
    def _tag(version: int, text: str | None) -> tuple[int, str | None]:
        return version, hashlib.sha256(text.encode()).hexdigest() if text is not None else None

    def holds(self, version: int, text: str | None) -> bool:
        """Whether the document read from Redis (``text`` of ``version``) is the one in use."""
        return self._tag(version, text) == self.tag

    def install(self, version: int, document: IdentityFile, text: str | None = None) -> bool:
        """Use ``document`` as read from Redis (``text``: its JSON there); False if it is the
        one in use. Any difference counts, not only a higher version: Redis is the truth,
        and a restarted Redis counts its versions anew."""
        tag = self._tag(version, text)
        if tag == self.tag:
            return False
        self.version, self.tag, self.document = version, tag, document
        return True

    def stamp(self) -> Any:
        return self.tag

    def read(self) -> IdentityFile:
        data = self.document.model_copy(deep=True)
        data.endpoint_keys = [k for k in data.endpoint_keys if fold(k.name) != LOCAL_KEY]
        data.endpoint_keys.append(self._local)
        return data

    def claim(self, name: str, owner: str) -> IdentityFile:
        """Record a claim in Redis (in a thread); the document it wrote is used at once,
        and the next load from Redis replaces it (its text's digest is not known here)."""
        document = self.writer.claim(name, owner)
        if self.version is None or self.writer.written > self.version:
            self.install(self.writer.written, document)
        return self.read()
