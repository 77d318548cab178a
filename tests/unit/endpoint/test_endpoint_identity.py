"""EndpointAgent against a fake bridge: the caller's identity (``x-orbit-identity``) owns
sessions and their notifications, and the endpoint's limits hold over the wire."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

import pytest
from endpoint_fakes import FakeBridge
from fastapi import APIRouter

from radical.orbit.endpoint.agent import EndpointAgent
from radical.orbit.models.messages import IDENTITY_HEADER, PluginInfo, decode_body
from radical.orbit.models.messages import Response as ResponseFrame
from radical.orbit.plugins.base import Plugin, SessionRequest
from radical.orbit.plugins.registry import PluginEntry, discover_plugins


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    async def _with_timeout() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(_with_timeout())


def body_of(resp: ResponseFrame) -> Any:
    return json.loads(decode_body(resp.body, resp.body_encoding))


def post_as(bridge: FakeBridge, identity: str, route: str, **body: Any) -> Awaitable[ResponseFrame]:
    """A request as the bridge relays it: the caller's identity in the last header."""
    headers = [("content-type", "application/json"), ("x-request-id", "x"), (IDENTITY_HEADER, identity)]
    return bridge.request("POST", route, body=json.dumps(body).encode(), headers=headers)


class ShoutRequest(SessionRequest):
    size: int


class PluginShout(Plugin):
    """Notifies a payload of the size asked for."""

    name = "shout"

    def add_routes(self, router: APIRouter) -> None:
        @router.post("/shout")
        async def shout(req: ShoutRequest) -> dict[str, Any]:
            self.session(req.sid).notify("shout", {"text": "x" * req.size})
            return {"sent": True}


def test_sessions_and_their_notifications_belong_to_the_caller() -> None:
    async def main() -> None:
        async with FakeBridge() as bridge:
            agent = EndpointAgent(bridge.settings())
            task = asyncio.create_task(agent.run())
            await agent.wait_registered(5)
            opened = await post_as(bridge, "alice", "/sysinfo/register_session")
            sid = body_of(opened)["sid"]
            resp = await post_as(bridge, "alice", "/sysinfo/watch", sid=sid, interval=0.02, count=2)
            assert resp.status == 200
            notes = await bridge.wait_notifications(2)
            assert [(n.sid, n.topic, n.owner) for n in notes] == [(sid, "load", "alice")] * 2
            # bob holds the sid (it leaked): to him it does not exist
            for route, extra in (("/sysinfo/info", {}), ("/sysinfo/watch", {"interval": 1.0})):
                denied = await post_as(bridge, "bob", route, sid=sid, **extra)
                assert denied.status == 404 and body_of(denied)["code"] == "session_not_found"
            assert body_of(await post_as(bridge, "bob", "/sysinfo/unregister_session", sid=sid)) == {"closed": False}
            assert (await post_as(bridge, "alice", "/sysinfo/info", sid=sid)).status == 200
            agent.stop()
            await asyncio.wait_for(task, 10)

    run(main())


def test_the_session_cap_reaches_the_bridge_as_a_429() -> None:
    async def main() -> None:
        async with FakeBridge() as bridge:
            agent = EndpointAgent(bridge.settings(max_sessions_per_identity=2))
            task = asyncio.create_task(agent.run())
            await agent.wait_registered(5)
            for _ in range(2):
                assert (await post_as(bridge, "alice", "/sysinfo/register_session")).status == 200
            refused = await post_as(bridge, "alice", "/sysinfo/register_session")
            assert refused.status == 429 and "--max-sessions" in body_of(refused)["message"]
            assert (await post_as(bridge, "bob", "/sysinfo/register_session")).status == 200
            agent.stop()
            await asyncio.wait_for(task, 10)

    run(main())


def test_an_oversized_notification_is_never_sent(caplog: pytest.LogCaptureFixture) -> None:
    entries = discover_plugins(["sysinfo"]) + [PluginEntry("shout", PluginShout, PluginInfo(name="shout"))]

    async def main() -> None:
        async with FakeBridge() as bridge:
            agent = EndpointAgent(bridge.settings(plugins=None, max_notification_bytes=4096), entries)
            task = asyncio.create_task(agent.run())
            await agent.wait_registered(5)
            sid = body_of(await post_as(bridge, "alice", "/shout/register_session"))["sid"]
            assert (await post_as(bridge, "alice", "/shout/shout", sid=sid, size=5000)).status == 200
            assert (await post_as(bridge, "alice", "/shout/shout", sid=sid, size=10)).status == 200
            (note,) = await bridge.wait_notifications(1)
            assert note.payload == {"text": "x" * 10} and note.dropped == 1 and note.owner == "alice"
            agent.stop()
            await asyncio.wait_for(task, 10)

    with caplog.at_level(logging.WARNING, logger="radical.orbit.endpoint.notifications"):
        run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "radical.orbit.endpoint.notifications"]
    assert len(lines) == 1 and "shout/shout dropped" in lines[0] and "4096" in lines[0], lines
    assert "xxxx" not in lines[0]
