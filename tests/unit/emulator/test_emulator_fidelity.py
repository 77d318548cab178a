"""Fidelity: our responses carry every key (and the DATA_TYPE) of the SDK's canned ones.

The canned responses are the globus-sdk maintainers' own (``globus_sdk.testing``),
read through its public loader: :func:`globus_sdk.testing.get_response_set` finds the
response set of an SDK method (``globus_sdk.testing`` needs the ``responses`` package,
in the test extra) and ``ResponseSet.lookup(case)`` gives the ``RegisteredResponse``
whose ``json`` and ``status`` we compare with what the emulator answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import globus_sdk
import pytest
from globus_sdk.testing import RegisteredResponse, get_response_set

from radical.orbit.emulators.globus import TUTORIAL_1, RunningEmulator


def canned(method: Callable[..., Any], case: str = "default") -> RegisteredResponse:
    """The maintainers' canned response for ``method`` (an SDK client method), case ``case``."""
    response = get_response_set(method).lookup(case)
    assert isinstance(response, RegisteredResponse), f"{method.__qualname__}[{case}] is a list of responses"
    return response


def canned_json(method: Callable[..., Any], case: str = "default") -> dict[str, Any]:
    """The JSON body of :func:`canned`."""
    body = canned(method, case).json
    assert isinstance(body, dict), f"{method.__qualname__}[{case}] has no JSON object body"
    return body


def canned_error(method: Callable[..., Any], case: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of an error case of :func:`canned`."""
    return canned(method, case).status, canned_json(method, case)


TC = globus_sdk.TransferClient


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
        theirs = canned_json(TC.get_endpoint)
        ours = tc.get_endpoint(TUTORIAL_1).data
        assert_like(ours, theirs, "get_endpoint")
        assert_like(ours["DATA"][0], theirs["DATA"][0], "get_endpoint.DATA[0]")

    def test_endpoint_search_items(self, tc: globus_sdk.TransferClient) -> None:
        theirs = canned_json(TC.get_endpoint)
        for doc in tc.endpoint_search("tutorial"):
            assert_like(doc.data if hasattr(doc, "data") else doc, theirs, "endpoint_search.DATA[]")

    def test_submission_id(self, tc: globus_sdk.TransferClient) -> None:
        assert_like(tc.get_submission_id().data, canned_json(TC.get_submission_id), "get_submission_id")

    def test_submit_transfer_and_delete(self, tc: globus_sdk.TransferClient, local: str) -> None:
        td = globus_sdk.TransferData(TUTORIAL_1, local)
        td.add_item("/home/share/godata/file2.txt", "/fidelity/file2.txt")
        theirs = canned_json(TC.submit_transfer)
        ours = tc.submit_transfer(td).data
        assert_like(ours, theirs, "submit_transfer")
        assert_like(ours["task_link"], theirs["task_link"], "submit_transfer.task_link")
        dd = globus_sdk.DeleteData(endpoint=local, ignore_missing=True)
        dd.add_item("/fidelity/nothing")
        assert_like(tc.submit_delete(dd).data, canned_json(TC.submit_delete), "submit_delete")

    def test_submit_transfer_failure_shape(self, tc: globus_sdk.TransferClient, local: str) -> None:
        status, theirs = canned_error(TC.submit_transfer, "failure")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(globus_sdk.TransferData(TUTORIAL_1, local))
        assert info.value.http_status == status and info.value.code == theirs["code"]
        assert info.value.raw_json is not None
        assert_like(info.value.raw_json, theirs, "submit_transfer failure")

    def test_task_documents(self, tc: globus_sdk.TransferClient, finished_task: str) -> None:
        theirs = canned_json(TC.task_list)
        listing = tc.task_list(filter={"task_id": finished_task}).data
        assert_like(listing, theirs, "task_list")
        assert_like(listing["DATA"][0], theirs["DATA"][0], "task_list.DATA[0]")
        assert_like(tc.get_task(finished_task).data, theirs["DATA"][0], "get_task")

    def test_successful_transfers(self, tc: globus_sdk.TransferClient, finished_task: str) -> None:
        theirs = canned_json(TC.endpoint_manager_task_successful_transfers)
        ours = tc.task_successful_transfers(finished_task).data
        assert_like(ours, theirs, "successful_transfers")
        assert_like(ours["DATA"][0], theirs["DATA"][0], "successful_transfers.DATA[0]")

    def test_cancel(self, tc: globus_sdk.TransferClient, finished_task: str, local: str) -> None:
        theirs = canned_json(TC.cancel_task)
        td = globus_sdk.TransferData(TUTORIAL_1, local, deadline="2099-01-01")
        td.add_item("/home/share/godata/file3.txt", "/fidelity/file3.txt")
        tid = tc.submit_transfer(td)["task_id"]
        assert_like(tc.cancel_task(tid).data, theirs, "cancel_task")

    def test_mkdir_rename_stat(self, tc: globus_sdk.TransferClient, local: str) -> None:
        assert_like(tc.operation_mkdir(local, "/fid_dir").data, canned_json(TC.operation_mkdir), "operation_mkdir")
        assert_like(tc.operation_rename(local, "/fid_dir", "/fid_dir2").data, canned_json(TC.operation_rename), "operation_rename")
        assert_like(tc.operation_stat(TUTORIAL_1, path="/home/share/godata/file1.txt").data, canned_json(TC.operation_stat), "operation_stat")
        for variant, path in (("not_found", "/~/foo"), ("permission_denied", "/../foo")):
            status, theirs = canned_error(TC.operation_stat, variant)
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                tc.operation_stat(TUTORIAL_1, path=path)
            assert (info.value.http_status, info.value.code) == (status, theirs["code"]), variant
            assert info.value.raw_json is not None
            assert_like(info.value.raw_json, theirs, f"operation_stat {variant}")

    def test_ls_items_match_stat_document(self, tc: globus_sdk.TransferClient) -> None:
        theirs = canned_json(TC.operation_stat)
        for doc in tc.operation_ls(TUTORIAL_1, path="/home/share/godata/"):
            assert_like(doc, theirs, "operation_ls.DATA[]")

    def test_client_credentials_token(self, emu: RunningEmulator, sdk_env: dict[str, str]) -> None:
        creds = emu.admin("POST", "clients")
        cc = globus_sdk.ConfidentialAppAuthClient(creds["client_id"], creds["client_secret"])
        theirs = canned_json(globus_sdk.ConfidentialAppAuthClient.oauth2_client_credentials_tokens)
        ours = cc.oauth2_client_credentials_tokens(requested_scopes=theirs["scope"]).data
        assert_like(ours, theirs, "oauth2_client_credentials_tokens")
        assert "id_token" not in ours

    def test_auth_unauthorized_shape(self, sdk_env: dict[str, str]) -> None:
        status, theirs = canned_error(globus_sdk.AuthClient.userinfo, "unauthorized")
        ac = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer("AgNope"))
        with pytest.raises(globus_sdk.AuthAPIError) as info:
            ac.userinfo()
        assert info.value.http_status == status == 401 and info.value.code == "UNAUTHORIZED"
        assert info.value.raw_json is not None
        assert_like(info.value.raw_json, theirs, "userinfo unauthorized")
