"""An in-process Globus emulator (uvicorn on a thread) and real globus-sdk clients for it."""

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


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator per test module, with a fast retry interval."""
    root = tmp_path_factory.mktemp("emuroot")
    running = run_in_thread(EmulatorSettings(root=root, retry_interval=0.05))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token(emu: RunningEmulator) -> str:
    return str(emu.dev_token()["access_token"])


@pytest.fixture
def sdk_env(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the SDK at the emulator through its own environment variables."""
    env = sdk_environment(emu.url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GLOBUS_SDK_HTTP_TIMEOUT", "20")
    return env


@pytest.fixture
def tc(sdk_env: dict[str, str], token: str) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


@pytest.fixture
def local(emu: RunningEmulator) -> str:
    """The id of the emulator's local collection."""
    return emu.local_collection
