"""An emulator built from a --config JSON file: custom collections, quota, clients, faults."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import httpx
import pytest
from click.testing import CliRunner

from radical.orbit.cli.emulator import emulator
from radical.orbit.emulators.globus import (
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)

SMALL = "a1a1a1a1-0000-4000-8000-000000000001"
BIG = "b2b2b2b2-0000-4000-8000-000000000002"
GUEST = "c3c3c3c3-0000-4000-8000-000000000003"
MY_GUEST = "d4d4d4d4-0000-4000-8000-000000000004"  # shared by the tests' own user


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    base = tmp_path_factory.mktemp("cfg")
    config = {
        "collections": [
            {"id": BIG, "display_name": "Big Source", "root": str(base / "big"), "files": {"data/blob.bin": "x" * 5000, "data/small.txt": "s"}, "keywords": "alpha,source", "owner_string": "someone@example.org"},
            {"id": SMALL, "display_name": "Tiny Quota", "root": str(base / "small"), "quota_bytes": 1000, "owner_string": "dev@orbit.local"},
            {"id": GUEST, "display_name": "Shared Guest", "root": str(base / "guest"), "entity_type": "GCSv5_guest_collection", "description": "alpha beta", "owner_string": "someone@example.org"},
            {"id": MY_GUEST, "display_name": "My Share", "root": str(base / "myshare"), "entity_type": "GCSv5_guest_collection", "files": {"f.bin": "y" * 5000}, "owner_string": "dev@orbit.local"},
        ],
        "clients": [{"client_id": "9d9d9d9d-0000-4000-8000-000000000009", "client_secret": "c" * 44}],
        "faults": {"latency": 0.0},
    }
    path = base / "emulator.json"
    path.write_text(json.dumps(config))
    running = run_in_thread(EmulatorSettings(root=base / "default-root", config=path, retry_interval=0.05))
    yield running
    running.stop()


@pytest.fixture
def tc(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> globus_sdk.TransferClient:
    for k, v in sdk_environment(emu.url).items():
        monkeypatch.setenv(k, v)
    return globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(emu.dev_token()["access_token"]))


def wait(tc: globus_sdk.TransferClient, tid: str) -> dict[str, object]:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        doc = tc.get_task(tid)
        if doc["status"] != "ACTIVE":
            return dict(doc.data)
        time.sleep(0.02)
    raise AssertionError("still ACTIVE")


class TestConfigFile:
    def test_collections_from_config(self, emu: RunningEmulator, tc: globus_sdk.TransferClient) -> None:
        health = httpx.get(f"{emu.url}/health").json()
        assert {c["id"] for c in health["collections"]} == {SMALL, BIG, GUEST, MY_GUEST} and health["local_collection"] is None
        assert [f["name"] for f in tc.operation_ls(BIG, path="/data/")] == ["blob.bin", "small.txt"]
        assert tc.get_endpoint(GUEST)["entity_type"] == "GCSv5_guest_collection"

    def test_client_from_config(self, emu: RunningEmulator, tc: globus_sdk.TransferClient) -> None:
        cc = globus_sdk.ConfidentialAppAuthClient("9d9d9d9d-0000-4000-8000-000000000009", "c" * 44)
        assert cc.oauth2_client_credentials_tokens(requested_scopes="urn:globus:auth:scope:transfer.api.globus.org:all")["access_token"]

    def test_quota(self, tc: globus_sdk.TransferClient, emu: RunningEmulator) -> None:
        td = globus_sdk.TransferData(BIG, SMALL, fail_on_quota_errors=True)
        td.add_item("/data/small.txt", "/ok/small.txt")
        td.add_item("/data/blob.bin", "/no/blob.bin")
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "FAILED" and done["fatal_error"]["code"] == "QUOTA_EXCEEDED"
        assert done["files_transferred"] == 1
        td = globus_sdk.TransferData(BIG, SMALL)  # without fail_on_quota_errors Globus keeps retrying
        td.add_item("/data/blob.bin", "/no/blob.bin")
        tid = tc.submit_transfer(td)["task_id"]
        end = time.monotonic() + 5
        while (doc := tc.get_task(tid))["nice_status"] != "QUOTA_EXCEEDED" and time.monotonic() < end:
            time.sleep(0.05)
        assert doc["status"] == "ACTIVE" and doc["is_ok"] is False
        assert tc.cancel_task(tid)["code"] == "Canceled"

    def test_endpoint_search(self, tc: globus_sdk.TransferClient) -> None:
        assert {e["id"] for e in tc.endpoint_search("alpha")} == {BIG, GUEST}
        assert [e["id"] for e in tc.endpoint_search("alp sou")] == [BIG]
        assert [e["id"] for e in tc.endpoint_search(filter_scope="my-endpoints")] == [SMALL, MY_GUEST]
        assert [e["id"] for e in tc.endpoint_search(filter_scope="shared-with-me")] == [GUEST]
        assert [e["id"] for e in tc.endpoint_search(filter_scope="shared-by-me")] == [MY_GUEST]
        page = tc.endpoint_search("alpha", limit=1)
        assert page["DATA_TYPE"] == "endpoint_list" and page["has_next_page"] is True and len(page["DATA"]) == 1
        assert tc.endpoint_search("alpha", limit=1, offset=1)["has_next_page"] is False
        assert len(list(tc.paginated.endpoint_search("alpha").items())) == 2
        assert [e["id"] for e in tc.endpoint_search("alpha", filter_entity_type="GCSv5_guest_collection")] == [GUEST]
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.endpoint_search()
        assert info.value.http_status == 400
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.endpoint_search("x", limit=101)
        assert info.value.http_status == 400

    def test_endpoint_search_in_use_and_recently_used_follow_the_callers_tasks(self, tc: globus_sdk.TransferClient, emu: RunningEmulator) -> None:
        def scope(name: str) -> list[str]:
            return [e["id"] for e in tc.endpoint_search(filter_scope=name)]

        emu.admin("PATCH", "faults", json={"bandwidth": {MY_GUEST: 1000}})
        try:
            td = globus_sdk.TransferData(MY_GUEST, MY_GUEST)
            td.add_item("/f.bin", "/copy/f.bin")
            tid = tc.submit_transfer(td)["task_id"]  # 5 s at 1,000 B/s: still running below
            assert MY_GUEST in scope("in-use") and GUEST not in scope("in-use")
            assert scope("recently-used")[0] == MY_GUEST and GUEST not in scope("recently-used")
            assert tc.cancel_task(tid)["code"] == "Canceled"
            assert MY_GUEST not in scope("in-use")  # finished tasks use nothing
            assert scope("recently-used")[0] == MY_GUEST
        finally:
            emu.admin("PATCH", "faults", json={"bandwidth": {}})

    @pytest.mark.parametrize(
        ("params", "says"),
        [
            ({"filter_scope": "my-endpoints", "filter_owner_id": "x"}, "filter_owner_id conflicts with filter_scope 'my-endpoints'"),
            ({"filter_scope": "shared-by-me", "filter_owner_id": "x"}, "filter_owner_id conflicts with filter_scope 'shared-by-me'"),
            ({"filter_fulltext": "alpha", "filter_non_functional": False, "filter_entity_type": "GCSv5_guest_collection"},
             "filter_non_functional and filter_entity_type are mutually exclusive"),
        ],
    )
    def test_endpoint_search_refuses_conflicting_filters(self, tc: globus_sdk.TransferClient, params: dict[str, Any], says: str) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.endpoint_search(**params)
        assert info.value.http_status == 400 and says in info.value.message

    def test_a_gcs_endpoint_names_an_https_manager_url(self, tc: globus_sdk.TransferClient) -> None:
        """The CLI shows the domain of ``gcs_manager_url`` by cutting ``https://`` off."""
        gcs = [e for e in tc.endpoint_search("alpha") if e["entity_type"].startswith("GCSv5")]
        assert gcs and all(e["gcs_manager_url"].startswith("https://") for e in gcs)

    def test_suspend_makes_inactive_and_task_wait_returns(self, tc: globus_sdk.TransferClient, emu: RunningEmulator) -> None:
        emu.admin("PATCH", "faults", json={"bandwidth": {BIG: 2000}})
        try:
            td = globus_sdk.TransferData(BIG, BIG)
            td.add_item("/data/blob.bin", "/copy/blob.bin")
            tid = tc.submit_transfer(td)["task_id"]
            doc = emu.admin("POST", f"tasks/{tid}/suspend")
            assert doc["status"] == "INACTIVE"
            assert tc.task_wait(tid, timeout=2, polling_interval=1)  # INACTIVE ends a wait
            shown = tc.get_task(tid)
            assert shown["status"] == "INACTIVE" and shown["nice_status"] == "Creds Expired" and shown["is_ok"] is False
            emu.admin("POST", f"tasks/{tid}/resume")
            # still capped, so the copy cannot have finished yet; lifting the cap first raced the check
            assert tc.get_task(tid)["status"] == "ACTIVE"
            emu.admin("PATCH", "faults", json={"bandwidth": {}})
            assert wait(tc, tid)["status"] == "SUCCEEDED"
        finally:
            emu.admin("PATCH", "faults", json={"bandwidth": {}})


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"collections": 5}', "'collections': Input should be a valid list"),
        ('{"colections": []}', "'colections': Extra inputs are not permitted"),
        ("not json", "not valid JSON (Expecting value at line 1, column 1)"),
        ("[1]", "must be a JSON object with 'collections', 'clients' and/or 'faults'"),
        ('{"clients": [{"client_id": "4a0c2b9e-6f1d-4e8a-b3c5-7d9e1f2a3b4c"}]}', "'clients.0.client_secret': Field required"),
        ('{"clients": [{"client_id": "x", "client_secret": "s"}]}', "'clients.0.client_id': Value error, must be a UUID"),
        ('{"faults": {"latency": "slow"}}', "'faults.latency'"),
        ('{"faults": {"routes": "("}}', "'faults.routes': Value error, not a valid regular expression"),
        ('{"faults": {"error_statuses": [99]}}', "'faults.error_statuses.0'"),
        ('{"faults": {"latency": 1e308}}', "'faults.latency'"),
        ("[" * 100_000, "not valid JSON (nested too deeply)"),
    ],
)
def test_bad_config_file_is_a_usage_error_naming_file_and_field(
    content: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was "'int' object is not iterable", a pydantic dump, or a silently ignored typo;
    checked before the temporary collections folder is made."""
    path = tmp_path / "emu.json"
    path.write_text(content)
    made: list[str] = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append("x") or real(*a, **k))
    result = CliRunner().invoke(emulator, ["--port", "0", "--config", str(path)])
    assert result.exit_code == 2 and f"{path}: {says}" in result.output, result.output
    assert made == []


def test_a_config_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config /dev/zero grew to gigabytes (ignoring Ctrl-C): a device is refused before
    it is opened, and no file is read past the cap."""
    from radical.orbit.emulators.globus import context

    result = CliRunner().invoke(emulator, ["--port", "0", "--config", "/dev/null"])
    assert result.exit_code == 2 and "/dev/null: not a regular file" in result.output, result.output
    path = tmp_path / "emu.json"
    path.write_text('{"clients": []}' + " " * 100)
    with monkeypatch.context() as patch:  # a small cap stands in for 64 MiB
        patch.setattr(context, "MAX_CONFIG_BYTES", 100)
        with pytest.raises(context.ConfigError, match=f"^{path}: larger than .*; give the right file"):
            context.read_config(path)
    assert context.read_config(path) == context.ConfigFile()
    path.write_bytes(b'{"clients": []}\xff')
    with pytest.raises(context.ConfigError, match=f"^{path}: not UTF-8 text \\(byte 15\\); save it as UTF-8"):
        context.read_config(path)


@pytest.mark.parametrize(
    ("collection", "says"),
    [
        ({"root": "{file}"}, "its root '{file}' cannot be made a directory (File exists); give it another 'root'"),
        ({"root": "{file}/sub"}, "its root '{file}/sub' cannot be made a directory (Not a directory)"),
        ({"root": "{dir}", "files": {"taken/x.txt": "x"}}, "seed file 'taken/x.txt' cannot be written under its root"),
        ({"root": "{dir}", "home": "/taken/home/"}, "its home '/taken/home/' cannot be made a directory under its root"),
    ],
)
def test_a_collection_root_that_cannot_be_used_is_named_and_no_temporary_root_is_left(
    collection: dict[str, Any], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was "cannot start the emulator: [Errno 17] File exists: '...'" naming no
    collection, with an empty temporary collections folder left in /tmp each time."""
    file = tmp_path / "a-file"
    file.write_text("not a directory")
    folder = tmp_path / "coll"
    (folder / "taken").parent.mkdir(parents=True, exist_ok=True)
    (folder / "taken").write_text("a file where a directory is needed")
    spec = {"id": "11111111-2222-3333-4444-555555555555", "display_name": "Broken", "entity_type": "GCSv5_mapped_collection"}
    spec.update({k: v.format(file=file, dir=folder) if isinstance(v, str) else v for k, v in collection.items()})
    path = tmp_path / "emu.json"
    path.write_text(json.dumps({"collections": [spec]}))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    result = CliRunner().invoke(emulator, ["--port", "0", "--config", str(path)])
    expected = "collection 11111111-2222-3333-4444-555555555555 ('Broken'): " + says.format(file=file)
    assert result.exit_code == 1 and expected in result.output, result.output
    assert list(temp.iterdir()) == []  # the temporary collections root went again


def test_a_state_dir_that_cannot_hold_the_collections_names_the_option(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = CliRunner().invoke(emulator, ["--port", "0", "--state-dir", str(blocker / "state")])
    assert result.exit_code == 1, result.output
    assert f"the collections root '{blocker}/state/collections' cannot be made a directory (Not a directory); give another --state-dir" in result.output


@pytest.mark.parametrize(
    ("name", "content"),
    [
        *((name, bad) for name in ("auth.json", "tasks.json") for bad in (b"\xff", b'{"tokens": 5, "tasks": 5}', b"[" * 100_000)),
        ("auth.json", b'{"tokens": {"h": {"bogus": 1}}}'),
        ("tasks.json", b'{"tasks": [{"x": 1}]}'),
    ],
)
def test_a_state_file_that_cannot_be_read_is_named(name: str, content: bytes, tmp_path: Path) -> None:
    """A state file that is not the emulator's own (edited by hand, cut short by a full
    disk) was a traceback at start."""
    state = tmp_path / "state"
    state.mkdir()
    (state / name).write_bytes(content)
    result = CliRunner().invoke(emulator, ["--port", "0", "--state-dir", str(state)])
    assert result.exit_code == 1, result.output
    assert f"state file {state / name} cannot be read" in result.output and "move it away" in result.output
