"""Which Globus identity a credential acts as (plugins/globus/identity.py), against the
in-process emulator: Globus Auth's userinfo first, a task's owner_id when Auth will not
say, nothing when neither does."""

from __future__ import annotations

from collections.abc import Iterator

import globus_sdk
import pytest

from radical.orbit.emulators.globus import (
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)
from radical.orbit.emulators.globus.settings import DEV_IDENTITY_ID
from radical.orbit.plugins.globus.identity import credential_identities


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = run_in_thread(EmulatorSettings(root=tmp_path_factory.mktemp("emuroot"), retry_interval=0.05))
    yield running
    running.stop()


@pytest.fixture
def env(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sdk_environment(emu.url).items():
        monkeypatch.setenv(key, value)


def transfer_client(token: str) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def test_userinfo_names_the_user(emu: RunningEmulator, env: None) -> None:
    with transfer_client(emu.dev_token()["access_token"]) as tc:
        assert credential_identities(tc)[0] == DEV_IDENTITY_ID


def test_a_confidential_client_is_its_own_identity(emu: RunningEmulator, env: None) -> None:
    client = emu.admin("POST", "clients")
    app = globus_sdk.ConfidentialAppAuthClient(client["client_id"], client["client_secret"])
    authorizer = globus_sdk.ClientCredentialsAuthorizer(app, globus_sdk.TransferClient.scopes.all)
    with globus_sdk.TransferClient(authorizer=authorizer) as tc:
        assert credential_identities(tc) == [client["client_id"]]
    app.close()


def test_transfer_says_when_auth_does_not(emu: RunningEmulator, env: None, monkeypatch: pytest.MonkeyPatch, free_port: int) -> None:
    """Globus Auth unreachable (as a userinfo refused for a Transfer-only token): the
    owner of the credential's newest task; no task at all: nobody says."""
    client = emu.admin("POST", "clients")
    app = globus_sdk.ConfidentialAppAuthClient(client["client_id"], client["client_secret"])
    fresh = app.oauth2_client_credentials_tokens(globus_sdk.TransferClient.scopes.all).by_resource_server["transfer.api.globus.org"]["access_token"]
    app.close()
    token = emu.dev_token()["access_token"]
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"http://127.0.0.1:{free_port}/")
    with transfer_client(fresh) as tc:
        assert credential_identities(tc) == []  # a client that never submitted a task
    with transfer_client(token) as tc:
        local = emu.local_collection
        data = globus_sdk.TransferData(local, local, label="who am I")
        data.add_item("/~/", "/~/copy/", recursive=True)
        tc.submit_transfer(data)
        assert credential_identities(tc) == [DEV_IDENTITY_ID]


def test_a_refused_token_is_nobody(emu: RunningEmulator, env: None) -> None:
    with transfer_client("not-a-token-the-emulator-issued") as tc:
        assert credential_identities(tc) == []
