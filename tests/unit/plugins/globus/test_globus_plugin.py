"""PluginGlobus through its ASGI app (in-process): routes, validation before Globus,
error rendering, enablement and the log redaction of credentials."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import httpx
import pytest
from fake_globus import BASE, FakeTransfer, mount

from radical.orbit.plugins.globus import redact
from radical.orbit.plugins.globus.plugin import PluginGlobus

U = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
TOKEN = "plugin-test-token-0123456789"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def client_for(plugin: PluginGlobus) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=plugin.app), base_url="http://plugin")


def test_routes_validation_and_errors(plugin: PluginGlobus, fake: FakeTransfer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", BASE)

    async def go() -> None:
        await plugin.start()
        async with await client_for(plugin) as c:
            r = await c.post("/register_session", json={"refresh_token": TOKEN})
            assert r.status_code == 422 and "client_id" in r.json()["message"]
            assert TOKEN not in r.text
            r = await c.post("/register_session", json={"access_token": TOKEN, "local_collection": U})
            assert r.status_code == 200, r.text
            sid = r.json()["sid"]
            mount(plugin.sessions[sid].tc, fake)  # type: ignore[attr-defined]
            r = await c.post("/submit_transfer", json={"sid": sid, "source": "nope", "destination": "local", "items": []})
            assert r.status_code == 422
            assert {f["field"] for f in r.json()["details"]["fields"]} == {"source", "items"}
            assert sum(fake.calls.values()) == 0  # rejected before Globus
            r = await c.post("/ls", json={"sid": sid, "collection": "local", "path": "/~/"})
            assert r.status_code == 200 and r.json()["endpoint"] == U
            # a field called "path" is named as such (it used to read 'body', like a location)
            for route, body, says in (
                ("/ls", {"sid": sid, "collection": "local", "path": 5}, "'path': Input should be a valid string"),
                ("/stat", {"sid": sid, "collection": "local"}, "'path': Field required"),
                ("/rename", {"sid": sid, "collection": "local", "oldpath": "/a", "newpath": ""}, "'newpath'"),
            ):
                r = await c.post(route, json=body)
                assert r.status_code == 422 and says in r.json()["message"], r.text
            r = await c.post("/ls", content=b'{"sid": ', headers={"content-type": "application/json"})
            assert r.status_code == 422 and r.json()["message"].startswith("invalid request: 'body': JSON decode error at character")
            r = await c.post("/get_task", json={"sid": sid, "task_id": "0d6e5b8e-0000-4000-8000-000000000000"})
            assert r.status_code == 404 and r.json()["code"] == "not_found"
            assert r.json()["details"]["globus_code"] == "TaskNotFound"
            r = await c.post("/submit_transfer", json={"sid": sid, "source": U, "destination": "local", "items": [{"source": "/a", "destination": "/b"}]})
            assert r.status_code == 200 and set(r.json()) >= {"task_id", "submission_id", "status"}
            # track: the timeout bounds the one-by-one look-ups of ids the task list does not show
            unknown = [f"0d6e5b8e-0000-4000-8000-00000000000{i}" for i in range(3)]
            r = await c.post("/track", json={"sid": sid, "task_ids": unknown, "timeout": 0})
            assert r.status_code == 200 and r.json()["unchecked"] == unknown and r.json()["not_found"] == [], r.text
            # text no UTF-8 request can carry is a 422 naming the field, not a 500 from deep inside
            r = await c.post("/ls", content=f'{{"sid": "{sid}", "collection": "local", "path": "/a\\ud800"}}'.encode(),
                             headers={"content-type": "application/json"})
            assert r.status_code == 422 and r.json()["details"]["fields"][0]["field"] == "path", r.text
            info = (await c.post("/session_info", json={"sid": sid})).json()
            assert info["auth_mode"] == "access_token" and info["local_source"] == "session" and info["tracked"] == 1
            r = await c.post("/ls", json={"sid": "nope"})
            assert r.status_code == 404 and r.json()["code"] == "session_not_found"
            assert (await c.post("/unregister_session", json={"sid": sid})).json() == {"closed": True}
            r = await c.post("/ls", json={"sid": sid})
            assert r.status_code == 410
        await plugin.stop()

    run(go())


def test_plugin_info_reports_local_collection(plugin: PluginGlobus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADICAL_ORBIT_GLOBUS_COLLECTION", U)

    async def go() -> None:
        await plugin.start()
        async with await client_for(plugin) as c:
            info = (await c.get("/")).json()
        assert info["local_collection"] == U and info["source"] == "env"
        await plugin.stop()

    run(go())


def test_disabled_without_globus_sdk() -> None:
    code = (
        "import sys; sys.modules['globus_sdk'] = None\n"
        "from radical.orbit.plugins.globus.plugin import PluginGlobus\n"
        "print(PluginGlobus.check_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "globus-sdk is not installed" in out and "radical.orbit[globus]" in out


def test_redactor_masks_registered_secrets() -> None:
    logger = logging.getLogger("test.redact")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(logging.Formatter().format(record))  # type: ignore[method-assign]
    logger.addHandler(handler)
    redact.install(logger)
    redact.REDACTOR.add(TOKEN)
    try:
        logger.warning("header Bearer %s sent", TOKEN)
        try:
            raise ValueError(f"boom {TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        redact.REDACTOR.remove(TOKEN)
        logger.removeHandler(handler)
    assert seen and all(TOKEN not in s for s in seen)
    assert "***" in seen[0]


def test_a_session_owns_a_tuned_client_and_releases_its_secrets_but_not_the_shared_pool(
    plugin: PluginGlobus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", BASE)

    def masked() -> bool:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "token %s", (TOKEN,), None)
        redact.REDACTOR.filter(record)
        return TOKEN not in record.getMessage()

    async def go() -> None:
        await plugin.start()
        async with await client_for(plugin) as c:
            r = await c.post("/register_session", json={"access_token": TOKEN, "local_collection": U})
            session = plugin.gsession(r.json()["sid"])
            assert masked()
            assert session.tc.transport.session.trust_env is False  # transport.tune_transport ran
            other = plugin.gsession((await c.post("/register_session", json={"access_token": TOKEN + "2"})).json()["sid"])
            assert other.executor is session.executor  # one pool for the plugin, not one per session
            assert (await c.post("/unregister_session", json={"sid": session.sid})).json() == {"closed": True}
            assert not masked()
            assert session.executor.submit(lambda: 42).result(timeout=10) == 42  # the others still use it
        await plugin.stop()
        with pytest.raises(RuntimeError, match="shutdown"):
            session.executor.submit(print)

    run(go())


def test_each_identity_has_its_own_share_of_the_pool_so_a_hung_one_starves_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions of one identity share one share of the plugin's pool; another identity
    has its own, and its calls run while the first one's hang on every thread it may use."""
    import threading

    from radical.orbit.plugins.base import PluginContext
    from radical.orbit.plugins.caller import calling_as

    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", BASE)
    plugin = PluginGlobus(PluginContext(endpoint="ep", notify=lambda *a: None, settings={"workers": 4}))
    hang = threading.Event()

    async def open_as(c: httpx.AsyncClient, who: str, token: str) -> Any:
        with calling_as(who):
            r = await c.post("/register_session", json={"access_token": token, "local_collection": U})
            assert r.status_code == 200, r.text
            return plugin.gsession(r.json()["sid"])

    async def go() -> None:
        await plugin.start()
        try:
            async with await client_for(plugin) as c:
                alice, alice2 = await open_as(c, "alice", TOKEN + "a"), await open_as(c, "alice", TOKEN + "a2")
                bob = await open_as(c, "bob", TOKEN + "b")
                assert alice.executor is alice2.executor and bob.executor is not alice.executor
                assert alice.executor.limit == 3  # 4 workers: all but one
                loop = asyncio.get_running_loop()
                stuck = [loop.run_in_executor(alice.executor, hang.wait, 30) for _ in range(5)]
                assert await asyncio.wait_for(loop.run_in_executor(bob.executor, lambda: "bob answered"), 30) == "bob answered"
                assert not any(f.done() for f in stuck) and alice.executor.waiting == 2
                hang.set()
                assert await asyncio.gather(*stuck) == [True] * 5
        finally:
            hang.set()
            await plugin.stop()

    run(go())


