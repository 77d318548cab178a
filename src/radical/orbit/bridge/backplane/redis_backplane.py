"""The Redis backplane: bridge replicas that share one Redis (``--redis URL``).

Imported only when the bridge is given a Redis URL, so a single bridge never loads
the ``redis`` package. Its parts, each in a module of its own:

* :mod:`.redis_directory`: who owns which endpoint name (leases, fencing);
* :mod:`.redis_forward`: requests for endpoints held by another replica;
* :mod:`.redis_events`: events through one Redis Stream (its ids are the SSE ids);
* :mod:`.redis_identities`: tokens, endpoint keys and name claims, shared.

A *session* is one stretch of working Redis: connect, subscribe to this replica's
channel and the identities channel, load the identities, read the events missed,
take or renew the leases, then run the loops (listen, read, flush, renew, poll)
until any of them fails. Then the replica is *degraded*: it says so (``/health``, one
log line), keeps relaying for the endpoints connected to it, refuses with a clear
503 what needs Redis (forwarding, claiming a name it has not seen, looking up other
replicas' endpoints), and starts a new session after a backoff, until one works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis import RedisError
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...backoff import Backoff
from ...errors import BridgeUnavailableError, OrbitError
from ...models.messages import Response
from ..registry import EndpointConnection
from ..settings import BridgeSettings
from ..stream_hub import StreamEventHub
from .base import Backplane, Hooks
from .cancelled import raise_if_cancelled
from .redis_directory import Directory
from .redis_events import EventPump
from .redis_forward import Forwarder
from .redis_identities import SharedIdentities, parse_document
from .redis_scripts import (
    IDENTITIES_ACK,
    IDENTITIES_CHANNEL,
    IDENTITIES_KEY,
    IDENTITIES_VERSION,
    SEED_IDENTITIES,
)
from .redis_url import redacted_url

__all__ = ["RedisBackplane", "SharedIdentities", "shared_identities"]

log = logging.getLogger(__name__)

#: seconds between looks at the identities' version (announcements make it instant;
#: this catches one missed while the subscription was being made)
IDENTITY_POLL = 1.0
#: seconds start() waits for the first session before serving anyway (degraded)
FIRST_SESSION_WAIT = 5.0


class RedisBackplane(Backplane):
    """Replicas sharing one Redis (see the module docstring).

    :param settings: the bridge's settings (``redis_url``, ``lease_ttl``, the event bounds)
    :param hub: this replica's event hub (fed from the stream)
    :param identities: what this replica's Authenticator reads
    """

    clustered = True
    unreachable = (RedisError, OSError, TimeoutError)

    def __init__(self, settings: BridgeSettings, hub: StreamEventHub, identities: SharedIdentities) -> None:
        assert settings.redis_url is not None
        url = settings.redis_url.get_secret_value()
        self.where = f"Redis at {redacted_url(url)}"
        #: this replica's id (random per process)
        self.rid = secrets.token_hex(6)
        self.replica = self.rid
        self.redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=max(5.0, 2 * settings.lease_ttl),
            retry=Retry(NoBackoff(), 0),  # failing fast is what tells us to go degraded
        )
        self.hub = hub
        self.identities = identities
        self.ok = False
        self.directory = Directory(self, settings.lease_ttl)
        self.forwarder = Forwarder(self)
        self.events = EventPump(self, hub, max_bytes=settings.event_buffer_bytes, max_entries=settings.event_buffer)
        self.publish = self.events.publish
        self.backoff = Backoff(0.2, 5.0)
        self._hooks: Hooks | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._session: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._identity_lock = asyncio.Lock()
        self._seed = self.redis.register_script(SEED_IDENTITIES)
        self._degraded_logged = False
        #: the current session got as far as serving
        self._served = False

    def __repr__(self) -> str:
        return f"RedisBackplane({self.where!r}, replica={self.rid!r}, ok={self.ok})"

    @property
    def hooks(self) -> Hooks:
        assert self._hooks is not None, "bind() the backplane to its bridge first"
        return self._hooks

    def bind(self, hooks: Hooks) -> None:
        self._hooks = hooks

    # -- life and health -------------------------------------------------------------------------
    async def start(self) -> None:
        log.info("bridge replica %s, backplane %s", self.rid, self.where)
        self._supervisor = asyncio.create_task(self._supervise(), name="orbit-backplane")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), FIRST_SESSION_WAIT)

    async def stop(self) -> None:
        for task in (self._supervisor, self._session):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)  # (how it ended was logged)
        self.forwarder.cancel_all()
        if self.ok:  # give our names up rather than let their leases run out
            for conn in list(self.hooks.registry.endpoints.values()):
                self.directory.release(conn)
            await asyncio.sleep(0)
            await asyncio.gather(*self.directory.pending, return_exceptions=True)
        self.ok = False
        await self.redis.aclose()
        self.identities.close()

    def health(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "degraded", "replica": self.rid, "redis": "ok" if self.ok else "unreachable"}

    def require(self, what: str) -> None:
        """Refuse at once (503) what needs Redis while it is unreachable."""
        if not self.ok:
            raise self.unavailable(what)

    def unavailable(self, what: str) -> OrbitError:
        return BridgeUnavailableError(
            f"{what}: this bridge replica cannot reach {self.where} (degraded); it still serves the endpoints "
            "connected to it. Retry, or use another replica",
            retry_after=1,
            redis="unreachable",
        )

    def failed(self, exc: BaseException) -> None:
        """A command failed for want of Redis: degraded now, a new session after a backoff."""
        self._degraded(exc)
        if self._session is not None and not self._session.done():
            self._session.cancel()

    async def quietly(self, job: Awaitable[Any]) -> None:
        """Run a command whose failure only matters as a sign that Redis is away."""
        try:
            await job
        except self.unreachable as exc:
            self.failed(exc)

    def _degraded(self, exc: BaseException) -> None:
        was = self.ok
        self.ok = False
        self.forwarder.fail_waiting()
        if was or not self._degraded_logged:
            self._degraded_logged = True
            log.warning(
                "replica %s DEGRADED: %s is unreachable (%s: %s); serving the endpoints connected here, "
                "retrying in the background",
                self.rid, self.where, type(exc).__name__, exc,
            )

    # -- sessions ---------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        while True:
            self._session = asyncio.create_task(self._run_session(), name="orbit-backplane-session")
            try:
                await self._session
            except asyncio.CancelledError:
                if self._supervisor is not None and self._supervisor.cancelling():
                    raise
            except Exception as exc:
                first = _first_cause(exc)
                if not isinstance(first, self.unreachable):  # a bug must not end the backplane: log it
                    log.error("backplane session failed", exc_info=first)
                self._degraded(first)
            self._first.set()
            attempt = 0 if self._served else attempt + 1  # a session that worked starts the backoff anew
            self._served = self.ok = False
            await asyncio.sleep(self.backoff.delay(attempt))

    async def _run_session(self) -> None:
        await self.redis.ping()
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.forwarder.channel, IDENTITIES_CHANNEL)
            await self._load_identities()
            await self.events.resync()
            self.ok = self._served = True
            await self.directory.renew_all()
            if self._degraded_logged:
                log.warning("replica %s recovered: %s is reachable again", self.rid, self.where)
            else:
                log.info("replica %s connected to %s", self.rid, self.where)
            self._degraded_logged = False
            self._first.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen(pubsub))
                group.create_task(self.events.read())
                group.create_task(self.events.flush())
                group.create_task(self._renew())
                group.create_task(self._poll_identities())
                group.create_task(self.forwarder.sweep())
        finally:
            with contextlib.suppress(*self.unreachable):
                await pubsub.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            raise_if_cancelled()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            data = str(message["data"])
            if message["channel"] == IDENTITIES_CHANNEL:
                await self._load_identities(ack=True)
            elif data.startswith("Q"):
                self.forwarder.requested(data)
            elif data.startswith("A"):
                self.forwarder.answered(data)
            elif data.startswith("L"):
                fence, _, folded = data[1:].partition(" ")
                if fence.isdigit():
                    await self.directory.let_go(folded, int(fence))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.directory.ttl / 5)
            await self.directory.renew_all()
            raise_if_cancelled()

    # -- identities -------------------------------------------------------------------------------
    async def _load_identities(self, *, ack: bool = False) -> bool:
        """Load the document if it changed and apply it; with ``ack`` (an announcement:
        a command waits for it) confirm it whether or not it was new here."""
        async with self._identity_lock:
            version_text, text = await self.redis.mget([IDENTITIES_VERSION, IDENTITIES_KEY])
            if version_text is None and self.identities.version:
                # Redis lost them (restarted without persistence): put back what we hold
                seeded = self.identities.document.model_dump_json()
                if await self._seed(keys=[IDENTITIES_VERSION, IDENTITIES_KEY], args=[self.identities.version, seeded]):
                    log.warning("identity document missing in %s (restarted empty?): restored from this replica", self.where)
                version_text, text = await self.redis.mget([IDENTITIES_VERSION, IDENTITIES_KEY])
            version = int(version_text) if version_text else 0
            text = str(text) if text is not None else None
            changed = False
            if not self.identities.holds(version, text):
                try:
                    document = parse_document(text, self.where)
                except OrbitError as exc:
                    log.error("identity document not reloaded (the previous one stays in force): %s", exc.message)
                    return False
                changed = self.identities.install(version, document, text)
                if changed and self._hooks is not None:
                    await self.hooks.identities_changed()
            if changed or ack:
                await self.redis.publish(IDENTITIES_ACK, f"{self.rid} {version}")
            return changed

    async def _poll_identities(self) -> None:
        while True:
            await asyncio.sleep(IDENTITY_POLL)
            await self._load_identities()
            raise_if_cancelled()

    async def sync_identities(self) -> bool:
        if not self.ok:
            return False
        try:
            return await self._load_identities()
        except self.unreachable as exc:
            self.failed(exc)
            return False

    # -- the seam -------------------------------------------------------------------------------
    async def claim(self, conn: EndpointConnection) -> None:
        await self.directory.take(conn)

    def release(self, conn: EndpointConnection) -> None:
        self.directory.release(conn)

    async def confirm(self, conn: EndpointConnection) -> bool:
        return await self.directory.confirm(conn)

    async def remote_endpoints(self) -> list[dict[str, Any]]:
        return await self.directory.listing()

    async def find(self, name: str) -> dict[str, Any] | None:
        return await self.directory.find(name)

    async def forward(self, endpoint: str, plugin: str, request_id: str, frame_text: str, timeout: float, what: str) -> Response:
        return await self.forwarder.forward(endpoint, plugin, request_id, frame_text, timeout, what)

    async def catch_up(self, last_event_id: str | None) -> None:
        if not last_event_id or not self.ok:
            return
        try:
            await self.events.catch_up()
        except self.unreachable as exc:
            self.failed(exc)


def _first_cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (a session's loops fail together)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def shared_identities(settings: BridgeSettings, home: Path) -> SharedIdentities:
    """The identities a clustered replica's Authenticator reads."""
    assert settings.redis_url is not None
    return SharedIdentities(settings.redis_url.get_secret_value(), home)

