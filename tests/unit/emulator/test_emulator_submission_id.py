"""submission_id through the real TransferClient: what a reuse answers, for whom, and why.

Globus runs a submission id once: a resubmission answers 200 ``Duplicate`` with the
original task, whatever its body, transfer or delete. The cases Globus's documents
leave open are pinned here as the emulator answers them (docs/emulator.md lists which
is which).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import globus_sdk
import pytest
from globus_emu_helpers import make_tree, root_of

from radical.orbit.emulators.globus import (
    DEV_IDENTITY_ID,
    EmulatorSettings,
    RunningEmulator,
    run_in_thread,
    sdk_environment,
)

TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"


@pytest.fixture
def area(emu: RunningEmulator, local: str) -> tuple[str, Path, str]:
    d = f"/sub_{uuid.uuid4().hex[:8]}"
    root = root_of(emu, local)
    make_tree(root / d[1:], {"f": "f", "g": "g"})
    return local, root, d


def wait(tc: globus_sdk.TransferClient, task_id: str) -> globus_sdk.GlobusHTTPResponse:
    assert tc.task_wait(task_id, timeout=20, polling_interval=1)
    return tc.get_task(task_id)


class TestSubmissionId:
    def test_get_submission_id_hands_out_fresh_uuids(self, tc: globus_sdk.TransferClient) -> None:
        first, second = tc.get_submission_id(), tc.get_submission_id()
        assert first["DATA_TYPE"] == "submission_id"
        assert str(uuid.UUID(first["value"])) == first["value"] and first["value"] != second["value"]

    def test_a_reused_transfer_id_answers_the_first_task_whatever_the_body(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        sid = tc.get_submission_id()["value"]
        td = globus_sdk.TransferData(ep, ep, submission_id=sid, label="first")
        td.add_item(f"{d}/f", f"{d}/out/f")
        first = tc.submit_transfer(td)
        other = globus_sdk.TransferData(ep, ep, submission_id=sid, label="second")
        other.add_item(f"{d}/g", f"{d}/out/g")
        again = tc.submit_transfer(other)
        assert first.http_status == 202 and first["code"] == "Accepted"
        assert again.http_status == 200 and again["code"] == "Duplicate" and again["DATA_TYPE"] == "transfer_result"
        assert again["task_id"] == first["task_id"] and again["submission_id"] == sid
        assert again["task_link"]["href"] == f"/v0.10/task/{first['task_id']}?format=json"
        task = wait(tc, first["task_id"])
        assert task["label"] == "first" and task["files_transferred"] == 1
        assert (root / d[1:] / "out" / "f").exists() and not (root / d[1:] / "out" / "g").exists()
        assert [t["task_id"] for t in tc.task_list(filter={"label": ["first", "second"]})] == [first["task_id"]]

    def test_a_reused_delete_id_answers_the_first_task(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        sid = tc.get_submission_id()["value"]
        dd = globus_sdk.DeleteData(ep, submission_id=sid)
        dd.add_item(f"{d}/f")
        first = tc.submit_delete(dd)
        wait(tc, first["task_id"])
        other = globus_sdk.DeleteData(ep, submission_id=sid)
        other.add_item(f"{d}/g")
        again = tc.submit_delete(other)
        assert again.http_status == 200 and again["code"] == "Duplicate" and again["DATA_TYPE"] == "delete_result"
        assert again["task_id"] == first["task_id"]
        assert not (root / d[1:] / "f").exists() and (root / d[1:] / "g").exists()

    def test_an_id_is_used_once_across_transfer_and_delete(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, root, d = area
        sid = tc.get_submission_id()["value"]
        td = globus_sdk.TransferData(ep, ep, submission_id=sid)
        td.add_item(f"{d}/f", f"{d}/copy")
        first = tc.submit_transfer(td)
        wait(tc, first["task_id"])
        dd = globus_sdk.DeleteData(ep, submission_id=sid)
        dd.add_item(f"{d}/g")
        again = tc.submit_delete(dd)
        assert again.http_status == 200 and again["code"] == "Duplicate" and again["task_id"] == first["task_id"]
        assert "transfer with submission_id" in again["message"]
        assert (root / d[1:] / "g").exists()  # the delete never ran

    def test_an_id_the_emulator_never_issued_is_accepted_once(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, _, d = area
        sid = str(uuid.uuid4())
        td = globus_sdk.TransferData(ep, ep, submission_id=sid)
        td.add_item(f"{d}/f", f"{d}/own/f")
        first = tc.submit_transfer(td)
        assert first.http_status == 202 and first["submission_id"] == sid
        # the same UUID written in capitals is the same id
        td["submission_id"] = sid.upper()
        again = tc.submit_transfer(td)
        assert again["code"] == "Duplicate" and again["task_id"] == first["task_id"] and again["submission_id"] == sid

    @pytest.mark.parametrize("bad", ["not-a-uuid", "", "{" + "0" * 32 + "}", "0" * 32, "urn:uuid:" + str(uuid.UUID(int=1)), "x" * 500])
    def test_an_id_that_is_not_a_uuid_is_refused(self, tc: globus_sdk.TransferClient, area: tuple[str, Path, str], bad: str) -> None:
        ep, _, d = area
        dd = globus_sdk.DeleteData(ep, submission_id=bad)
        dd.add_item(f"{d}/f")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_delete(dd)
        err = info.value
        assert err.http_status == 400 and err.code == "ClientError.BadRequest"
        assert "submission_id" in err.message and len(err.message) < 300

    def test_another_users_id_makes_that_users_own_task(self, emu: RunningEmulator, sdk_env: dict[str, str], tc: globus_sdk.TransferClient, area: tuple[str, Path, str]) -> None:
        ep, _, d = area
        sid = tc.get_submission_id()["value"]
        td = globus_sdk.TransferData(ep, ep, submission_id=sid, label="dev's")
        td.add_item(f"{d}/f", f"{d}/dev/f")
        mine = tc.submit_transfer(td)
        client = emu.admin("POST", "clients")
        cc = globus_sdk.ConfidentialAppAuthClient(client["client_id"], client["client_secret"])
        other = globus_sdk.TransferClient(authorizer=globus_sdk.ClientCredentialsAuthorizer(cc, TRANSFER_ALL))
        td2 = globus_sdk.TransferData(ep, ep, submission_id=sid, label="client's")
        td2.add_item(f"{d}/g", f"{d}/client/g")
        theirs = other.submit_transfer(td2)
        assert theirs.http_status == 202 and theirs["code"] == "Accepted" and theirs["task_id"] != mine["task_id"]
        assert wait(other, theirs["task_id"])["owner_id"] == client["client_id"]
        assert wait(tc, mine["task_id"])["owner_id"] == DEV_IDENTITY_ID
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            other.get_task(mine["task_id"])
        assert info.value.http_status == 404
        # and each still gets its own task back on a retry
        assert other.submit_transfer(td2)["task_id"] == theirs["task_id"]
        assert tc.submit_transfer(td)["task_id"] == mine["task_id"]

    def test_a_duplicate_is_answered_after_a_restart(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = EmulatorSettings(root=tmp_path / "root", state_dir=tmp_path / "state")
        with run_in_thread(settings) as first:
            for k, v in sdk_environment(first.url).items():
                monkeypatch.setenv(k, v)
            token = first.dev_token()["access_token"]
            tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
            ep = first.local_collection
            make_tree(tmp_path / "root" / "local", {"f": "f"})
            dd = globus_sdk.DeleteData(ep, submission_id=tc.get_submission_id()["value"])
            dd.add_item("/f")
            original = tc.submit_delete(dd)["task_id"]
            wait(tc, original)
        with run_in_thread(EmulatorSettings(root=tmp_path / "root", state_dir=tmp_path / "state")) as second:
            for k, v in sdk_environment(second.url).items():
                monkeypatch.setenv(k, v)
            tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
            again = tc.submit_delete(dd)
            assert again.http_status == 200 and again["code"] == "Duplicate" and again["task_id"] == original
