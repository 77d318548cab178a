"""The endpoint directory on Redis: one owner replica per name, held as a lease.

The replica an endpoint registers with takes its name (:data:`~.redis_scripts.TAKE`):
at once when the name is free or held with the same endpoint key (a reconnecting
endpoint, on any replica), never when another key holds it. Each takeover moves the
name's *fence* (a counter) up. The owner renews its leases every ``ttl / 5``
seconds; a renewal that finds another replica (or another fence) in the lease means
the name was taken over: the owner closes its connection (4009, replaced) and stops
answering for it.

The owner also knows, from its own clock, until when its lease surely holds (the
time it *sent* the last take or renewal, plus the TTL, minus a margin): until then it
answers at once; after that (say it was paused past its lease) it asks Redis first
(:meth:`Directory.confirm`), so a stale owner never answers for a name it lost.

While Redis is unreachable a replica keeps its endpoints and accepts new ones
locally (fence 0, "pending"); when Redis is back the pending ones are taken and the
others renewed, and whichever lost its name meanwhile is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ...errors import ConflictError
from ..identities import fold
from ..registry import EndpointConnection
from .redis_scripts import (
    LIST,
    NAMES_KEY,
    RELEASE,
    RENEW,
    REPLICA_CHANNEL,
    TAKE,
    fence_key,
    info_key,
    lease_key,
)

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

__all__ = ["Directory"]

log = logging.getLogger(__name__)

#: the part of the TTL an owner does not count on (clock rates, the command's travel)
MARGIN = 0.1


class Directory:
    """Leases of the names of the endpoints connected to this replica."""

    def __init__(self, core: RedisBackplane, ttl: float) -> None:
        self.core = core
        self.ttl = ttl
        self.ttl_ms = max(1, int(ttl * 1000))
        self.trust = ttl * (1 - MARGIN)
        redis = core.redis
        self._take = redis.register_script(TAKE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self._list = redis.register_script(LIST)
        self.pending: set[asyncio.Task[None]] = set()
        #: connections whose take is on its way
        self.taking: set[EndpointConnection] = set()

    # -- taking, keeping and giving up names ------------------------------------------------
    def _args(self, conn: EndpointConnection) -> tuple[list[str], str, str]:
        folded = fold(conn.name)
        keys = [lease_key(folded), fence_key(folded), info_key(folded), NAMES_KEY]
        info = conn.info()
        info["replica"] = self.core.rid
        return keys, json.dumps(info), folded

    async def take(self, conn: EndpointConnection) -> None:
        """Take ``conn``'s name for this replica (pending while Redis is unreachable).

        :raises ConflictError: another endpoint key holds the name
        """
        conn.fence, conn.lease_until = 0, float("inf")  # pending: served locally until Redis says otherwise
        if not self.core.ok:
            return
        keys, info, folded = self._args(conn)
        sent = time.monotonic()
        self.taking.add(conn)  # (a renewal meanwhile would take it a second time, with another fence)
        try:
            status, fence, other = await self._take(keys=keys, args=[self.core.rid, conn.key, conn.connected_at, self.ttl_ms, info, folded])
        except self.core.unreachable as exc:
            self.core.failed(exc)
            return
        finally:
            self.taking.discard(conn)
        if not status:
            raise ConflictError(
                f"the endpoint name '{conn.name}' is held by another endpoint key on replica {other}; "
                "pick another name or stop the other endpoint",
                endpoint=conn.name,
            )
        self._held(conn, int(fence), sent)
        if other and other != self.core.rid:
            log.info("endpoint %s taken over from replica %s (fence %s)", conn.name, other, fence)
            # the previous owner lets go at once rather than at its next renewal
            await self.core.quietly(self.core.redis.publish(REPLICA_CHANNEL + str(other), f"L{fence} {folded}"))

    def _held(self, conn: EndpointConnection, fence: int, sent: float) -> None:
        conn.fence = fence
        conn.lease_until = sent + self.trust

    async def renew_all(self) -> None:
        """Renew every lease held here, take the pending ones; close what was lost.

        :raises redis.RedisError: Redis is unreachable (the session ends)
        """
        # (one still registering is taken by its registration: a renewal taking it too would race it)
        conns = [c for c in self.core.hooks.registry.endpoints.values() if c.ready and not c.closed and c not in self.taking]
        if not conns:
            return
        sent = time.monotonic()
        async with self.core.redis.pipeline(transaction=False) as pipe:
            for conn in conns:
                keys, info, folded = self._args(conn)
                args: list[str | int | float]
                if conn.fence:
                    args = [self.core.rid, conn.fence, self.ttl_ms, conn.key, conn.connected_at, info, folded]
                    await self._renew(keys=keys, args=args, client=pipe)
                else:
                    args = [self.core.rid, conn.key, conn.connected_at, self.ttl_ms, info, folded]
                    await self._take(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        for conn, result in zip(conns, results, strict=True):
            if conn.closed:
                continue
            if isinstance(result, list):  # a take: [status, fence, holder]
                fence = int(result[1]) if int(result[0]) else 0
            else:  # a renewal: the fence, 0 if lost
                fence = int(result)
            if fence:
                self._held(conn, fence, sent)
            else:
                await self.lost(conn, "another replica holds its name now")

    async def lost(self, conn: EndpointConnection, why: str) -> None:
        log.warning("endpoint %s: this replica no longer owns its name (%s): its connection is closed", conn.name, why)
        await self.core.hooks.replaced(conn, why)

    async def confirm(self, conn: EndpointConnection) -> bool:
        """After the lease ran out locally: renew it now; False (and closed) if it was lost."""
        if not self.core.ok or conn.closed:
            return not conn.closed
        keys, info, folded = self._args(conn)
        sent = time.monotonic()
        try:
            if conn.fence:
                fence = await self._renew(keys=keys, args=[self.core.rid, conn.fence, self.ttl_ms, conn.key, conn.connected_at, info, folded])
            else:
                await self.take(conn)
                return not conn.closed
        except self.core.unreachable as exc:
            self.core.failed(exc)
            return True  # degraded: keep serving the endpoints connected here
        if int(fence):
            self._held(conn, int(fence), sent)
            return True
        await self.lost(conn, "another replica took its name over")
        return False

    async def let_go(self, folded: str, fence: int) -> None:
        """Another replica announced it took ``folded`` with ``fence``: close ours if older."""
        conn = self.core.hooks.registry.endpoints.get(folded)
        if conn is not None and not conn.closed and conn.fence < fence:
            await self.lost(conn, "it registered again with another replica")

    def release(self, conn: EndpointConnection) -> None:
        if not conn.fence or not self.core.ok:
            return  # pending, or Redis is away: the lease runs out by itself
        folded = fold(conn.name)
        job = self._release(keys=[lease_key(folded), info_key(folded), NAMES_KEY], args=[self.core.rid, conn.fence, folded])
        task = asyncio.ensure_future(self.core.quietly(job))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    # -- looking names up ------------------------------------------------------------------------
    async def listing(self) -> list[dict[str, Any]]:
        """Infos of the endpoints other replicas hold (none while Redis is unreachable)."""
        if not self.core.ok:
            return []
        try:
            flat = await self._list(keys=[NAMES_KEY], args=[lease_key(""), info_key("")])
        except self.core.unreachable as exc:
            self.core.failed(exc)
            return []
        out = []
        for i in range(0, len(flat), 3):
            lease, info = json.loads(flat[i + 1]), flat[i + 2]
            if lease.get("replica") != self.core.rid and info:
                out.append(_remote(json.loads(info)))
        return out

    async def find(self, name: str) -> dict[str, Any] | None:
        """Info of ``name`` if another replica holds it.

        :raises OrbitError: 503 when Redis is unreachable (it may be held elsewhere)
        """
        self.core.require(f"look up endpoint '{name}'")
        folded = fold(name)
        try:
            lease, info = await self.core.redis.mget([lease_key(folded), info_key(folded)])
        except self.core.unreachable as exc:
            self.core.failed(exc)
            raise self.core.unavailable(f"look up endpoint '{name}'") from None
        if not lease or not info:
            return None
        return _remote(json.loads(info))


def _remote(info: dict[str, Any]) -> dict[str, Any]:
    info["alive"] = True
    info["inflight"] = 0  # counted by the owner, not known here
    return info

