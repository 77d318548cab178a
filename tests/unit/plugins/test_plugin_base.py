"""plugins/base.py: sessions (404 unknown, 410 expired/closed, idle TTL), routes, notify."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from radical.orbit.endpoint.dispatch import build_scope, call_asgi
from radical.orbit.errors import UsageError
from radical.orbit.models.messages import Request
from radical.orbit.plugins.base import (
    Plugin,
    PluginContext,
    PluginSession,
    SessionRequest,
    to_completion,
)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str


class GreetRequest(SessionRequest):
    name: str


class GreeterSession(PluginSession):
    def __init__(self, plugin: Plugin, sid: str, greeting: str, closes: list[str]) -> None:
        super().__init__(plugin, sid)
        self.greeting = greeting
        self.closes = closes

    async def close(self) -> None:
        self.closes.append(self.sid)
        if self.greeting == "explode":
            raise RuntimeError("close failed")


class PluginGreeter(Plugin):
    name = "greeter"
    register_model = RegisterRequest

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.closes: list[str] = []

    async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
        assert isinstance(request, RegisterRequest)
        return GreeterSession(self, sid, request.greeting, self.closes)

    def add_routes(self, router: APIRouter) -> None:
        @router.post("/greet")
        async def greet(req: GreetRequest) -> dict[str, Any]:
            session = self.session(req.sid)
            assert isinstance(session, GreeterSession)
            session.notify("greeted", {"name": req.name})
            return {"text": f"{session.greeting}, {req.name}"}


async def call(plugin: Plugin, method: str, route: str, body: Any = None) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    headers = [("content-type", "application/json")] if body is not None else []
    frame = Request(id="r", method=method, path=f"/{plugin.name}{route}", headers=headers)
    status, _, out = await call_asgi(plugin.app, build_scope(frame, route), raw)
    return status, json.loads(out) if out else None


class Notes:
    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str, dict[str, Any]]] = []
        self.owners: list[str | None] = []

    def __call__(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None) -> None:
        self.items.append((plugin, sid, topic, payload))
        self.owners.append(owner)


def greeter() -> tuple[PluginGreeter, Notes]:
    notes = Notes()
    return PluginGreeter(PluginContext(endpoint="ep", notify=notes)), notes


class TestPluginBase:
    def test_session_round_trip_and_notify(self) -> None:
        async def main() -> None:
            plugin, notes = greeter()
            status, body = await call(plugin, "POST", "/register_session", {"greeting": "hi"})
            assert status == 200 and body["plugin"] == "greeter"
            sid = body["sid"]
            assert len(sid) >= 32  # token_urlsafe(24): 192 random bits
            status, body = await call(plugin, "POST", "/greet", {"sid": sid, "name": "ann"})
            assert (status, body) == (200, {"text": "hi, ann"})
            assert notes.items == [("greeter", sid, "greeted", {"name": "ann"})]
            status, body = await call(plugin, "GET", "/")
            assert status == 200 and body["sessions"] == 1 and body["endpoint"] == "ep"

        asyncio.run(main())

    def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_endpoint_itself(self) -> None:
        async def main() -> None:
            plugin, _ = greeter()
            sid = (await call(plugin, "POST", "/register_session", {"greeting": "hi"}))[1]["sid"]
            status, body = await call(plugin, "POST", "/greet/", {"sid": sid, "name": "ann"})
            assert status == 404 and body["code"] == "not_found", body

        asyncio.run(main())

    @pytest.mark.parametrize("escaped", [r"\ud800", r"ok\udcff.txt"])
    def test_text_that_utf8_cannot_carry_is_a_422_naming_the_field(self, escaped: str) -> None:
        """JSON can spell a lone surrogate (json.dumps does); it is refused before any plugin code runs."""

        async def main() -> None:
            plugin, _ = greeter()
            sid = (await call(plugin, "POST", "/register_session", {"greeting": "hi"}))[1]["sid"]
            raw = f'{{"sid": "{sid}", "name": "{escaped}"}}'.encode()
            frame = Request(id="r", method="POST", path="/greeter/greet", headers=[("content-type", "application/json")])
            status, _, out = await call_asgi(plugin.app, build_scope(frame, "/greet"), raw)
            body = json.loads(out)
            assert status == 422 and [f["field"] for f in body["details"]["fields"]] == ["name"], body
            assert "not valid Unicode" in body["message"]

        asyncio.run(main())

    def test_lone_surrogates_are_found_inside_lists_and_dicts(self) -> None:
        class Nested(SessionRequest):
            names: list[str]
            meta: dict[str, str] = {}  # noqa: RUF012 - pydantic copies field defaults

        with pytest.raises(PydanticValidationError, match=r"names\n.*not valid Unicode"):
            Nested.model_validate({"sid": "x", "names": ["a", "\udfff"]})
        with pytest.raises(PydanticValidationError, match=r"meta\n.*not valid Unicode"):
            Nested.model_validate({"sid": "x", "names": [], "meta": {"\ud800": "v"}})
        assert Nested.model_validate({"sid": "x", "names": ["café", "😀"]}).names == ["café", "😀"]

    def test_session_ids_are_unique(self) -> None:
        async def main() -> set[str]:
            plugin, _ = greeter()
            return {(await call(plugin, "POST", "/register_session", {"greeting": "x"}))[1]["sid"] for _ in range(50)}

        assert len(asyncio.run(main())) == 50

    def test_unknown_session_is_404_and_says_what_to_do(self) -> None:
        async def main() -> None:
            plugin, _ = greeter()
            status, body = await call(plugin, "POST", "/greet", {"sid": "nope-nope-nope", "name": "x"})
            assert status == 404 and body["code"] == "session_not_found"
            assert "register_session" in body["message"] and "greeter" in body["message"]
            assert "nope-nope-nope" not in body["message"]  # only a prefix of the id is shown

        asyncio.run(main())

    def test_closed_session_is_410(self) -> None:
        async def main() -> None:
            plugin, _ = greeter()
            sid = (await call(plugin, "POST", "/register_session", {"greeting": "hi"}))[1]["sid"]
            assert await call(plugin, "POST", "/unregister_session", {"sid": sid}) == (200, {"closed": True})
            assert plugin.closes == [sid]
            assert await call(plugin, "POST", "/unregister_session", {"sid": sid}) == (200, {"closed": False})
            status, body = await call(plugin, "POST", "/greet", {"sid": sid, "name": "x"})
            assert status == 410 and body["code"] == "session_expired" and "register_session again" in body["message"]

        asyncio.run(main())

    def test_idle_sessions_expire(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(PluginGreeter, "session_ttl", 0.05)
        monkeypatch.setattr(PluginGreeter, "reap_interval", 0.02)

        async def main() -> None:
            plugin, _ = greeter()
            await plugin.start()
            try:
                sid = (await call(plugin, "POST", "/register_session", {"greeting": "hi"}))[1]["sid"]
                await asyncio.sleep(0.2)
                assert plugin.closes == [sid] and not plugin.sessions
                status, body = await call(plugin, "POST", "/greet", {"sid": sid, "name": "x"})
                assert status == 410 and "expired" in body["message"]
            finally:
                await plugin.stop()

        asyncio.run(main())

    def test_validation_errors_name_the_field(self) -> None:
        async def main() -> None:
            plugin, _ = greeter()
            status, body = await call(plugin, "POST", "/register_session", {})
            assert status == 422 and body["code"] == "validation_error" and "greeting" in body["message"]
            status, body = await call(plugin, "POST", "/register_session", {"greeting": "x", "extra": 1})
            assert status == 422 and "extra" in body["message"]
            sid = (await call(plugin, "POST", "/register_session", {"greeting": "x"}))[1]["sid"]
            status, body = await call(plugin, "POST", "/greet", {"sid": sid})
            assert status == 422 and "name" in body["message"]
            status, body = await call(plugin, "POST", "/nosuchroute", {})
            assert status == 404 and "/nosuchroute" in body["message"]

        asyncio.run(main())

    def test_stop_closes_every_session_even_if_one_close_fails(self) -> None:
        async def main() -> None:
            plugin, _ = greeter()
            await plugin.start()
            sids = [(await call(plugin, "POST", "/register_session", {"greeting": g}))[1]["sid"] for g in ("explode", "ok")]
            await plugin.stop()
            assert sorted(plugin.closes) == sorted(sids) and not plugin.sessions
            status, _ = await call(plugin, "POST", "/greet", {"sid": sids[1], "name": "x"})
            assert status == 410

        asyncio.run(main())

    def test_notify_from_a_thread(self) -> None:
        plugin, notes = greeter()
        session = PluginSession(plugin, "s" * 32)
        thread = threading.Thread(target=session.notify, args=("t", {"k": 1}))
        thread.start()
        thread.join()
        assert notes.items == [("greeter", "s" * 32, "t", {"k": 1})]
        assert "s" * 32 not in repr(session)


def test_a_plugin_without_options_refuses_any() -> None:
    from radical.orbit.errors import UsageError

    assert PluginGreeter.validate_options({}) is None
    with pytest.raises(UsageError, match="plugin 'greeter' takes no options \\(got: a, b\\)"):
        PluginGreeter.validate_options({"b": 1, "a": 2})


class TestToCompletion:
    """to_completion(): work with effects elsewhere ends whole when its request is called off."""

    def test_the_work_goes_on_when_its_caller_is_cancelled(self) -> None:
        async def run() -> None:
            done = asyncio.Event()

            async def submit() -> str:
                await asyncio.sleep(0.05)
                done.set()
                return "task-1"

            caller = asyncio.create_task(to_completion(submit()))
            await asyncio.sleep(0.01)
            caller.cancel()
            await asyncio.wait([caller], timeout=1)
            assert caller.cancelled()
            await asyncio.wait_for(done.wait(), 1)  # the work ended all the same

        asyncio.run(run())

    def test_result_and_error_reach_a_caller_that_waits(self) -> None:
        async def run() -> None:
            async def ok() -> int:
                return 7

            async def fails() -> int:
                raise UsageError("bad input")

            assert await to_completion(ok()) == 7
            with pytest.raises(UsageError, match="bad input"):
                await to_completion(fails())

        asyncio.run(run())

    def test_an_abandoned_failure_is_not_reported_as_never_retrieved(self) -> None:
        seen: list[dict[str, Any]] = []

        async def run() -> None:
            asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: seen.append(ctx))

            async def fails() -> None:
                await asyncio.sleep(0.02)
                raise UsageError("late failure")

            caller = asyncio.create_task(to_completion(fails()))
            await asyncio.sleep(0.005)
            caller.cancel()
            await asyncio.sleep(0.1)

        asyncio.run(run())
        import gc

        gc.collect()
        assert seen == []
