"""The Explorer's routes of the globus plugin: sessions, login_start, login_finish.

The login store (:mod:`radical.orbit.plugins.globus.login`) alone, then the plugin's
ASGI app against an in-process emulator whose consent page approves by itself: the
endpoint runs the PKCE flow, the "browser" only follows the redirect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from radical.orbit.emulators.globus import (
    NATIVE_CLIENT_ID,
    TUTORIAL_1,
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)
from radical.orbit.errors import UsageError
from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.caller import calling_as, identity_in
from radical.orbit.plugins.globus.login import (
    LOGIN_LIFETIME,
    PER_IDENTITY,
    GlobusLogins,
    _is_emulator,
)
from radical.orbit.plugins.globus.plugin import PluginGlobus

MAPPED = "5b2c6f3e-9a51-4d2e-8f7a-3c1d0e9b7a11"
CALLBACK = "http://127.0.0.1:8000/ui/callback.html"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
class AsDispatched:
    """The plugin app as the endpoint's dispatcher runs it: the bridge's
    ``x-orbit-identity`` header is the current identity while it answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        with calling_as(identity_in(headers)):
            await self.app(scope, receive, send)


ALICE = {"x-orbit-identity": "alice"}
BOB = {"x-orbit-identity": "bob"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def start(logins: GlobusLogins, owner: str | None = "alice", **kwargs: Any) -> dict[str, str]:
    args: dict[str, Any] = {"owner": owner, "client_id": NATIVE_CLIENT_ID, "redirect_uri": CALLBACK, "scopes": [TRANSFER_ALL], "local_collection": None}
    args.update(kwargs)
    return logins.start(**args)


class TestLoginStore:
    def test_authorize_url_is_pkce_and_offline(self) -> None:
        logins = GlobusLogins("ep-1")
        out = start(logins)
        assert out["state"].startswith("ep-1.") and len(out["state"]) > 30
        query = parse_qs(urlsplit(out["authorize_url"]).query)
        assert query["client_id"] == [NATIVE_CLIENT_ID] and query["redirect_uri"] == [CALLBACK]
        assert query["state"] == [out["state"]] and query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
        assert query["access_type"] == ["offline"] and query["scope"] == [TRANSFER_ALL]
        pending = logins.take(out["state"], "alice")
        assert pending.verifier not in out["authorize_url"] and pending.verifier not in repr(pending)
        logins.close()

    def test_single_use_and_bound_to_its_identity(self) -> None:
        logins = GlobusLogins("ep")
        state = start(logins)["state"]
        with pytest.raises(UsageError) as info:
            logins.take(state, "bob")
        assert "start it again" in info.value.message
        with pytest.raises(UsageError):
            logins.take(state, None)
        assert logins.take(state, "alice").owner == "alice"  # bob's attempt left it in place
        with pytest.raises(UsageError):
            logins.take(state, "alice")

    def test_expires(self) -> None:
        clock = Clock()
        logins = GlobusLogins("ep", clock=clock)
        state = start(logins)["state"]
        clock.now += LOGIN_LIFETIME + 1
        with pytest.raises(UsageError):
            logins.take(state, "alice")
        assert len(logins) == 0

    def test_bounded_per_identity(self) -> None:
        logins = GlobusLogins("ep")
        states = [start(logins)["state"] for _ in range(PER_IDENTITY + 3)]
        other = start(logins, owner="bob")["state"]
        assert len(logins) == PER_IDENTITY + 1
        with pytest.raises(UsageError):
            logins.take(states[0], "alice")
        assert logins.take(states[-1], "alice") and logins.take(other, "bob")

    @pytest.mark.parametrize(
        ("url", "emulator"),
        [
            ("http://127.0.0.1:8700/", True),
            ("http://localhost:1/", True),
            ("http://[::1]:1/", True),
            ("https://auth.globus.org/", False),
            ("https://127.0.0.1:8700/", False),
            ("http://10.1.2.3/", False),
            ("http://auth.example/", False),
        ],
    )
    def test_is_emulator(self, url: str, emulator: bool) -> None:
        assert _is_emulator(url) is emulator


# -- the plugin's routes against an in-process emulator -----------------------------------
@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    root = tmp_path_factory.mktemp("explorer-login")
    settings = EmulatorSettings(
        root=root,
        auto_approve_login=True,
        collections=[
            {"id": MAPPED, "display_name": "Mapped (consent)", "entity_type": "GCSv5_mapped_collection", "requires_data_access": True, "root": str(root / "mapped"), "files": {"a.txt": "a"}},
            {"id": TUTORIAL_1, "display_name": "Tutorial", "root": str(root / "tut"), "files": {"home/share/godata/file1.txt": "1"}, "local": True},
        ],
    )
    running = run_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture
def sdk_env(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)


def run_with_plugin(plugin: PluginGlobus, body: Any) -> Any:
    async def go() -> Any:
        await plugin.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=AsDispatched(plugin.app)), base_url="http://plugin") as c:
                return await body(c)
        finally:
            await plugin.stop()

    return asyncio.run(go())


