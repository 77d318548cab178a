"""Unit tests of ``radical-orbit globus``'s argument parsing, credentials and error lines.

Nothing here talks to a bridge; the end-to-end behaviour is in
tests/integration/test_cli_globus.py.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from radical.orbit.cli.globus_cmds.app import (
    EXIT_CONSENT,
    EXIT_ERROR,
    EXIT_USAGE,
    CliExit,
    Runtime,
    credentials_from_env,
    report_error,
)
from radical.orbit.cli.globus_cmds.args import (
    MAX_BATCH_LINE,
    batch_items,
    batch_paths,
    format_deadline,
    notify_options,
    orderby_param,
    ordered_filter_rules,
    parse_collection,
)
from radical.orbit.cli.main import cli
from radical.orbit.errors import (
    BridgeUnavailableError,
    ConsentRequiredError,
    EndpointNotFoundError,
    NotFoundError,
    PluginDisabledError,
    ValidationError,
)

UUID = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"


class TestCollectionPath:
    def test_uuid_and_path(self) -> None:
        assert parse_collection(f"{UUID}:/home/share/godata/") == (UUID, "/home/share/godata/")

    def test_local_with_and_without_path(self) -> None:
        assert parse_collection("local") == ("local", None)
        assert parse_collection("LOCAL:/~/x") == ("local", "/~/x")

    def test_path_may_hold_colons(self) -> None:
        assert parse_collection("local:/a:b") == ("local", "/a:b")

    def test_bad_collection(self) -> None:
        with pytest.raises(click.BadParameter, match="UUID or 'local'"):
            parse_collection("tutorial:/x")

    def test_required_and_forbidden_path(self) -> None:
        with pytest.raises(click.BadParameter, match="COLLECTION:PATH"):
            parse_collection("local", path="required")
        with pytest.raises(click.BadParameter, match="no ':PATH'"):
            parse_collection("local:/x", path="forbidden")


class TestBatch:
    def test_lines_prefixes_flags_comments(self) -> None:
        text = "# comment\n\na.txt b.txt\n'dir one/' out/ --recursive\n/abs/f /abs/g --no-recursive\n"
        items = batch_items(io.StringIO(text), source_prefix="/src/", dest_prefix="/dst/")
        assert items == [
            {"source": "/src/a.txt", "destination": "/dst/b.txt"},
            {"source": "/src/dir one/", "destination": "/dst/out/", "recursive": True},
            {"source": "/abs/f", "destination": "/abs/g", "recursive": False},
        ]

    def test_default_recursive_inherited(self) -> None:
        assert batch_items(["a b"], recursive=True) == [{"source": "a", "destination": "b", "recursive": True}]

    @pytest.mark.parametrize("text", ["only-one\n", "a b c\n", "a b --bogus\n", "'unclosed b\n", "# nothing\n"])
    def test_bad_lines_name_the_problem(self, text: str) -> None:
        with pytest.raises(click.BadParameter):
            batch_items(io.StringIO(text))

    def test_a_bad_line_is_quoted_short(self) -> None:
        """An error quotes at most 120 characters of the line and says how much it cut."""
        with pytest.raises(click.BadParameter, match=r"line 1: expected 'SRC_PATH DST_PATH \[--recursive\]', got 'a b c'$"):
            batch_items(["a b c\n"])
        long = "p" * 50_000
        with pytest.raises(click.BadParameter) as info:
            batch_items([f"a b {long}\n"])
        message = info.value.message
        assert len(message) < 300 and message.endswith(f"... ({len(long) + 4 - 120} more characters)"), message
        with pytest.raises(click.BadParameter) as info:
            batch_items([f"a b --{long}\n"])
        assert "unknown option" in info.value.message and len(info.value.message) < 400
        with pytest.raises(click.BadParameter) as info:
            batch_paths([f"x {long}"])
        assert "expected one PATH" in info.value.message and len(info.value.message) < 300

    def test_checksums_per_line(self) -> None:
        text = "a b --external-checksum abc\nc d --external-checksum=def --checksum-algorithm SHA256\n"
        items = batch_items(io.StringIO(text), checksum_algorithm="MD5")
        assert items[0] == {"source": "a", "destination": "b", "external_checksum": "abc", "checksum_algorithm": "MD5"}
        assert items[1]["external_checksum"] == "def" and items[1]["checksum_algorithm"] == "SHA256"
        with pytest.raises(click.BadParameter, match="needs a value"):
            batch_items(["a b --external-checksum"])

    def test_delete_paths(self) -> None:
        assert batch_paths(["x", "# c", "'y z'"], prefix="/~/") == ["/~/x", "/~/y z"]

    def test_bytes_lines_decoded_crlf_ok(self) -> None:
        assert batch_items([b"'caf\xc3\xa9 x' b\r\n"]) == [{"source": "café x", "destination": "b"}]
        assert batch_paths(io.BytesIO(b"x\r\ny\n")) == ["x", "y"]

    def test_bad_utf8_names_the_line(self) -> None:
        with pytest.raises(click.BadParameter, match=r"^--batch -: line 2 is not valid UTF-8"):
            batch_paths([b"ok", b"\xff\n"])

    def test_long_line_refused_before_shlex(self) -> None:
        """A 1 MB line took about a minute inside shlex."""
        with pytest.raises(click.BadParameter, match=r"line 2 is longer than 64 KiB"):
            batch_items(["a b", "x" * (MAX_BATCH_LINE + 1) + " y"])
        assert batch_paths(["x" * (MAX_BATCH_LINE - 1) + "\n"]) == ["x" * (MAX_BATCH_LINE - 1)]

    def test_a_line_without_end_is_refused_after_64_kib(self) -> None:
        """--batch /dev/zero read one endless line until MemoryError: no more than the cap
        is read now, and the error names the line."""
        endless = io.BytesIO(b"a b\n" + b"\0" * (4 * MAX_BATCH_LINE))
        with pytest.raises(click.BadParameter, match=r"line 2 is longer than 64 KiB"):
            batch_items(endless)
        assert endless.tell() <= 4 + MAX_BATCH_LINE + 1
        assert batch_paths(io.BytesIO(b"x" * (MAX_BATCH_LINE - 1) + b"\ny")) == ["x" * (MAX_BATCH_LINE - 1), "y"]

    @pytest.mark.parametrize("command", [["delete", "local"], ["transfer", "--dry-run", "local:/", "local:/d/"]])
    def test_cli_bad_file_or_stdin_is_a_usage_error(self, command: list[str], tmp_path: Path) -> None:
        """Were UnicodeDecodeError tracebacks (file and stdin) and a minute in shlex."""
        bad, long = tmp_path / "bad.txt", tmp_path / "long.txt"
        bad.write_bytes(b"\xff\n")
        long.write_text("a" * 1_000_000 + " b\n")
        env = {"GLOBUS_ACCESS_TOKEN": "t"}
        base = ["globus", "--url", "http://127.0.0.1:9", *command, "--batch"]
        ok = b"a b\n" if command[0] == "transfer" else b"a\n"
        for args, stdin, says in (
            ([str(bad)], None, f"--batch {bad}: line 1 is not valid UTF-8"),
            (["-"], b"\xff\n", "--batch -: line 1 is not valid UTF-8"),
            ([str(long)], None, f"--batch {long}: line 1 is longer than 64 KiB"),
            (["-"], ok + b"\0" * 1_000_000, "--batch -: line 2 is longer than 64 KiB"),
            (["-"], ok + ok, None),  # stdin, line by line, still works
        ):
            result = CliRunner().invoke(cli, base + args, input=stdin, env=env)
            if says is None:
                assert "--batch" not in result.output and "Traceback" not in result.output, result.output
                continue
            assert result.exit_code == EXIT_USAGE, result.output
            assert says in result.stderr and "Traceback" not in result.output


    @pytest.mark.parametrize(
        ("command", "says"),
        [
            (["transfer", "6c54cade-bde5-45c1-bdea-f4bd71dba2cc", "local:/~/t1/"], "SRC has no path"),
            (["transfer", "local:/a", "local"], "DST has no path"),
            (["transfer", "local", "local"], "SRC and DST have no path"),
            (["delete", "local"], "local has no path"),
        ],
    )
    def test_a_missing_path_names_the_argument(self, command: list[str], says: str) -> None:
        result = CliRunner().invoke(cli, ["globus", "--url", "http://127.0.0.1:9", *command], env={"GLOBUS_ACCESS_TOKEN": "t"})
        assert result.exit_code == EXIT_USAGE and says in result.stderr, result.output


    @pytest.mark.parametrize(
        ("command", "says"),
        [
            (["transfer", "local:/a/", "local:/b/", "-r", "--submission-id", "notauuid", "--dry-run"], "'notauuid' is not a UUID"),
            (["rm", "local:/a", "--submission-id", "zz", "--dry-run"], "'zz' is not a UUID"),
            (["delete", "local:/a", "--submission-id", "zz"], "'zz' is not a UUID"),
            (["transfer", "local:/a/", "local:/b/", "-r", "--label", "x" * 129, "--dry-run"], "at most 128"),
            (["task", "update", "6c54cade-bde5-45c1-bdea-f4bd71dba2cc", "--label", "x" * 129], "at most 128"),
            (["transfer", "local:/a", "local:/b", "--external-checksum", "abc", "-r"], "cannot go with -r/--recursive"),
        ],
    )
    def test_what_a_submission_would_refuse_is_refused_before_it_and_by_dry_run(self, command: list[str], says: str) -> None:
        """--dry-run printed a submission Globus would refuse and exited 0; --external-checksum
        with -r was submitted."""
        result = CliRunner().invoke(cli, ["globus", "--url", "http://127.0.0.1:9", *command], env={"GLOBUS_ACCESS_TOKEN": "t"})
        assert result.exit_code == EXIT_USAGE and says in result.stderr, result.output


class TestOptions:
    def test_filter_rules_keep_command_line_order(self) -> None:
        argv = ["--include", "*.txt", "--exclude=*", "--include", "keep"]
        rules = ordered_filter_rules(argv, ("*.txt", "keep"), ("*",))
        assert [(r["method"], r["name"]) for r in rules] == [("include", "*.txt"), ("exclude", "*"), ("include", "keep")]
        assert all(r["type"] == "file" for r in rules)

    def test_notify(self) -> None:
        assert notify_options(None) == {}
        assert notify_options("off") == {"notify_on_succeeded": False, "notify_on_failed": False, "notify_on_inactive": False}
        assert notify_options("failed,inactive") == {"notify_on_succeeded": False, "notify_on_failed": True, "notify_on_inactive": True}
        for bad in ("sometimes", "on,failed", ""):
            with pytest.raises(click.BadParameter):
                notify_options(bad)

    def test_orderby(self) -> None:
        assert orderby_param(()) is None
        assert orderby_param(("name:desc", "size")) == "name DESC,size ASC"
        with pytest.raises(click.BadParameter):
            orderby_param(("name:up",))

    def test_deadline_format(self) -> None:
        assert format_deadline(datetime(2030, 1, 2, 3, 4, 5)) == "2030-01-02T03:04:05"
        assert format_deadline(None) is None
        assert format_deadline(datetime(1, 1, 1)) == "0001-01-01T00:00:00"  # strftime's %Y wrote '1-01-01'


class TestCredentials:
    def test_precedence(self) -> None:
        env = {"GLOBUS_ACCESS_TOKEN": "a", "GLOBUS_REFRESH_TOKEN": "r", "GLOBUS_CLIENT_ID": "c"}
        assert credentials_from_env(env) == {"access_token": "a"}
        del env["GLOBUS_ACCESS_TOKEN"]
        assert credentials_from_env(env) == {"refresh_token": "r", "client_id": "c"}
        assert credentials_from_env({"GLOBUS_CLIENT_ID": "c", "GLOBUS_CLIENT_SECRET": "s"}) == {"client_id": "c", "client_secret": "s"}

    def test_secret_without_client_id_says_so(self) -> None:
        with pytest.raises(CliExit) as info:
            credentials_from_env({"GLOBUS_CLIENT_SECRET": "s3cr3t"})
        message = info.value.message or ""
        assert info.value.code == EXIT_USAGE and "s3cr3t" not in message
        assert message.startswith("GLOBUS_CLIENT_SECRET is set but GLOBUS_CLIENT_ID is not")
        result = CliRunner().invoke(cli, ["globus", "--url", "http://127.0.0.1:9", "ls", "local"], env={"GLOBUS_CLIENT_SECRET": "s3cr3t"})
        assert result.exit_code == EXIT_USAGE and "GLOBUS_CLIENT_SECRET is set but GLOBUS_CLIENT_ID is not" in result.stderr
        assert "s3cr3t" not in result.output

    @pytest.mark.parametrize("env", [{}, {"GLOBUS_REFRESH_TOKEN": "r"}, {"GLOBUS_CLIENT_ID": "c"}, {"GLOBUS_CLIENT_SECRET": "s"}])
    def test_missing_is_usage_error_without_the_secret(self, env: dict[str, str]) -> None:
        with pytest.raises(CliExit) as info:
            credentials_from_env(env)
        assert info.value.code == EXIT_USAGE
        assert "GLOBUS_ACCESS_TOKEN" in (info.value.message or "") or "GLOBUS_CLIENT_ID" in (info.value.message or "")
        assert "=r" not in (info.value.message or "")

    def test_cli_exits_2_before_any_network(self) -> None:
        # no bridge at this URL: the credential check must come first
        result = CliRunner().invoke(cli, ["globus", "--url", "http://127.0.0.1:9", "ls", "local"])
        assert result.exit_code == EXIT_USAGE
        assert "no Globus credentials" in result.stderr
        assert "Traceback" not in result.output


class TestErrorLine:
    def test_one_line_with_hint(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = report_error(BridgeUnavailableError("cannot reach\nthe bridge"))
        err = capsys.readouterr().err
        assert code == EXIT_ERROR
        assert err.count("\n") == 1 and err.startswith("Error: cannot reach the bridge -- hint:")

    def test_codes(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert report_error(ValidationError("bad field")) == EXIT_USAGE
        assert report_error(ConsentRequiredError("consent")) == EXIT_CONSENT
        assert report_error(NotFoundError("no such path")) == EXIT_ERROR
        assert capsys.readouterr().err.count("Error:") == 3

    def test_bad_collection_is_usage_error(self) -> None:
        result = CliRunner().invoke(cli, ["globus", "ls", "nope:/x"])
        assert result.exit_code == EXIT_USAGE
        assert "UUID or 'local'" in result.stderr

    def test_dry_run_needs_nothing(self) -> None:
        result = CliRunner().invoke(
            cli,
            ["globus", "-F", "json", "transfer", "--dry-run", f"{UUID}:/src/", "local:/dst/", "-r", "-s", "checksum", "--include", "*.txt", "--exclude", "*"],
        )
        assert result.exit_code == 0, result.output
        assert '"sync_level": "checksum"' in result.stdout
        assert '"recursive": true' in result.stdout


class _FakeBridge:
    """Just enough of BridgeClient for the endpoint choice."""

    def __init__(self, infos: list[dict[str, object]]) -> None:
        self.infos = infos

    def endpoints(self) -> list[dict[str, object]]:
        return self.infos

    def get_endpoint_client(self, info: object) -> object:
        return info


def _ep(name: str, *plugins: tuple[str, bool], alive: bool = True) -> dict[str, object]:
    return {"name": name, "alive": alive, "plugins": [{"name": p, "enabled": on, "reason": None if on else "no globus-sdk"} for p, on in plugins]}


class TestEndpointChoice:
    def _runtime(self, *infos: dict[str, object]) -> Runtime:
        rt = Runtime()
        rt._bridge = _FakeBridge(list(infos))
        return rt

    def test_first_enabled_live_one(self, capsys: pytest.CaptureFixture[str]) -> None:
        rt = self._runtime(_ep("a", ("sysinfo", True)), _ep("b", ("globus", True), alive=False), _ep("c", ("globus", True)))
        assert rt._choose_endpoint()["name"] == "c"
        assert capsys.readouterr().err == ""

    def test_note_when_several(self, capsys: pytest.CaptureFixture[str]) -> None:
        rt = self._runtime(_ep("a", ("globus", True)), _ep("b", ("globus", True)))
        assert rt._choose_endpoint()["name"] == "a"
        assert "also connected: b" in capsys.readouterr().err

    def test_none_usable_says_why(self) -> None:
        rt = self._runtime(_ep("a", ("sysinfo", True)), _ep("b", ("globus", False)))
        with pytest.raises(PluginDisabledError, match=r"a: no globus plugin; b: globus disabled \(no globus-sdk\)"):
            rt._choose_endpoint()
        with pytest.raises(EndpointNotFoundError, match="radical-orbit endpoint"):
            self._runtime()._choose_endpoint()


class TestRender:
    def test_table_cells_are_not_markup(self) -> None:
        """Regression: a file named '[bold]x' lost its brackets in `ls -l` (rich markup)."""
        from rich.console import Console

        from radical.orbit.cli.globus_cmds.render import print_record, print_table

        console = Console(record=True, width=120)
        print_table(console, [("Filename", "name")], [{"name": "[bold]draft.txt"}])
        print_record(console, {"label": "[red]x[/red]"}, [("Label", "label")])
        text = console.export_text()
        assert "[bold]draft.txt" in text and "[red]x[/red]" in text
