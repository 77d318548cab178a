"""Fidelity: our responses carry every key (and the DATA_TYPE) of the SDK's canned ones.

The canned responses live in ``globus_sdk/testing/data/``. Importing
``globus_sdk.testing`` needs the ``responses`` package, which we do not depend on, so
the data modules are executed here with two stand-in classes for
``RegisteredResponse`` / ``ResponseSet`` (they only record their arguments).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from radical.orbit.emulators.globus import TUTORIAL_1, RunningEmulator

DATA = Path(globus_sdk.__file__).parent / "testing" / "data"


class _Registered:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.json = kwargs.get("json")
        self.status = kwargs.get("status", 200)


class _ResponseSet:
    def __init__(self, metadata: Any = None, **variants: _Registered) -> None:
        self.variants = variants


def canned(service: str, name: str, variant: str = "default") -> _Registered:
    """The ``variant`` of ``testing/data/<service>/<name>.py`` without importing globus_sdk.testing."""
    ns: dict[str, Any] = {"RegisteredResponse": _Registered, "ResponseSet": _ResponseSet}
    folder = DATA / service
    common = folder / "_common.py"
    if common.exists():
        exec(compile(common.read_text(), str(common), "exec"), ns)  # noqa: S102 - SDK's own data file
    source = (folder / f"{name}.py").read_text()
    source = re.sub(r"^from (globus_sdk\.testing\.models|\._common) import .*$", "", source, flags=re.MULTILINE)
    exec(compile(source, f"{folder}/{name}.py", "exec"), ns)  # noqa: S102
    rs: _ResponseSet = ns["RESPONSES"]
    return rs.variants[variant]


def assert_like(ours: dict[str, Any], theirs: dict[str, Any], what: str) -> None:
    missing = sorted(set(theirs) - set(ours))
    assert not missing, f"{what}: keys missing from the emulator's response: {missing}"
    if "DATA_TYPE" in theirs:
        assert ours["DATA_TYPE"] == theirs["DATA_TYPE"], what
    for key, value in theirs.items():
        if value is not None and ours.get(key) is not None and not isinstance(value, dict | list):
            assert type(ours[key]) is type(value), f"{what}.{key}: {type(ours[key]).__name__} != {type(value).__name__}"


@pytest.fixture
def finished_task(emu: RunningEmulator, tc: globus_sdk.TransferClient) -> str:
    td = globus_sdk.TransferData(TUTORIAL_1, emu.local_collection, verify_checksum=True)
    td.add_item("/home/share/godata/file1.txt", "/fidelity/file1.txt")
    tid = str(tc.submit_transfer(td)["task_id"])
    while tc.get_task(tid)["status"] == "ACTIVE":
        time.sleep(0.02)
    return tid


class TestFidelity:
    def test_get_endpoint(self, tc: globus_sdk.TransferClient) -> None:
        theirs = canned("transfer", "get_endpoint").json
        ours = tc.get_endpoint(TUTORIAL_1).data
        assert_like(ours, theirs, "get_endpoint")
        assert_like(ours["DATA"][0], theirs["DATA"][0], "get_endpoint.DATA[0]")

    def test_endpoint_search_items(self, tc: globus_sdk.TransferClient) -> None:
        theirs = canned("transfer", "get_endpoint").json
        for doc in tc.endpoint_search("tutorial"):
            assert_like(doc.data if hasattr(doc, "data") else doc, theirs, "endpoint_search.DATA[]")

    def test_submission_id(self, tc: globus_sdk.TransferClient) -> None:
        assert_like(tc.get_submission_id().data, canned("transfer", "get_submission_id").json, "get_submission_id")

    def test_submit_transfer_and_delete(self, tc: globus_sdk.TransferClient, local: str) -> None:
        td = globus_sdk.TransferData(TUTORIAL_1, local)
        td.add_item("/home/share/godata/file2.txt", "/fidelity/file2.txt")
        theirs = canned("transfer", "submit_transfer").json
        ours = tc.submit_transfer(td).data
        assert_like(ours, theirs, "submit_transfer")
        assert_like(ours["task_link"], theirs["task_link"], "submit_transfer.task_link")
        dd = globus_sdk.DeleteData(endpoint=local, ignore_missing=True)
        dd.add_item("/fidelity/nothing")
        assert_like(tc.submit_delete(dd).data, canned("transfer", "submit_delete").json, "submit_delete")

    def test_submit_transfer_failure_shape(self, tc: globus_sdk.TransferClient, local: str) -> None:
        theirs = canned("transfer", "submit_transfer", "failure")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(globus_sdk.TransferData(TUTORIAL_1, local))
        assert info.value.http_status == theirs.status and info.value.code == theirs.json["code"]
        assert info.value.raw_json is not None
        assert_like(info.value.raw_json, theirs.json, "submit_transfer failure")

    def test_task_documents(self, tc: globus_sdk.TransferClient, finished_task: str) -> None:
        theirs = canned("transfer", "task_list").json
        listing = tc.task_list(filter={"task_id": finished_task}).data
        assert_like(listing, theirs, "task_list")
        assert_like(listing["DATA"][0], theirs["DATA"][0], "task_list.DATA[0]")
        assert_like(tc.get_task(finished_task).data, theirs["DATA"][0], "get_task")

    def test_successful_transfers(self, tc: globus_sdk.TransferClient, finished_task: str) -> None:
        theirs = canned("transfer", "endpoint_manager_task_successful_transfers").json
        ours = tc.task_successful_transfers(finished_task).data
        assert_like(ours, theirs, "successful_transfers")
        assert_like(ours["DATA"][0], theirs["DATA"][0], "successful_transfers.DATA[0]")

    def test_cancel(self, tc: globus_sdk.TransferClient, finished_task: str, local: str) -> None:
        theirs = canned("transfer", "cancel_task").json
        td = globus_sdk.TransferData(TUTORIAL_1, local, deadline="2099-01-01")
        td.add_item("/home/share/godata/file3.txt", "/fidelity/file3.txt")
        tid = tc.submit_transfer(td)["task_id"]
        assert_like(tc.cancel_task(tid).data, theirs, "cancel_task")

    def test_mkdir_rename_stat(self, tc: globus_sdk.TransferClient, local: str) -> None:
        assert_like(tc.operation_mkdir(local, "/fid_dir").data, canned("transfer", "operation_mkdir").json, "operation_mkdir")
        assert_like(tc.operation_rename(local, "/fid_dir", "/fid_dir2").data, canned("transfer", "operation_rename").json, "operation_rename")
        assert_like(tc.operation_stat(TUTORIAL_1, path="/home/share/godata/file1.txt").data, canned("transfer", "operation_stat").json, "operation_stat")
        for variant, path in (("not_found", "/~/foo"), ("permission_denied", "/../foo")):
            theirs = canned("transfer", "operation_stat", variant)
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                tc.operation_stat(TUTORIAL_1, path=path)
            assert (info.value.http_status, info.value.code) == (theirs.status, theirs.json["code"]), variant
            assert info.value.raw_json is not None
            assert_like(info.value.raw_json, theirs.json, f"operation_stat {variant}")

    def test_ls_items_match_stat_document(self, tc: globus_sdk.TransferClient) -> None:
        theirs = canned("transfer", "operation_stat").json
        for doc in tc.operation_ls(TUTORIAL_1, path="/home/share/godata/"):
            assert_like(doc, theirs, "operation_ls.DATA[]")

    def test_client_credentials_token(self, emu: RunningEmulator, sdk_env: dict[str, str]) -> None:
        creds = emu.admin("POST", "clients")
        cc = globus_sdk.ConfidentialAppAuthClient(creds["client_id"], creds["client_secret"])
        theirs = canned("auth", "oauth2_client_credentials_tokens").json
        ours = cc.oauth2_client_credentials_tokens(requested_scopes=theirs["scope"]).data
        assert_like(ours, theirs, "oauth2_client_credentials_tokens")
        assert "id_token" not in ours

    def test_auth_unauthorized_shape(self, sdk_env: dict[str, str]) -> None:
        theirs = canned("auth", "userinfo", "unauthorized")
        ac = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer("AgNope"))
        with pytest.raises(globus_sdk.AuthAPIError) as info:
            ac.userinfo()
        assert info.value.http_status == 401 and info.value.code == "UNAUTHORIZED"
        assert info.value.raw_json is not None
        assert_like(info.value.raw_json, theirs.json, "userinfo unauthorized")
