"""Local collection discovery: env var, Globus Connect Personal, config file, none -- in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radical.orbit.errors import UsageError
from radical.orbit.plugins.globus import local

ENV_ID = "11111111-1111-4111-8111-111111111111"
GCP_ID = "22222222-2222-4222-8222-222222222222"
CFG_ID = "33333333-3333-4333-8333-333333333333"


def write_cfg(home: Path, value: str = CFG_ID) -> None:
    d = home / ".radical" / "orbit"
    d.mkdir(parents=True, exist_ok=True)
    (d / "globus.json").write_text(json.dumps({"local_collection": value}))


class FakeGCP:
    endpoint_id: str | None = None

    def __init__(self, **kw: object) -> None:
        pass


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch) -> type[FakeGCP]:
    import globus_sdk

    FakeGCP.endpoint_id = None
    monkeypatch.setattr(globus_sdk, "LocalGlobusConnectPersonal", FakeGCP)
    return FakeGCP


def test_env_wins(home: Path, gcp: type[FakeGCP], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADICAL_ORBIT_GLOBUS_COLLECTION", ENV_ID.upper())
    gcp.endpoint_id = GCP_ID
    write_cfg(home)
    assert local.discover_local_collection() == local.LocalCollection(ENV_ID, local.SOURCE_ENV)


def test_gcp_second(home: Path, gcp: type[FakeGCP]) -> None:
    gcp.endpoint_id = GCP_ID
    write_cfg(home)
    assert local.discover_local_collection() == local.LocalCollection(GCP_ID, local.SOURCE_GCP)


def test_real_gcp_files_are_read(home: Path) -> None:
    """No mock: globus_sdk's own LocalGlobusConnectPersonal reads ~/.globusonline/lta/client-id.txt."""
    lta = home / ".globusonline" / "lta"
    lta.mkdir(parents=True)
    (lta / "client-id.txt").write_text(GCP_ID + "\n")
    assert local.discover_local_collection() == local.LocalCollection(GCP_ID, local.SOURCE_GCP)


def test_config_file_third(home: Path, gcp: type[FakeGCP]) -> None:
    write_cfg(home)
    assert local.discover_local_collection() == local.LocalCollection(CFG_ID, local.SOURCE_CONFIG)


def test_none_last(home: Path, gcp: type[FakeGCP]) -> None:
    assert local.discover_local_collection() == local.LocalCollection(None, local.SOURCE_NONE)


def test_invalid_values_are_skipped(home: Path, gcp: type[FakeGCP], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADICAL_ORBIT_GLOBUS_COLLECTION", "not-a-uuid")
    gcp.endpoint_id = "garbage"
    write_cfg(home)
    assert local.discover_local_collection().source == local.SOURCE_CONFIG
    (home / ".radical" / "orbit" / "globus.json").write_text("{broken")
    assert local.discover_local_collection().source == local.SOURCE_NONE


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"{broken", "not valid JSON"), (b"\xff", "not UTF-8 text"), (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (nested too deeply)")],
    ids=["malformed", "not-utf8", "deep"],
)
def test_an_unusable_config_file_is_skipped_with_a_warning(
    home: Path, gcp: type[FakeGCP], caplog: pytest.LogCaptureFixture, content: bytes, says: str
) -> None:
    """Bytes that are not UTF-8 and JSON nested too deeply raised out of discovery (a
    traceback in the endpoint's log, and the globus plugin disabled); a stray '{' did not."""
    write_cfg(home)
    path = home / ".radical" / "orbit" / "globus.json"
    path.write_bytes(content)
    assert local.discover_local_collection() == local.LocalCollection(None, local.SOURCE_NONE)
    assert f"{path} is {says}" in caplog.text and "ignoring it" in caplog.text


def test_resolve() -> None:
    assert local.resolve_collection("local", CFG_ID) == CFG_ID
    assert local.resolve_collection(None, CFG_ID) == CFG_ID
    assert local.resolve_collection(ENV_ID.upper(), None) == ENV_ID
    with pytest.raises(UsageError) as info:
        local.resolve_collection("local", None, field="destination")
    assert info.value.status_code == 400 and "'destination'" in info.value.message
