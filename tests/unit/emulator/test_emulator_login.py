"""Browser login (authorization code + PKCE) through the real globus-sdk login clients.

The SDK builds the authorize URL and exchanges the code; a stand-in browser
(:mod:`login_browser`) loads the consent page and presses its buttons; the tokens are
then used with TransferClient and renewed by RefreshTokenAuthorizer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import globus_sdk
import httpx
import pytest
from globus_sdk.services.auth import OAuthAuthorizationCodeResponse
from login_browser import login, read_page, redirect_query

from radical.orbit.emulators.globus import (
    DEV_IDENTITY_ID,
    NATIVE_CLIENT_ID,
    TUTORIAL_1,
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)

MAPPED = "5b2c6f3e-9a51-4d2e-8f7a-3c1d0e9b7a11"
CLIENT_ID = "2c6d7e8f-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
SECRET = "k" * 44
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
MAPPED_SCOPE = f"{TRANSFER_ALL}[*https://auth.globus.org/scopes/{MAPPED}/data_access]"
CALLBACK = "http://127.0.0.1:9/orbit/callback"
VERIFIER = "v" * 43 + "-orbit.explorer~test_verifier"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    root = tmp_path_factory.mktemp("loginroot")
    settings = EmulatorSettings(
        root=root,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        collections=[
            {"id": MAPPED, "display_name": "Mapped (consent)", "entity_type": "GCSv5_mapped_collection", "requires_data_access": True, "root": str(root / "mapped"), "files": {"a.txt": "a"}},
            {"id": TUTORIAL_1, "display_name": "Tutorial", "root": str(root / "tut"), "files": {"home/share/godata/file1.txt": "1"}, "local": True},
        ],
    )
    running = run_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def env(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GLOBUS_SDK_HTTP_TIMEOUT", "20")


def native(**flow: Any) -> tuple[globus_sdk.NativeAppAuthClient, str]:
    """A native client with a started flow and its authorize URL."""
    ac = globus_sdk.NativeAppAuthClient(NATIVE_CLIENT_ID)
    params = {"requested_scopes": TRANSFER_ALL, "redirect_uri": CALLBACK, "verifier": VERIFIER, "refresh_tokens": True, "state": "orbit-state"}
    ac.oauth2_start_flow(**{**params, **flow})
    return ac, ac.oauth2_get_authorize_url()


def confidential(**flow: Any) -> tuple[globus_sdk.ConfidentialAppAuthClient, str]:
    cc = globus_sdk.ConfidentialAppAuthClient(CLIENT_ID, SECRET)
    params = {"redirect_uri": CALLBACK, "requested_scopes": TRANSFER_ALL, "refresh_tokens": True, "state": "orbit-state"}
    cc.oauth2_start_flow(**{**params, **flow})
    return cc, cc.oauth2_get_authorize_url()


def code_of(url: str) -> str:
    query = redirect_query(login(url))
    assert query["state"] == "orbit-state"
    return query["code"]


def token_posts(emu: RunningEmulator) -> int:
    return int(emu.admin("GET", "counters")["counters"].get("POST /v2/oauth2/token", 0))


def transfer_tokens(tokens: OAuthAuthorizationCodeResponse) -> dict[str, Any]:
    data: dict[str, Any] = tokens.by_resource_server["transfer.api.globus.org"]
    return data


def invalid_grant(call: Any) -> str:
    """The error_description of the invalid_grant ``call`` raises (401, as Globus answers)."""
    with pytest.raises(globus_sdk.AuthAPIError) as info:
        call()
    err = info.value
    assert err.http_status == 401 and err.raw_json is not None and err.raw_json["error"] == "invalid_grant", err.raw_json
    return str(err.raw_json["error_description"])


class TestFullFlows:
    def test_native_app_login_then_transfer_and_refresh(self, emu: RunningEmulator) -> None:
        ac, url = native()
        assert url.startswith(emu.url + "/v2/oauth2/authorize?")
        tokens = ac.oauth2_exchange_code_for_tokens(code_of(url))
        tt = transfer_tokens(tokens)
        assert tt["refresh_token"] and tt["scope"] == TRANSFER_ALL and tokens["state"] == "orbit-state"
        assert "id_token" not in tokens.data
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(tt["access_token"]))
        assert [f["name"] for f in tc.operation_ls(TUTORIAL_1, path="/home/share/godata/")] == ["file1.txt"]
        intro = globus_sdk.ConfidentialAppAuthClient(CLIENT_ID, SECRET).oauth2_token_introspect(tt["access_token"])
        assert intro["sub"] == DEV_IDENTITY_ID and intro["client_id"] == NATIVE_CLIENT_ID
        # the refresh token renews the access token once the emulator kills it
        authorizer = globus_sdk.RefreshTokenAuthorizer(tt["refresh_token"], ac, access_token=tt["access_token"], expires_at=tt["expires_at_seconds"])
        rtc = globus_sdk.TransferClient(authorizer=authorizer)
        before = token_posts(emu)
        emu.admin("POST", "expire_tokens")
        assert rtc.get_endpoint(TUTORIAL_1)["id"] == TUTORIAL_1
        assert token_posts(emu) == before + 1 and authorizer.access_token != tt["access_token"]

    def test_confidential_app_login_then_transfer_and_refresh(self, emu: RunningEmulator) -> None:
        cc, url = confidential()
        assert "code_challenge" not in url  # the SDK's confidential flow sends no PKCE
        tokens = cc.oauth2_exchange_code_for_tokens(code_of(url))
        tt = transfer_tokens(tokens)
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.RefreshTokenAuthorizer(tt["refresh_token"], cc))
        assert tc.operation_stat(TUTORIAL_1, path="/home/share/godata/file1.txt")["size"] == 1
        assert cc.oauth2_token_introspect(tt["access_token"])["client_id"] == CLIENT_ID

    def test_confidential_app_with_pkce(self, emu: RunningEmulator) -> None:
        """A web app adds PKCE to its confidential flow through the SDK's public hooks."""
        from radical.orbit.emulators.globus.logins import pkce_challenge

        cc, _ = confidential()
        url = cc.oauth2_get_authorize_url(query_params={"code_challenge": pkce_challenge(VERIFIER), "code_challenge_method": "S256"})

        def exchange(code: str, **extra: str) -> OAuthAuthorizationCodeResponse:
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, **extra}
            return cc.oauth2_token(form, response_class=OAuthAuthorizationCodeResponse)

        assert "verifier" in invalid_grant(lambda: exchange(code_of(url)))
        tokens = exchange(code_of(url), code_verifier=VERIFIER)
        assert transfer_tokens(tokens)["access_token"]

    def test_online_access_gets_no_refresh_token(self) -> None:
        ac, url = native(refresh_tokens=False, requested_scopes=f"openid profile email {TRANSFER_ALL}")
        tokens = ac.oauth2_exchange_code_for_tokens(code_of(url))
        assert set(tokens.by_resource_server) == {"auth.globus.org", "transfer.api.globus.org"}
        assert all(t["refresh_token"] is None for t in tokens.by_resource_server.values())
        ac2 = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(tokens.by_resource_server["auth.globus.org"]["access_token"]))
        assert ac2.userinfo()["sub"] == DEV_IDENTITY_ID

    def test_native_default_redirect_shows_the_code(self, emu: RunningEmulator) -> None:
        ac = globus_sdk.NativeAppAuthClient(NATIVE_CLIENT_ID)
        ac.oauth2_start_flow(requested_scopes=TRANSFER_ALL)
        answer = login(ac.oauth2_get_authorize_url())
        assert answer.headers["location"].startswith(emu.url + "/v2/web/auth-code?")
        shown = httpx.get(answer.headers["location"], timeout=10)
        assert shown.status_code == 200
        code = redirect_query(answer)["code"]
        assert code in read_page(shown.text).visible_text
        assert transfer_tokens(ac.oauth2_exchange_code_for_tokens(code))["access_token"]


