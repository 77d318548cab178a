"""The Redis backplane's Lua scripts against a real redis-server: leases and fencing,
forwarding's lookup-and-publish, the directory listing, the byte-bounded event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from radical.orbit.bridge.backplane import redis_scripts as rs
from radical.orbit.testing import RedisServer

NAME = "ep1"
KEYS = [rs.lease_key(NAME), rs.fence_key(NAME), rs.info_key(NAME), rs.NAMES_KEY]


Body = Callable[[aioredis.Redis, RedisServer], Awaitable[None]]


def with_redis(body: Body) -> Callable[[RedisServer], None]:
    """Run an async test body on a fresh event loop with a client of an emptied Redis."""

    def test(redis_url: str, redis_server: RedisServer) -> None:
        async def run() -> None:
            client = aioredis.Redis.from_url(redis_url, decode_responses=True)
            try:
                await body(client, redis_server)
            finally:
                await client.aclose()

        asyncio.run(run())

    test.__name__ = test.__qualname__ = body.__name__  # (not functools.wraps: pytest would read body's arguments)
    return test


async def take(r: aioredis.Redis, replica: str, key: str, ttl_ms: int = 5000) -> list[Any]:
    result: list[Any] = await r.register_script(rs.TAKE)(keys=KEYS, args=[replica, key, 1.5, ttl_ms, '{"name": "ep1"}', NAME])
    return result


async def renew(r: aioredis.Redis, replica: str, fence: int, key: str = "k1", ttl_ms: int = 5000) -> int:
    return int(await r.register_script(rs.RENEW)(keys=KEYS, args=[replica, fence, ttl_ms, key, 1.5, '{"name": "ep1"}', NAME]))


@with_redis
async def test_take_same_key_moves_the_fence_other_key_is_refused(r: aioredis.Redis, _server: RedisServer) -> None:
    assert await take(r, "A", "k1") == [1, 1, ""]
    lease = json.loads(await r.get(rs.lease_key(NAME)))
    assert lease == {"replica": "A", "fence": 1, "key": "k1", "since": 1.5}
    assert 0 < await r.pttl(rs.lease_key(NAME)) <= 5000 and await r.sismember(rs.NAMES_KEY, NAME)
    assert await take(r, "B", "k1") == [1, 2, "A"]  # a reconnecting endpoint, on another replica
    assert await take(r, "C", "other-key") == [0, 0, "B"]  # another identity never
    assert json.loads(await r.get(rs.lease_key(NAME)))["replica"] == "B"


@with_redis
async def test_renew_keeps_a_lease_and_tells_a_stale_owner(r: aioredis.Redis, _server: RedisServer) -> None:
    await take(r, "A", "k1")
    assert await renew(r, "A", 1) == 1
    await take(r, "B", "k1")  # B took over: fence 2
    assert await renew(r, "A", 1) == 0  # A is stale: it must let go
    assert await renew(r, "B", 2) == 2


@with_redis
async def test_renew_retakes_an_expired_lease_above_its_fence(r: aioredis.Redis, _server: RedisServer) -> None:
    await take(r, "A", "k1", ttl_ms=50)
    await asyncio.sleep(0.15)
    assert await r.get(rs.lease_key(NAME)) is None
    await r.delete(rs.fence_key(NAME))  # as after a Redis restart
    assert await renew(r, "A", 7) == 8
    assert json.loads(await r.get(rs.lease_key(NAME)))["fence"] == 8


@with_redis
async def test_release_only_by_the_holder(r: aioredis.Redis, _server: RedisServer) -> None:
    await take(r, "A", "k1")
    await take(r, "B", "k1")
    release = r.register_script(rs.RELEASE)
    keys = [rs.lease_key(NAME), rs.info_key(NAME), rs.NAMES_KEY]
    assert await release(keys=keys, args=["A", 1, NAME]) == 0
    assert await release(keys=keys, args=["B", 2, NAME]) == 1
    assert await r.get(rs.lease_key(NAME)) is None and not await r.sismember(rs.NAMES_KEY, NAME)


@with_redis
async def test_forward_publishes_to_the_owner_or_says_why_not(r: aioredis.Redis, redis_server: RedisServer) -> None:
    forward = r.register_script(rs.FORWARD)
    keys = [rs.lease_key(NAME)]
    assert await forward(keys=keys, args=[rs.REPLICA_CHANNEL, "Q..."]) == [-1, ""]  # nobody holds it
    await take(r, "A", "k1")
    assert await forward(keys=keys, args=[rs.REPLICA_CHANNEL, "Q..."]) == [0, "A"]  # A does not listen
    listener = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    async with listener.pubsub() as pubsub:
        await pubsub.subscribe(rs.REPLICA_CHANNEL + "A")
        assert await forward(keys=keys, args=[rs.REPLICA_CHANNEL, "Qhello"]) == [1, "A"]
        message = None
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
        assert message["data"] == "Qhello"
    await listener.aclose()


@with_redis
async def test_list_returns_live_leases_and_forgets_expired_ones(r: aioredis.Redis, _server: RedisServer) -> None:
    await take(r, "A", "k1")
    await r.sadd(rs.NAMES_KEY, "gone")
    flat = await r.register_script(rs.LIST)(keys=[rs.NAMES_KEY], args=[rs.lease_key(""), rs.info_key("")])
    assert flat[0] == NAME and json.loads(flat[1])["replica"] == "A" and json.loads(flat[2]) == {"name": "ep1"}
    assert len(flat) == 3 and await r.smembers(rs.NAMES_KEY) == {NAME}


@with_redis
async def test_event_stream_is_bounded_in_bytes_and_entries_and_records_its_floor(r: aioredis.Redis, _server: RedisServer) -> None:
    xadd = r.register_script(rs.XADD_BOUNDED)
    keys = [rs.EVENTS_KEY, rs.EVENTS_BYTES_KEY, rs.EVENTS_FLOOR_KEY, rs.NUMBERS_KEY]

    def event(size: int) -> list[str]:
        return ["notification", "ep1", "p", "t", "", "alice", "x" * size, "", "", ""]

    ids = await xadd(keys=keys, args=[1000, 100, *event(400), *event(400)])
    assert len(ids) == 2 and await r.xlen(rs.EVENTS_KEY) == 2 and await r.get(rs.EVENTS_FLOOR_KEY) is None
    more = await xadd(keys=keys, args=[1000, 100, *event(400)])  # 1200 bytes > 1000: the oldest goes
    assert await r.xlen(rs.EVENTS_KEY) == 2
    assert await r.get(rs.EVENTS_FLOOR_KEY) == ids[0] and int(await r.get(rs.EVENTS_BYTES_KEY)) == 800
    entries = await r.xrange(rs.EVENTS_KEY)
    assert [e[0] for e in entries] == [ids[1], more[0]]
    assert entries[0][1] == dict(zip(rs.EVENT_FIELDS, event(400)[:7], strict=True))
    # the entry bound, and one event larger than the byte bound is still kept (alone)
    await xadd(keys=keys, args=[1000, 1, *event(10)])
    assert await r.xlen(rs.EVENTS_KEY) == 1
    await xadd(keys=keys, args=[1000, 100, *event(5000)])
    assert await r.xlen(rs.EVENTS_KEY) == 1


@with_redis
async def test_a_numbered_notification_sent_again_is_not_appended_again(r: aioredis.Redis, _server: RedisServer) -> None:
    """A replica died before acknowledging: the endpoint sends the same numbers to another one."""
    xadd = r.register_script(rs.XADD_BOUNDED)
    keys = [rs.EVENTS_KEY, rs.EVENTS_BYTES_KEY, rs.EVENTS_FLOOR_KEY, rs.NUMBERS_KEY]

    def note(run: str, seq: int, endpoint: str = "ep1") -> list[str | int]:
        return [1000, 100, "notification", endpoint, "p", "t", "", "", f"{run}-{seq}", endpoint, run, str(seq)]

    first = [await xadd(keys=keys, args=note("r1", n)) for n in (1, 2, 3)]
    assert all(ids[0] for ids in first)
    # the resend: 2 and 3 are there already, 4 is new
    again = await xadd(keys=keys, args=[*note("r1", 2), *note("r1", 3)[2:], *note("r1", 4)[2:]])
    assert again[0] == "" and again[1] == "" and again[2]
    assert [fields["d"] for _id, fields in await r.xrange(rs.EVENTS_KEY)] == ["r1-1", "r1-2", "r1-3", "r1-4"]
    # a restarted endpoint process (a new run) counts from 1 again; other endpoints are apart
    assert (await xadd(keys=keys, args=note("r2", 1)))[0]
    assert (await xadd(keys=keys, args=note("r1", 1, endpoint="ep2")))[0]
    # un-numbered events are always appended
    plain = ["notification", "ep1", "p", "t", "", "", "plain", "", "", ""]
    assert all(await xadd(keys=keys, args=[1000, 100, *plain, *plain]))
    assert await r.xlen(rs.EVENTS_KEY) == 8
