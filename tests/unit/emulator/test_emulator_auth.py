"""Auth through the real SDK: refresh and client-credentials authorizers, 401s, consent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import httpx
import pytest

from radical.orbit.emulators.globus import (
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)

MAPPED = "5b2c6f3e-9a51-4d2e-8f7a-3c1d0e9b7a11"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """Short-lived tokens, a known confidential client and a mapped collection needing consent."""
    root = tmp_path_factory.mktemp("authroot")
    settings = EmulatorSettings(
        root=root,
        token_lifetime=2,
        client_id="1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01",
        client_secret="s" * 44,
        collections=[
            {"id": MAPPED, "display_name": "Mapped (consent)", "entity_type": "GCSv5_mapped_collection", "requires_data_access": True, "root": str(root / "mapped"), "files": {"a.txt": "a"}},
            {"id": "0e0e0e0e-1111-4222-8333-444455556666", "display_name": "Plain", "root": str(root / "plain"), "local": True},
        ],
    )
    running = run_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture
def env(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)


def token_posts(emu: RunningEmulator) -> int:
    return int(emu.admin("GET", "counters")["counters"].get("POST /v2/oauth2/token", 0))


class TestAuth:
    def test_refresh_token_authorizer_renews_an_expired_token(self, emu: RunningEmulator, env: None) -> None:
        tok = emu.dev_token(refresh=True, lifetime=3600)
        auth = globus_sdk.NativeAppAuthClient(tok["client_id"])
        authorizer = globus_sdk.RefreshTokenAuthorizer(tok["refresh_token"], auth, access_token=tok["access_token"], expires_at=int(time.time()) + 3600)
        tc = globus_sdk.TransferClient(authorizer=authorizer)
        before = token_posts(emu)
        assert tc.get_endpoint(MAPPED)["id"] == MAPPED
        assert token_posts(emu) == before  # still valid: no refresh
        emu.admin("POST", "expire_tokens")  # the token dies server side -> 401 -> refresh -> retry
        assert tc.get_endpoint(MAPPED)["id"] == MAPPED
        assert token_posts(emu) == before + 1
        assert authorizer.access_token != tok["access_token"]

    def test_short_lifetime_expires_and_static_token_gets_401(self, emu: RunningEmulator, env: None) -> None:
        tok = emu.dev_token()
        assert tok["expires_in"] == 2
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(tok["access_token"]))
        tc.get_submission_id()
        time.sleep(2.1)
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.get_submission_id()
        err = info.value
        assert err.http_status == 401 and err.code == "AuthenticationFailed" and err.message == "Token is not active"
        assert err.request_id and len(err.request_id) == 9
        assert err.raw_json is not None and err.raw_json["resource"] == "/v0.10/submission_id"

    def test_missing_and_unknown_tokens(self, env: None) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            globus_sdk.TransferClient().task_list()
        assert info.value.http_status == 400 and info.value.code == "ClientError.AuthenticationFailed"
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer("AgNotAToken")).task_list()
        assert info.value.http_status == 401

    def test_client_credentials(self, emu: RunningEmulator, env: None) -> None:
        cc = globus_sdk.ConfidentialAppAuthClient("1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01", "s" * 44)
        authorizer = globus_sdk.ClientCredentialsAuthorizer(cc, TRANSFER_ALL)
        tc = globus_sdk.TransferClient(authorizer=authorizer)
        assert tc.task_list()["total"] == 0  # a different identity than the dev user
        tokens = cc.oauth2_client_credentials_tokens(requested_scopes=f"{TRANSFER_ALL} openid profile email")
        assert set(tokens.by_resource_server) == {"transfer.api.globus.org", "auth.globus.org"}
        intro = cc.oauth2_token_introspect(tokens.by_resource_server["transfer.api.globus.org"]["access_token"])
        assert intro["active"] is True and intro["client_id"] == "1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01"
        ac = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(tokens.by_resource_server["auth.globus.org"]["access_token"]))
        assert ac.userinfo()["sub"] == "1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01"
        ids = ac.get_identities(usernames="dev@orbit.local")
        assert ids["identities"][0]["username"] == "dev@orbit.local"
        bad = globus_sdk.ConfidentialAppAuthClient("1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01", "wrong")
        with pytest.raises(globus_sdk.AuthAPIError) as info:
            bad.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_ALL)
        assert info.value.http_status == 401

    def test_a_client_registered_with_a_chosen_id_and_secret(self, emu: RunningEmulator, env: None) -> None:
        """The body of POST /_emulator/clients was ignored: a test asking for a known id got a random one."""
        cid = "0b7f3c9e-2d4a-4c1e-9f8b-6a5d4c3b2a10"
        made = httpx.post(emu.url + "/_emulator/clients", json={"client_id": cid.upper(), "client_secret": "chosen-secret-1"}, timeout=10)
        assert made.status_code == 200 and made.json() == {"client_id": cid, "client_secret": "chosen-secret-1"}
        cc = globus_sdk.ConfidentialAppAuthClient(cid, "chosen-secret-1")
        assert cc.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_ALL).by_resource_server["transfer.api.globus.org"]
        again = httpx.post(emu.url + "/_emulator/clients", json={"client_id": cid}, timeout=10)
        assert again.status_code == 409 and cid in again.json()["message"]
        generated = httpx.post(emu.url + "/_emulator/clients", timeout=10).json()
        assert generated["client_id"] != cid and len(generated["client_secret"]) >= 8
        for body, field in (({"client_id": "mine"}, "client_id"), ({"client_secret": "short"}, "client_secret"),
                            ({"client_secret": "has space in it"}, "client_secret"), ({"name": "x"}, "name")):
            bad = httpx.post(emu.url + "/_emulator/clients", json=body, timeout=10)
            assert bad.status_code == 400 and field in bad.json()["message"], bad.text
            assert "has space" not in bad.text  # a secret is never echoed

    def test_identities_unknown_usernames_are_unused_and_unknown_ids_left_out(self, emu: RunningEmulator, env: None) -> None:
        """What Globus Auth answers (the SDK's canned ``get_identities``): any username
        has an identity, "unused" until someone signs in with it; an unknown id has none."""
        client_id = "1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01"
        cc = globus_sdk.ConfidentialAppAuthClient(client_id, "s" * 44)
        ac = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(
            cc.oauth2_client_credentials_tokens(requested_scopes="openid profile email").by_resource_server["auth.globus.org"]["access_token"]))
        nobody = ac.get_identities(usernames=["nobody@example.org"])["identities"]
        assert len(nobody) == 1 and nobody[0]["status"] == "unused" and nobody[0]["username"] == "nobody@example.org"
        assert nobody[0]["name"] is None and nobody[0]["email"] is None and nobody[0]["organization"] is None
        assert ac.get_identities(usernames=["nobody@example.org"])["identities"][0]["id"] == nobody[0]["id"]  # stable
        dev = ac.get_identities(usernames=["dev@orbit.local"])["identities"][0]
        assert dev["status"] == "used"
        found = ac.get_identities(ids=[dev["id"], "00000000-0000-4000-8000-00000000dead", client_id])["identities"]
        assert [i["id"] for i in found] == [dev["id"], client_id]
        assert found[1]["username"] == f"{client_id}@clients.auth.globus.org"

    def test_bad_refresh_token(self, emu: RunningEmulator, env: None) -> None:
        auth = globus_sdk.NativeAppAuthClient(emu.emulator.settings.native_client_id)
        with pytest.raises(globus_sdk.AuthAPIError) as info:
            auth.oauth2_refresh_token("AgBogus")
        assert info.value.http_status == 401
        assert info.value.raw_json is not None and info.value.raw_json["error"] == "invalid_grant"

    def test_consent_required_on_mapped_collection(self, emu: RunningEmulator, env: None) -> None:
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(emu.dev_token(lifetime=600)["access_token"]))
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(MAPPED, path="/")
        err = info.value
        assert err.http_status == 403 and err.code == "ConsentRequired"
        assert err.info.consent_required
        expected = f"{TRANSFER_ALL}[*https://auth.globus.org/scopes/{MAPPED}/data_access]"
        assert err.info.consent_required.required_scopes == [expected]
        td = globus_sdk.TransferData(MAPPED, "0e0e0e0e-1111-4222-8333-444455556666")
        td.add_item("/a.txt", "/a.txt")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(td)
        assert info.value.info.consent_required
        # a token carrying the consent gets through; so does a client-credentials token for that scope
        ok = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(emu.dev_token(consents=[MAPPED], lifetime=600)["access_token"]))
        assert [f["name"] for f in ok.operation_ls(MAPPED, path="/")] == ["a.txt"]
        cc = globus_sdk.ConfidentialAppAuthClient("1e5b9f8a-5c3e-4d0b-9d56-2f2a4b6c8d01", "s" * 44)
        res = cc.oauth2_client_credentials_tokens(requested_scopes=expected)
        assert res["scope"] == TRANSFER_ALL
        cctc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(res["access_token"]))
        assert cctc.operation_stat(MAPPED, path="/a.txt")["size"] == 1


class TestPersistence:
    def test_tasks_and_tokens_survive_restart(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = EmulatorSettings(root=tmp_path / "root", state_dir=tmp_path / "state")
        first = run_in_thread(settings)
        try:
            tok = first.dev_token(refresh=True)
            for k, v in sdk_environment(first.url).items():
                monkeypatch.setenv(k, v)
            tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(tok["access_token"]))
            local = first.local_collection
            td = globus_sdk.TransferData("6c54cade-bde5-45c1-bdea-f4bd71dba2cc", local, label="persist me")
            td.add_item("/home/share/godata/file1.txt", "/p/file1.txt")
            tid = tc.submit_transfer(td)["task_id"]
            assert tc.task_wait(tid, timeout=10, polling_interval=1)
            # one more, still running when the emulator stops (slow collection)
            (tmp_path / "root" / "local" / "big.bin").write_bytes(b"x" * 400_000)
            first.admin("PATCH", "faults", json={"bandwidth": {local: 100_000}})
            td = globus_sdk.TransferData(local, local, label="in flight")
            td.add_item("/big.bin", "/copy/big.bin")
            inflight = tc.submit_transfer(td)["task_id"]
            while tc.get_task(inflight)["bytes_transferred"] == 0:
                time.sleep(0.02)
        finally:
            first.stop()
        assert tok["access_token"] not in (tmp_path / "state" / "auth.json").read_text()
        second = run_in_thread(EmulatorSettings(root=tmp_path / "root", state_dir=tmp_path / "state"))
        try:
            for k, v in sdk_environment(second.url).items():
                monkeypatch.setenv(k, v)
            assert second.local_collection == local
            tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(tok["access_token"]))
            task = tc.get_task(tid)
            assert task["status"] == "SUCCEEDED" and task["label"] == "persist me" and task["files_transferred"] == 1
            auth = globus_sdk.NativeAppAuthClient(tok["client_id"])
            assert auth.oauth2_refresh_token(tok["refresh_token"])["access_token"]
            # the interrupted task was not failed by the shutdown: it runs again (no cap now)
            end = time.monotonic() + 10
            while (doc := tc.get_task(inflight))["status"] == "ACTIVE" and time.monotonic() < end:
                time.sleep(0.05)
            assert doc["status"] == "SUCCEEDED" and doc["label"] == "in flight"
            assert (tmp_path / "root" / "local" / "copy" / "big.bin").stat().st_size == 400_000
        finally:
            second.stop()