class TestRefusedExchanges:
    def test_wrong_verifier(self) -> None:
        ac, url = native()
        code = code_of(url)
        ac.oauth2_start_flow(TRANSFER_ALL, redirect_uri=CALLBACK, refresh_tokens=True)  # a new flow: another verifier
        assert "code_verifier does not match" in invalid_grant(lambda: ac.oauth2_exchange_code_for_tokens(code))

    def test_a_code_is_spent_by_its_first_use(self) -> None:
        ac, url = native()
        code = code_of(url)
        assert transfer_tokens(ac.oauth2_exchange_code_for_tokens(code))["access_token"]
        assert "already used" in invalid_grant(lambda: ac.oauth2_exchange_code_for_tokens(code))

    def test_wrong_redirect_uri(self) -> None:
        ac, url = native()
        code = code_of(url)
        ac.oauth2_start_flow(TRANSFER_ALL, redirect_uri=CALLBACK + "/other", verifier=VERIFIER)
        assert "redirect_uri does not match" in invalid_grant(lambda: ac.oauth2_exchange_code_for_tokens(code))

    def test_code_of_another_client(self) -> None:
        _, url = native()
        cc, _ = confidential()
        code = code_of(url)
        assert "another client" in invalid_grant(lambda: cc.oauth2_exchange_code_for_tokens(code))

    def test_expired_code(self, emu: RunningEmulator) -> None:
        ac, url = native()
        code = code_of(url)
        assert emu.admin("POST", "expire_codes")["expired"] >= 1
        invalid_grant(lambda: ac.oauth2_exchange_code_for_tokens(code))

    def test_code_lifetime(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """A code not exchanged within the configured lifetime is refused (time is the behaviour)."""
        with run_in_thread(EmulatorSettings(root=tmp_path, auth_code_lifetime=1, auto_approve_login=True)) as short:
            for key, value in sdk_environment(short.url).items():
                monkeypatch.setenv(key, value)
            ac, url = native()
            answer = httpx.get(url, timeout=10)  # auto-approve: the code comes at once, no page
            assert answer.status_code == 303
            code = redirect_query(answer)["code"]
            time.sleep(1.5)
            invalid_grant(lambda: ac.oauth2_exchange_code_for_tokens(code))

    def test_client_authentication(self, emu: RunningEmulator) -> None:
        _, url = confidential()
        code = code_of(url)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
        with httpx.Client(base_url=emu.url, timeout=10) as http:
            # a confidential client may not pass as a native one (client_id without its secret)
            resp = http.post("/v2/oauth2/token", data={**form, "client_id": CLIENT_ID})
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
            resp = http.post("/v2/oauth2/token", data={**form, "client_id": "not-a-client"})
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
            resp = http.post("/v2/oauth2/token", data=form, auth=(CLIENT_ID, "wrong"))
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
            resp = http.post("/v2/oauth2/token", data={"grant_type": "authorization_code", "redirect_uri": CALLBACK}, auth=(CLIENT_ID, SECRET))
            assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
            # none of that spent the code
            resp = http.post("/v2/oauth2/token", data=form, auth=(CLIENT_ID, SECRET))
            assert resp.status_code == 200 and resp.json()["resource_server"] == "transfer.api.globus.org"


class TestConsentPage:
    def test_denied_consent_goes_back_with_access_denied(self) -> None:
        _, url = native()
        query = redirect_query(login(url, "Deny"))
        assert query["error"] == "access_denied" and query["state"] == "orbit-state" and "code" not in query

    def test_a_ticket_answers_once(self) -> None:
        _, url = native()
        with httpx.Client(timeout=10) as client:
            page = client.get(url)
            ticket = read_page(page.text).forms[0].hidden["ticket"]
            first = client.post(page.url, data={"ticket": ticket, "decision": "allow"})
            again = client.post(page.url, data={"ticket": ticket, "decision": "allow"})
            odd = client.post(page.url, data={"ticket": ticket, "decision": "maybe"})
        assert first.status_code == 303
        assert again.status_code == 400 and "no longer valid" in read_page(again.text).visible_text
        assert odd.status_code == 400 and "decision" in odd.text

    def test_echoed_values_are_escaped(self, emu: RunningEmulator) -> None:
        crafted = '"><script>alert(1)</script><img/src=x/onerror=alert(2)>&amp;'
        scope = f"{TRANSFER_ALL}[{crafted}] https://auth.globus.org/scopes/{crafted}/all"
        _, url = native(requested_scopes=scope, state=crafted, prefill_named_grant=crafted)
        url += "&" + str(httpx.QueryParams({"session_message": crafted}))
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200
        reader = read_page(page.text)
        assert "script" not in reader.tags and "img" not in reader.tags
        assert reader.visible_text.count(crafted) >= 4  # scope (twice), named grant, message: as text
        assert page.headers["x-frame-options"] == "DENY" and "default-src 'none'" in page.headers["content-security-policy"]
        # the state goes back to the client untouched
        assert redirect_query(login(url))["state"] == crafted
        # an unknown client id shows as text on the error page
        bad = authorize(emu, client_id=crafted)
        assert bad.status_code == 400
        bad_reader = read_page(bad.text)
        assert "script" not in bad_reader.tags and crafted in bad_reader.visible_text

    def test_deeply_nested_scope_renders(self) -> None:
        _, url = native(requested_scopes=TRANSFER_ALL + "[" * 500 + "x" + "]" * 500)
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "Allow" in read_page(page.text).visible_text

    def test_session_parameters_are_tolerated(self) -> None:
        ac = globus_sdk.NativeAppAuthClient(NATIVE_CLIENT_ID)
        ac.oauth2_start_flow(TRANSFER_ALL, redirect_uri=CALLBACK, verifier=VERIFIER, state="orbit-state")
        extra = {"prompt": "login", "session_required_single_domain": "example.org", "session_required_mfa": "true", "session_message": "please"}
        assert transfer_tokens(ac.oauth2_exchange_code_for_tokens(code_of(ac.oauth2_get_authorize_url(query_params=extra))))["access_token"]

    def test_auto_approve_skips_the_page(self, emu: RunningEmulator) -> None:
        ac, url = native()
        assert emu.admin("PATCH", "login", json={"auto_approve": True})["auto_approve"] is True
        try:
            answer = httpx.get(url, timeout=10)
        finally:
            emu.admin("PATCH", "login", json={"auto_approve": False})
        assert answer.status_code == 303 and redirect_query(answer)["state"] == "orbit-state"
        assert transfer_tokens(ac.oauth2_exchange_code_for_tokens(redirect_query(answer)["code"]))["access_token"]
        assert httpx.get(url, timeout=10).status_code == 200  # the page again
        resp = httpx.patch(emu.url + "/_emulator/login", json={"auto_approve": "sometimes"}, timeout=10)
        assert resp.status_code == 400 and "auto_approve" in resp.json()["message"]


def authorize(emu: RunningEmulator, **params: str | None) -> httpx.Response:
    base: dict[str, str | None] = {
        "client_id": NATIVE_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": TRANSFER_ALL,
        "state": "s1",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    query = {k: v for k, v in {**base, **params}.items() if v is not None}
    return httpx.get(emu.url + "/v2/oauth2/authorize", params=query, timeout=10)


class TestAuthorizeChecks:
    @pytest.mark.parametrize(
        ("params", "words"),
        [
            ({"client_id": None}, "client_id is required"),
            ({"client_id": "0000"}, "Unknown client_id"),
            ({"redirect_uri": None}, "redirect_uri is required"),
            ({"redirect_uri": "/relative"}, "absolute http"),
            ({"redirect_uri": "javascript:alert(1)"}, "absolute http"),
            ({"redirect_uri": CALLBACK + "#frag"}, "fragment"),
            ({"redirect_uri": "http://127.0.0.1/\u00e9"}, "printable ASCII"),
            ({"redirect_uri": "http://127.0.0.1:99999/cb"}, "port from 1 to 65535"),
            ({"redirect_uri": "http://127.0.0.1:0/cb"}, "port from 1 to 65535"),
            ({"redirect_uri": "http://127.0.0.1:http/cb"}, "port from 1 to 65535"),
            ({"redirect_uri": "http://:8000/cb"}, "must name a host"),
            ({"redirect_uri": "http://[::1/cb"}, "absolute http"),  # was a 500: urlsplit's ValueError
        ],
    )
    def test_client_and_redirect_problems_are_shown_not_redirected(self, emu: RunningEmulator, params: dict[str, str | None], words: str) -> None:
        resp = authorize(emu, **params)
        assert resp.status_code == 400 and resp.headers["content-type"].startswith("text/html")
        assert words in read_page(resp.text).visible_text

    @pytest.mark.parametrize(
        ("params", "error", "words"),
        [
            ({"response_type": None}, "invalid_request", "response_type is required"),
            ({"response_type": "token"}, "unsupported_response_type", "token"),
            ({"scope": None}, "invalid_scope", "scope is required"),
            ({"scope": "urn:nope:nothing"}, "invalid_scope", "urn:nope:nothing"),
            ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
            ({"code_challenge_method": None}, "invalid_request", "plain"),
            ({"code_challenge": None}, "invalid_request", "without a code_challenge"),
            ({"code_challenge": None, "code_challenge_method": None}, "invalid_request", "native app clients must use PKCE"),
            ({"code_challenge": "short"}, "invalid_request", "43 to 128"),
            ({"access_type": "forever"}, "invalid_request", "access_type"),
        ],
    )
    def test_request_problems_go_back_to_the_client(self, emu: RunningEmulator, params: dict[str, str | None], error: str, words: str) -> None:
        resp = authorize(emu, **params)
        assert resp.status_code == 303, resp.text
        assert resp.headers["location"].startswith(CALLBACK + "?")
        query = redirect_query(resp)
        assert query["error"] == error and words in query["error_description"] and query["state"] == "s1"

    def test_repeated_parameter(self, emu: RunningEmulator) -> None:
        url = str(authorize(emu).url) + "&state=s2"
        resp = httpx.get(url, timeout=10)
        assert resp.status_code == 303 and redirect_query(resp)["error"] == "invalid_request"
        resp = httpx.get(url + f"&client_id={NATIVE_CLIENT_ID}", timeout=10)
        assert resp.status_code == 400 and "more than once" in resp.text

    def test_confidential_client_may_skip_pkce(self, emu: RunningEmulator) -> None:
        resp = authorize(emu, client_id=CLIENT_ID, code_challenge=None, code_challenge_method=None)
        assert resp.status_code == 200 and "confidential" in read_page(resp.text).visible_text

    def test_redirect_keeps_its_own_query(self, emu: RunningEmulator) -> None:
        resp = authorize(emu, redirect_uri=CALLBACK + "?next=%2Fhome", response_type="token")
        assert resp.headers["location"].startswith(CALLBACK + "?next=%2Fhome&error=unsupported_response_type")


class TestDataAccessConsent:
    def test_login_with_the_data_access_scope_clears_consent_required(self, emu: RunningEmulator) -> None:
        ac, url = native()
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(transfer_tokens(ac.oauth2_exchange_code_for_tokens(code_of(url)))["access_token"]))
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(MAPPED, path="/")
        assert info.value.info.consent_required
        required = info.value.info.consent_required.required_scopes
        assert required == [MAPPED_SCOPE]
        # log in again asking for what the error named, as the SDK's docs tell apps to do
        ac, url = native(requested_scopes=required)
        page = httpx.get(url, timeout=10)
        assert f"https://auth.globus.org/scopes/{MAPPED}/data_access" in read_page(page.text).visible_text
        tt = transfer_tokens(ac.oauth2_exchange_code_for_tokens(code_of(url)))
        assert tt["scope"] == TRANSFER_ALL
        granted = globus_sdk.TransferClient(authorizer=globus_sdk.RefreshTokenAuthorizer(tt["refresh_token"], ac, access_token=tt["access_token"], expires_at=tt["expires_at_seconds"]))
        assert [f["name"] for f in granted.operation_ls(MAPPED, path="/")] == ["a.txt"]
        # the consent rides on the refresh token too
        emu.admin("POST", "expire_tokens")
        assert granted.operation_stat(MAPPED, path="/a.txt")["size"] == 1