def test_a_new_session_that_replaces_one_takes_its_tasks_and_tells_nothing_twice(
    plugin: PluginGlobus, fake: FakeTransfer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token renewal: the old session's tasks move over with their last told state; the
    old one is closed; a task it saw end is neither fetched nor told again."""
    from radical.orbit.plugins.caller import calling_as

    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", BASE)
    recorder = plugin.ctx.notify
    item = {"source": "/a", "destination": "/b"}

    async def go() -> None:
        await plugin.start()
        try:
            await handover()
        finally:
            await plugin.stop()  # no poller left behind on an unmounted client

    async def handover() -> None:
        async with await client_for(plugin) as c:
            old = (await c.post("/register_session", json={"access_token": TOKEN, "local_collection": U})).json()["sid"]
            mount(plugin.gsession(old).tc, fake)
            done = (await c.post("/submit_transfer", json={"sid": old, "source": U, "destination": "local", "items": [item]})).json()["task_id"]
            running = (await c.post("/submit_transfer", json={"sid": old, "source": U, "destination": "local", "items": [item]})).json()["task_id"]
            fake.set(done, status="SUCCEEDED")
            r = await c.post("/task_wait", json={"sid": old, "task_id": done, "timeout": 5, "polling_interval": 0.1})
            assert r.json()["status"] == "SUCCEEDED"
            told = len(recorder.events)  # type: ignore[attr-defined]
            calls = dict(fake.calls)
            # another identity cannot hand over (or close) this identity's session
            with calling_as("mallory"):
                r = await c.post("/register_session", json={"access_token": TOKEN + "m", "replaces": old})
                assert r.status_code == 200 and old in plugin.sessions
                assert len(plugin.gsession(r.json()["sid"]).tracker.tasks) == 0
            r = await c.post("/register_session", json={"access_token": TOKEN + "2", "replaces": old, "track": [done, running]})
            assert r.status_code == 200, r.text
            new = r.json()["sid"]
            session = plugin.gsession(new)
            mount(session.tc, fake)
            assert set(session.tracker.tasks) == {done, running}
            assert (await c.post("/ls", json={"sid": old, "collection": "local"})).status_code == 410
            assert len(recorder.events) == told and dict(fake.calls) == calls  # nothing told, nothing fetched
            r = await c.post("/track", json={"sid": new, "task_ids": [done]})
            assert r.json()["finished"] == {done: "SUCCEEDED"} and dict(fake.calls) == calls
            fake.set(running, status="SUCCEEDED")
            r = await c.post("/task_wait", json={"sid": new, "task_id": running, "timeout": 5, "polling_interval": 0.1})
            assert r.json()["status"] == "SUCCEEDED"
            ends = [(sid, p["task_id"]) for (_, sid, t, p) in recorder.events if t == "transfer_status" and p["status"] == "SUCCEEDED"]  # type: ignore[attr-defined]
            assert ends == [(old, done), (new, running)]
            # a sid the endpoint does not know (it restarted) is no reason to refuse
            r = await c.post("/register_session", json={"access_token": TOKEN + "3", "replaces": "gone-after-a-restart"})
            assert r.status_code == 200
            r = await c.post("/register_session", json={"access_token": TOKEN + "3", "replaces": "x" * 200})
            assert r.status_code == 422 and "replaces" in r.text

    run(go())
