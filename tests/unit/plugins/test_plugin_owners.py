"""Sessions belong to the identity that opened them; each identity's sessions are capped.

The identity is what the bridge names in ``x-orbit-identity``; the dispatcher makes it
current for the request (tests here set it the same way, or through the dispatcher).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from radical.orbit.endpoint.dispatch import (
    Dispatcher,
    HostedPlugin,
    build_scope,
    call_asgi,
)
from radical.orbit.errors import UpstreamError
from radical.orbit.models.messages import IDENTITY_HEADER, Request, decode_body
from radical.orbit.plugins.base import (
    DEFAULT_MAX_SESSIONS,
    Plugin,
    PluginContext,
    PluginSession,
    SessionRequest,
)
from radical.orbit.plugins.caller import calling_as, current_identity, identity_in


class PingRequest(SessionRequest):
    pass


class PluginOwned(Plugin):
    name = "owned"

    async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
        await asyncio.sleep(0)  # an await inside: concurrent opens interleave here
        return PluginSession(self, sid)

    def add_routes(self, router: APIRouter) -> None:
        @router.post("/ping")
        async def ping(req: PingRequest) -> dict[str, Any]:
            session = self.session(req.sid)
            session.notify("pinged", {"by": current_identity()})
            return {"owner": session.owner}


class Notes:
    def __init__(self) -> None:
        self.items: list[tuple[str | None, str, str | None]] = []

    def __call__(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None) -> None:
        self.items.append((sid, topic, owner))


def make(max_sessions: int = DEFAULT_MAX_SESSIONS) -> tuple[PluginOwned, Notes]:
    notes = Notes()
    ctx = PluginContext(endpoint="ep", notify=notes, max_sessions_per_identity=max_sessions)
    return PluginOwned(ctx), notes


async def call(plugin: Plugin, route: str, body: Any, identity: str | None) -> tuple[int, dict[str, Any]]:
    """POST ``route`` as ``identity`` (None: no identity named, as a direct call)."""
    frame = Request(id="r", method="POST", path=f"/{plugin.name}{route}", headers=[("content-type", "application/json")])
    with calling_as(identity):
        status, _, out = await call_asgi(plugin.app, build_scope(frame, route), json.dumps(body).encode())
    return status, json.loads(out)


async def register(plugin: Plugin, identity: str | None) -> str:
    status, body = await call(plugin, "/register_session", {}, identity)
    assert status == 200, body
    return str(body["sid"])


def without_ids(answer: dict[str, Any], sid: str) -> dict[str, Any]:
    """The answer with what differs between two requests (the sid's prefix, the request id) masked."""
    out = dict(answer, request_id=None)
    out["message"] = answer["message"].replace(sid[:8], "<sid>")
    return out


def test_a_session_of_another_identity_is_exactly_an_unknown_one() -> None:
    async def main() -> None:
        plugin, _ = make()
        sid = await register(plugin, "alice")
        assert await call(plugin, "/ping", {"sid": sid}, "alice") == (200, {"owner": "alice"})
        unknown = "Z" * len(sid)
        for stranger in ("bob", None, "Alice", "alice "):
            status, theirs = await call(plugin, "/ping", {"sid": sid}, stranger)
            status_unknown, nobodys = await call(plugin, "/ping", {"sid": unknown}, stranger)
            assert status == status_unknown == 404 and theirs["code"] == "session_not_found", theirs
            assert without_ids(theirs, sid) == without_ids(nobodys, unknown)
        assert sid in plugin.sessions  # still there, still alice's
        assert (await call(plugin, "/ping", {"sid": sid}, "alice"))[0] == 200

    asyncio.run(main())


def test_no_identity_is_an_identity_of_its_own() -> None:
    async def main() -> None:
        plugin, _ = make()
        mine = await register(plugin, None)
        assert (await call(plugin, "/ping", {"sid": mine}, None))[0] == 200
        assert (await call(plugin, "/ping", {"sid": mine}, "alice"))[0] == 404

    asyncio.run(main())


def test_unregister_by_another_identity_closes_nothing_and_reveals_nothing() -> None:
    async def main() -> None:
        plugin, _ = make()
        sid = await register(plugin, "alice")
        assert await call(plugin, "/unregister_session", {"sid": sid}, "bob") == (200, {"closed": False})
        assert await call(plugin, "/unregister_session", {"sid": "Z" * len(sid)}, "bob") == (200, {"closed": False})
        assert (await call(plugin, "/ping", {"sid": sid}, "alice"))[0] == 200
        assert await call(plugin, "/unregister_session", {"sid": sid}, "alice") == (200, {"closed": True})

    asyncio.run(main())


def test_a_closed_session_is_410_to_its_owner_and_404_to_anyone_else() -> None:
    async def main() -> None:
        plugin, _ = make()
        sid = await register(plugin, "alice")
        await call(plugin, "/unregister_session", {"sid": sid}, "alice")
        status, body = await call(plugin, "/ping", {"sid": sid}, "alice")
        assert status == 410 and body["code"] == "session_expired"
        status, body = await call(plugin, "/ping", {"sid": sid}, "bob")
        assert status == 404 and body["code"] == "session_not_found"

    asyncio.run(main())


def test_notifications_of_a_session_name_its_owner() -> None:
    async def main() -> None:
        plugin, notes = make()
        sid = await register(plugin, "alice")
        await call(plugin, "/ping", {"sid": sid}, "alice")
        plugin.notify("by-sid", {}, sid=sid)  # the plugin names the sid: the owner is looked up
        plugin.notify("everyone", {})
        assert notes.items == [(sid, "pinged", "alice"), (sid, "by-sid", "alice"), (None, "everyone", None)]
        session = plugin.sessions[sid]
        await plugin.close_session(sid)
        session.notify("last-words", {})  # a closing session's last notifications keep their owner
        plugin.notify("after", {}, sid=sid)
        assert notes.items[-2:] == [(sid, "last-words", "alice"), (sid, "after", "alice")]

    asyncio.run(main())


def test_plugin_info_counts_the_callers_own_sessions() -> None:
    async def main() -> None:
        plugin, _ = make()
        for _ in range(3):
            await register(plugin, "alice")
        await register(plugin, "bob")
        frame = Request(id="r", method="GET", path="/owned/")
        for who, count in (("alice", 3), ("bob", 1), ("carol", 0)):
            with calling_as(who):
                _, _, out = await call_asgi(plugin.app, build_scope(frame, "/"), b"")
            assert json.loads(out)["sessions"] == count, who

    asyncio.run(main())


class TestSessionCap:
    def test_past_the_cap_a_429_names_the_limit_and_how_to_free_sessions(self) -> None:
        async def main() -> None:
            plugin, _ = make(max_sessions=3)
            sids = [await register(plugin, "alice") for _ in range(3)]
            status, body = await call(plugin, "/register_session", {}, "alice")
            assert status == 429 and body["code"] == "rate_limited", body
            message = body["message"]
            assert "3" in message and "--max-sessions" in message and "unregister_session" in message, message
            assert "'alice'" in message and "'owned'" in message
            assert body["details"]["limit"] == 3
            # another identity is not affected
            assert len({await register(plugin, "bob") for _ in range(3)}) == 3
            # closing one frees a place; so does an idle session being reaped
            await call(plugin, "/unregister_session", {"sid": sids[0]}, "alice")
            await register(plugin, "alice")
            assert (await call(plugin, "/register_session", {}, "alice"))[0] == 429
            await plugin.close_session(sids[1])
            await register(plugin, "alice")
            assert plugin.held("alice") == 3 and plugin.held("bob") == 3

        asyncio.run(main())

    def test_concurrent_opens_do_not_overshoot(self) -> None:
        async def main() -> None:
            plugin, _ = make(max_sessions=5)
            results = await asyncio.gather(*(call(plugin, "/register_session", {}, "alice") for _ in range(20)))
            statuses = sorted(status for status, _ in results)
            assert statuses == [200] * 5 + [429] * 15
            assert len(plugin.sessions) == 5 and plugin.held("alice") == 5

        asyncio.run(main())

    def test_a_failed_open_gives_its_place_back(self) -> None:
        class PluginFailing(PluginOwned):
            name = "failing"

            async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
                raise UpstreamError("the service refused the credential")

        async def main() -> None:
            plugin = PluginFailing(PluginContext(endpoint="ep", notify=Notes(), max_sessions_per_identity=1))
            for _ in range(3):
                assert (await call(plugin, "/register_session", {}, "alice"))[0] == 502
            assert plugin.held("alice") == 0

        asyncio.run(main())

    def test_stop_releases_every_place(self) -> None:
        async def main() -> None:
            plugin, _ = make(max_sessions=2)
            await plugin.start()
            await register(plugin, "alice")
            await register(plugin, "bob")
            await plugin.stop()
            assert plugin.held("alice") == plugin.held("bob") == 0

        asyncio.run(main())


class TestDispatcherIdentity:
    """The dispatcher makes the bridge's ``x-orbit-identity`` the current identity."""

    @staticmethod
    async def handle(dispatcher: Dispatcher, route: str, body: Any, headers: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        frame = Request(
            id="r", method="POST", path=f"/owned{route}", headers=[("content-type", "application/json"), *headers],
            body=json.dumps(body),
        )
        response = await dispatcher.handle(frame)
        return response.status, json.loads(decode_body(response.body, response.body_encoding))

    def test_sessions_follow_the_header(self) -> None:
        async def main() -> None:
            plugin, notes = make()
            dispatcher = Dispatcher({"owned": HostedPlugin("owned", plugin.app)})
            alice, bob = [(IDENTITY_HEADER, "alice")], [("X-Orbit-Identity", "bob")]
            _, body = await self.handle(dispatcher, "/register_session", {}, alice)
            sid = body["sid"]
            assert await self.handle(dispatcher, "/ping", {"sid": sid}, alice) == (200, {"owner": "alice"})
            assert (await self.handle(dispatcher, "/ping", {"sid": sid}, bob))[0] == 404
            assert (await self.handle(dispatcher, "/ping", {"sid": sid}, []))[0] == 404
            assert notes.items == [(sid, "pinged", "alice")]
            assert current_identity() is None  # nothing leaks out of a request

        asyncio.run(main())

    def test_the_bridges_header_is_the_last_one(self) -> None:
        """The bridge drops a client's own and appends its header last; the last one counts."""
        assert identity_in([("x-orbit-identity", "mallory"), ("x-request-id", "1"), ("x-orbit-identity", "alice")]) == "alice"
        assert identity_in([("X-ORBIT-IDENTITY", "alice")]) == "alice"
        assert identity_in([("x-orbit-identity-extra", "alice"), ("content-type", "x")]) is None
        assert identity_in([]) is None

    def test_concurrent_requests_keep_their_own_identity(self) -> None:
        async def main() -> None:
            plugin, _ = make()
            dispatcher = Dispatcher({"owned": HostedPlugin("owned", plugin.app)})
            names = [f"user{i}" for i in range(20)]
            opened = await asyncio.gather(
                *(self.handle(dispatcher, "/register_session", {}, [(IDENTITY_HEADER, n)]) for n in names)
            )
            sids = [body["sid"] for _, body in opened]
            pings = await asyncio.gather(
                *(self.handle(dispatcher, "/ping", {"sid": sid}, [(IDENTITY_HEADER, n)]) for sid, n in zip(sids, names, strict=True))
            )
            assert [body["owner"] for _, body in pings] == names

        asyncio.run(main())


def test_the_not_found_message_shows_only_a_prefix_of_the_sid() -> None:
    async def main() -> None:
        plugin, _ = make()
        sid = await register(plugin, "alice")
        _, body = await call(plugin, "/ping", {"sid": sid}, "bob")
        assert sid not in body["message"] and re.search(re.escape(sid[:8]) + r"\.\.\.", body["message"])

    asyncio.run(main())
