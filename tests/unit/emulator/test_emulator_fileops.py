"""ls / mkdir / rename / stat through the real TransferClient, incl. Globus's error codes."""

from __future__ import annotations

import os

import globus_sdk
import pytest
from globus_emu_helpers import make_tree, root_of

from radical.orbit.emulators.globus import TUTORIAL_1, RunningEmulator


@pytest.fixture(scope="module")
def tree(emu: RunningEmulator) -> str:
    """/ls/ on the local collection: 2 dirs, 4 files (one hidden), sizes 1..4 bytes."""
    local = emu.local_collection
    make_tree(root_of(emu, local) / "ls", {"b_dir": {"x.txt": "x"}, "a_dir": {}, "c.txt": "cc", "a.dat": "aaa", ".hidden": "hhhh", "z.txt": "z"})
    return local


def _names(resp: globus_sdk.response.GlobusHTTPResponse) -> list[str]:
    return [f["name"] for f in resp["DATA"]]


class TestLs:
    def test_default_order_dirs_first_then_name(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        resp = tc.operation_ls(tree, path="/ls/")
        assert resp["DATA_TYPE"] == "file_list"
        assert _names(resp) == ["a_dir", "b_dir", ".hidden", "a.dat", "c.txt", "z.txt"]
        assert resp["path"] == "/ls/" and resp["endpoint"] == tree
        doc = resp["DATA"][3]
        assert doc["DATA_TYPE"] == "file" and doc["type"] == "file" and doc["size"] == 3
        assert doc["permissions"].isdigit() and len(doc["permissions"]) == 4
        assert doc["last_modified"][10] == " " and doc["last_modified"].endswith("+00:00")

    def test_home_show_hidden_limit_offset(self, tc: globus_sdk.TransferClient, emu: RunningEmulator) -> None:
        home = tc.operation_ls(TUTORIAL_1)
        assert home["path"] == "/home/dev/"
        assert tc.operation_ls(TUTORIAL_1, path="/~/")["path"] == "/home/dev/"

    def test_hidden_and_paging(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        assert ".hidden" not in _names(tc.operation_ls(tree, path="/ls/", show_hidden=False))
        page = tc.operation_ls(tree, path="/ls/", limit=2, offset=1)
        assert _names(page) == ["b_dir", ".hidden"] and page["total"] == 6 and page["length"] == 2

    def test_filters_and_orderby(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        assert _names(tc.operation_ls(tree, path="/ls/", filter="name:~*.txt")) == ["c.txt", "z.txt"]
        assert _names(tc.operation_ls(tree, path="/ls/", filter={"type": "dir"})) == ["a_dir", "b_dir"]
        assert _names(tc.operation_ls(tree, path="/ls/", filter="type:file/size:>1")) == [".hidden", "a.dat", "c.txt"]
        assert _names(tc.operation_ls(tree, path="/ls/", filter="name:!~*.txt/type:file")) == [".hidden", "a.dat"]
        # repeated filters are ORed (the CLI's recursive ls)
        assert _names(tc.operation_ls(tree, path="/ls/", filter=["type:dir", "name:z.txt"])) == ["a_dir", "b_dir", "z.txt"]
        assert _names(tc.operation_ls(tree, path="/ls/", orderby="size DESC", filter="type:file")) == [".hidden", "a.dat", "c.txt", "z.txt"]
        assert _names(tc.operation_ls(tree, path="/ls/", orderby=["type DESC", "name DESC"]))[:2] == ["z.txt", "c.txt"]

    def test_missing_and_not_a_directory(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(tree, path="/nope/")
        assert info.value.http_status == 404 and info.value.code == "ClientError.NotFound"
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(tree, path="/ls/c.txt")
        assert info.value.http_status == 502 and info.value.code == "ExternalError.DirListingFailed.NotDirectory"

    def test_unknown_endpoint(self, tc: globus_sdk.TransferClient) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls("00000000-0000-0000-0000-000000000000", path="/")
        assert info.value.http_status == 404 and info.value.code == "EndpointNotFound"


class TestEscapes:
    @pytest.mark.parametrize("path", ["/..", "/../etc", "/ls/../../", "~/../../..", "../../../../etc/passwd", "/~/../../../x"])
    def test_dotdot_refused(self, tc: globus_sdk.TransferClient, tree: str, path: str) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(tree, path=path)
        assert info.value.http_status == 403 and info.value.code == "EndpointPermissionDenied"

    def test_absolute_path_stays_inside_root(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_ls(tree, path="//etc/")  # the collection's /etc, which does not exist
        assert info.value.http_status == 404

    def test_symlink_pointing_out(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, tree: str, tmp_path_factory: pytest.TempPathFactory) -> None:
        outside = tmp_path_factory.mktemp("outside")
        (outside / "secret.txt").write_text("secret")
        base = root_of(emu, tree) / "links"
        base.mkdir(exist_ok=True)
        if not (base / "out").is_symlink():
            os.symlink(outside, base / "out")
            os.symlink(outside / "secret.txt", base / "secret.txt")
            os.symlink("../ls/c.txt", base / "inside.txt")
        for call in (
            lambda: tc.operation_ls(tree, path="/links/out/"),
            lambda: tc.operation_stat(tree, path="/links/secret.txt"),
            lambda: tc.operation_mkdir(tree, "/links/out/new"),
            lambda: tc.operation_rename(tree, "/links/out/secret.txt", "/stolen.txt"),
        ):
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                call()
            assert info.value.http_status == 403
        docs = {f["name"]: f for f in tc.operation_ls(tree, path="/links/")}
        assert docs["out"]["type"] == "invalid_symlink" and docs["secret.txt"]["type"] == "invalid_symlink"
        assert docs["inside.txt"]["type"] == "file" and docs["inside.txt"]["link_target"] == "/ls/c.txt"
        # a transfer out of the root through the link is refused at submission
        td = globus_sdk.TransferData(tree, tree)
        td.add_item("/links/secret.txt", "/copied.txt")
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.submit_transfer(td)
        assert info.value.http_status == 403 and info.value.code == "EndpointPermissionDenied"
        assert not (root_of(emu, tree) / "copied.txt").exists()


class TestMkdirRenameStat:
    def test_mkdir(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, tree: str) -> None:
        resp = tc.operation_mkdir(tree, "/m1")
        assert resp.http_status == 202 and resp["code"] == "DirectoryCreated" and resp["DATA_TYPE"] == "mkdir_result"
        assert (root_of(emu, tree) / "m1").is_dir()
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_mkdir(tree, "/m1")
        assert info.value.code == "ExternalError.MkdirFailed.Exists" and info.value.http_status == 502
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_mkdir(tree, "/no/such/parent")
        assert info.value.http_status == 404
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_mkdir(tree, "/../m2")
        assert info.value.http_status == 403 and info.value.code == "ExternalError.MkdirFailed.PermissionDenied"

    def test_rename(self, tc: globus_sdk.TransferClient, emu: RunningEmulator, tree: str) -> None:
        tc.operation_mkdir(tree, "/r1")
        resp = tc.operation_rename(tree, "/r1", "/r2")
        assert resp["code"] == "FileRenamed" and resp["DATA_TYPE"] == "result"
        assert (root_of(emu, tree) / "r2").is_dir()
        cases = [("/r1", "/r3", 404, "NotFound"), ("/r2", "/ls", 409, "Exists"), ("/r2", "/nope/r3", 502, "EndpointError"), ("/r2", "/../r3", 403, "EndpointPermissionDenied")]
        for old, new, status, code in cases:
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                tc.operation_rename(tree, old, new)
            assert (info.value.http_status, info.value.code) == (status, code), (old, new)

    def test_stat(self, tc: globus_sdk.TransferClient, tree: str) -> None:
        doc = tc.operation_stat(tree, path="/ls/a.dat")
        assert doc["DATA_TYPE"] == "file" and doc["name"] == "a.dat" and doc["size"] == 3 and doc["type"] == "file"
        assert tc.operation_stat(tree, path="/ls/a_dir")["type"] == "dir"
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.operation_stat(tree, path="/ls/missing")
        assert info.value.http_status == 404 and info.value.code == "NotFound"


class TestFileSystemErrors:
    def test_name_too_long_is_a_globus_400_without_host_paths(self, tc: globus_sdk.TransferClient, emu: RunningEmulator) -> None:
        """Regression: an over-long name made mkdir/ls raise an unmapped OSError (a 500 and a reset connection)."""
        long_path = "/~/" + "a" * 5000
        with pytest.raises(globus_sdk.TransferAPIError) as mk:
            tc.operation_mkdir(TUTORIAL_1, long_path)
        assert mk.value.http_status == 400 and mk.value.code == "ClientError.BadRequest.InvalidPath"
        for call in (lambda: tc.operation_mkdir(TUTORIAL_1, long_path), lambda: tc.operation_ls(TUTORIAL_1, path=long_path)):
            with pytest.raises(globus_sdk.TransferAPIError) as info:
                call()
            err = info.value
            assert (err.http_status, err.code) in ((400, "ClientError.BadRequest.InvalidPath"), (404, "ClientError.NotFound"))
            assert str(root_of(emu, TUTORIAL_1)) not in (err.message or "")
        tc.operation_ls(TUTORIAL_1, path="/home/share/godata/")  # and the emulator still answers