def browser_visit(authorize_url: str) -> dict[str, str]:
    """What the auto-approving authorize URL hands the callback page: its query."""
    resp = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert resp.status_code == 303, resp.text
    target = urlsplit(resp.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == CALLBACK
    return {key: values[0] for key, values in parse_qs(target.query).items()}


def new_plugin(recorder: Any, **options: Any) -> PluginGlobus:
    return PluginGlobus(PluginContext(endpoint="ep", notify=recorder, settings=options))


@pytest.mark.usefixtures("sdk_env")
class TestLoginRoutes:
    def test_login_opens_a_session_of_the_caller(self, recorder: Any) -> None:
        plugin = new_plugin(recorder)

        async def body(c: httpx.AsyncClient) -> None:
            r = await c.post("/login_start", json={"redirect_uri": CALLBACK, "local_collection": TUTORIAL_1}, headers=ALICE)
            assert r.status_code == 200, r.text
            started = r.json()
            assert set(started) == {"authorize_url", "state"} and started["state"].startswith("ep.")
            back = await asyncio.to_thread(browser_visit, started["authorize_url"])
            assert back["state"] == started["state"]
            # bob cannot finish alice's login, even with her code
            r = await c.post("/login_finish", json=back, headers=BOB)
            assert r.status_code == 400 and r.json()["details"]["field"] == "state"
            r = await c.post("/login_finish", json=back, headers=ALICE)
            assert r.status_code == 200, r.text
            done = r.json()
            assert set(done) == {"sid", "plugin", "auth_mode", "local_collection"}
            assert done["auth_mode"] == "refresh_token" and done["local_collection"] == TUTORIAL_1
            sid = done["sid"]
            r = await c.post("/ls", json={"sid": sid, "collection": "local", "path": "/home/share/godata/"}, headers=ALICE)
            assert r.status_code == 200 and [e["name"] for e in r.json()["DATA"]] == ["file1.txt"]
            # the same code again: the state is spent
            r = await c.post("/login_finish", json=back, headers=ALICE)
            assert r.status_code == 400
            # each identity sees its own sessions only; a register_session counts too
            r = await c.post("/register_session", json={"access_token": "bob-token-1234567890"}, headers=BOB)
            bob_sid = r.json()["sid"]
            mine = (await c.post("/sessions", json={}, headers=ALICE)).json()["sessions"]
            assert [s["sid"] for s in mine] == [sid]
            assert set(mine[0]) == {"sid", "auth_mode", "local_collection", "created", "tasks"} and mine[0]["tasks"] == []
            assert [s["sid"] for s in (await c.post("/sessions", json={}, headers=BOB)).json()["sessions"]] == [bob_sid]
            assert (await c.post("/sessions", json={})).json() == {"sessions": []}
            # a task shows in the session's listing (a reloaded page finds it there)
            r = await c.post(
                "/submit_transfer",
                json={"sid": sid, "source": "local", "destination": "local", "label": "copy",
                      "items": [{"source": "/home/share/godata/file1.txt", "destination": "/home/share/copy.txt"}]},
                headers=ALICE,
            )
            assert r.status_code == 200, r.text
            tasks = (await c.post("/sessions", json={}, headers=ALICE)).json()["sessions"][0]["tasks"]
            assert [(t["task_id"], t["label"], t["type"]) for t in tasks] == [(r.json()["task_id"], "copy", "TRANSFER")]
            r = await c.post("/sessions", json={"sid": sid}, headers=ALICE)
            assert r.status_code == 422

        run_with_plugin(plugin, body)

    def test_consent_scopes_then_login(self, recorder: Any) -> None:
        plugin = new_plugin(recorder)

        async def body(c: httpx.AsyncClient) -> None:
            first = (await c.post("/login_start", json={"redirect_uri": CALLBACK}, headers=ALICE)).json()
            back = await asyncio.to_thread(browser_visit, first["authorize_url"])
            sid = (await c.post("/login_finish", json=back, headers=ALICE)).json()["sid"]
            r = await c.post("/ls", json={"sid": sid, "collection": MAPPED, "path": "/"}, headers=ALICE)
            assert r.status_code == 401 and r.json()["code"] == "consent_required"
            scopes = r.json()["details"]["required_scopes"]
            assert scopes and all(MAPPED in s for s in scopes)
            again = (await c.post("/login_start", json={"redirect_uri": CALLBACK, "scopes": scopes}, headers=ALICE)).json()
            assert parse_qs(urlsplit(again["authorize_url"]).query)["scope"] == [" ".join(scopes)]
            back = await asyncio.to_thread(browser_visit, again["authorize_url"])
            sid2 = (await c.post("/login_finish", json=back, headers=ALICE)).json()["sid"]
            r = await c.post("/ls", json={"sid": sid2, "collection": MAPPED, "path": "/"}, headers=ALICE)
            assert r.status_code == 200 and [e["name"] for e in r.json()["DATA"]] == ["a.txt"]

        run_with_plugin(plugin, body)

    def test_bad_code_is_a_clear_401(self, recorder: Any) -> None:
        plugin = new_plugin(recorder)

        async def body(c: httpx.AsyncClient) -> None:
            started = (await c.post("/login_start", json={"redirect_uri": CALLBACK}, headers=ALICE)).json()
            r = await c.post("/login_finish", json={"state": started["state"], "code": "not-a-code"}, headers=ALICE)
            assert r.status_code == 401 and r.json()["code"] == "globus_auth_failed"
            assert "start the login again" in r.json()["message"] and "not-a-code" not in r.text

        run_with_plugin(plugin, body)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"redirect_uri": "http://127.0.0.1:8000/elsewhere"}, "redirect_uri"),
            ({"redirect_uri": "javascript:alert(1)//ui/callback.html"}, "redirect_uri"),
            ({"redirect_uri": CALLBACK + "?x=1"}, "redirect_uri"),
            ({"redirect_uri": CALLBACK + "#f"}, "redirect_uri"),
            ({"redirect_uri": "http://127.0.0.1:99999/ui/callback.html"}, "redirect_uri"),
            ({"redirect_uri": CALLBACK, "scopes": ["a b"]}, "scopes"),
            ({"redirect_uri": CALLBACK, "scopes": []}, "scopes"),
            ({"redirect_uri": CALLBACK, "local_collection": "nope"}, "local_collection"),
            ({"redirect_uri": CALLBACK, "extra": 1}, "extra"),
            ({}, "redirect_uri"),
        ],
    )
    def test_login_start_validation(self, recorder: Any, body: dict[str, Any], field: str) -> None:
        plugin = new_plugin(recorder)

        async def go(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post("/login_start", json=body, headers=ALICE)

        r = run_with_plugin(plugin, go)
        assert r.status_code == 422
        assert field in {f["field"].split(".")[0] for f in r.json()["details"]["fields"]}, r.text

    def test_login_finish_validation_never_echoes_the_code(self, recorder: Any) -> None:
        plugin = new_plugin(recorder)
        code = "secret-code with space"

        async def go(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post("/login_finish", json={"state": "ep.x", "code": code}, headers=ALICE)

        r = run_with_plugin(plugin, go)
        assert r.status_code == 422 and "code" in r.text and code not in r.text

    def test_option_names_the_client(self, recorder: Any) -> None:
        other = "0e5f1c2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
        plugin = new_plugin(recorder, login_client_id=other.upper())

        async def go(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post("/login_start", json={"redirect_uri": CALLBACK}, headers=ALICE)

        r = run_with_plugin(plugin, go)
        assert parse_qs(urlsplit(r.json()["authorize_url"]).query)["client_id"] == [other]
        with pytest.raises(UsageError) as info:
            new_plugin(recorder, login_client_id="nope")
        assert "login_client_id" in info.value.message


def test_real_globus_without_a_client_id_says_what_to_set(recorder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GLOBUS_SDK_SERVICE_URL_AUTH", "GLOBUS_SDK_SERVICE_URL_TRANSFER", "GLOBUS_SDK_ENVIRONMENT"):
        monkeypatch.delenv(key, raising=False)
    plugin = new_plugin(recorder)

    async def go(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post("/login_start", json={"redirect_uri": CALLBACK}, headers=ALICE)

    r = run_with_plugin(plugin, go)
    assert r.status_code == 400
    message = r.json()["message"]
    assert "-o globus.login_client_id=" in message and "/ui/callback.html" in message
