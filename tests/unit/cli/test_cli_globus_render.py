"""Unit tests of ``radical-orbit globus``'s output: ``-F unix``, ``--jmespath``, the end-of-wait
line and the fault lines, and bad options that must be one usage error, never a traceback.

Nothing here talks to a bridge; the commands end to end are in
tests/integration/test_cli_globus_parity.py.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from radical.orbit.cli.globus_cmds.app import EXIT_USAGE, CliExit, Runtime
from radical.orbit.cli.globus_cmds.render import (
    OutputError,
    compile_jmespath,
    fmt_duration,
    globus_duration,
    machine_output,
    task_summary,
    unix_lines,
)
from radical.orbit.cli.globus_cmds.waiting import FaultLines
from radical.orbit.cli.main import cli

TID = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"


class TestUnix:
    def test_dict_scalars_sorted_then_members_under_their_name(self) -> None:
        doc = {"b": 2, "a": None, "DATA": [{"name": "x", "size": 1}, {"name": "y", "size": 2}], "ok": True}
        assert list(unix_lines(doc)) == ["None\t2\tTrue", "DATA", "x\t1", "DATA", "y\t2"]

    def test_list_of_dicts_share_columns_missing_keys_are_none(self) -> None:
        rows = [{"id": "1", "label": "a"}, {"id": "2"}]
        assert list(unix_lines(rows)) == ["1\ta", "2\tNone"]

    def test_scalar_lists_with_and_without_a_name(self) -> None:
        assert list(unix_lines(["a", "b", 3])) == ["a\tb\t3"]
        assert list(unix_lines({"paths": ["/a", "/b"]})) == ["PATHS\t/a", "PATHS\t/b"]
        assert list(unix_lines([])) == []

    def test_list_of_lists_one_line_each(self) -> None:
        assert list(unix_lines([["t1", "ACTIVE"], ["t2", "FAILED"]])) == ["t1\tACTIVE", "t2\tFAILED"]

    def test_nested_dict_is_named_in_capitals(self) -> None:
        doc = {"code": "X", "fatal_error": {"code": "CANCELED", "description": "canceled"}}
        assert list(unix_lines(doc)) == ["X", "FATAL_ERROR", "CANCELED\tcanceled"]

    def test_scalar(self) -> None:
        assert list(unix_lines("dev@orbit.local")) == ["dev@orbit.local"]
        assert list(unix_lines(None)) == ["None"]

    @pytest.mark.parametrize(
        "value",
        [[{"a": 1}, 2], [{"a": 1}, {"a": [1]}]],
        ids=["objects-and-values", "value-and-list-under-one-key"],
    )
    def test_shapes_it_cannot_flatten_say_so(self, value: object) -> None:
        with pytest.raises(OutputError, match="--jmespath"):
            list(unix_lines(value))


class TestJmespath:
    def test_search_then_format(self) -> None:
        doc = {"DATA": [{"task_id": "t1", "status": "ACTIVE"}, {"task_id": "t2", "status": "FAILED"}]}
        expr = compile_jmespath("DATA[?status=='FAILED'].task_id")
        assert json.loads(machine_output(doc, "json", expr)) == ["t2"]
        assert machine_output(doc, "unix", compile_jmespath("DATA[].[task_id, status]")) == "t1\tACTIVE\nt2\tFAILED"
        assert machine_output(doc, "unix", compile_jmespath("DATA[0].task_id")) == "t1"

    @pytest.mark.parametrize(("text", "says"), [("DATA[", "not a JMESPath expression"), ("  ", "empty")])
    def test_bad_expression(self, text: str, says: str) -> None:
        with pytest.raises(OutputError, match=says):
            compile_jmespath(text)

    def test_expression_failing_on_the_data(self) -> None:
        with pytest.raises(OutputError, match="failed on this output"):
            machine_output({"a": "x"}, "json", compile_jmespath("abs(a)"))

    def test_runtime_emit_defaults_to_json_and_turns_failures_into_usage_exits(self, capsys: pytest.CaptureFixture[str]) -> None:
        rt = Runtime(jmespath=compile_jmespath("a"))
        assert rt.structured
        rt.emit({"a": [1, 2]})
        assert json.loads(capsys.readouterr().out) == [1, 2]
        rt.fmt = "unix"
        rt.emit({"a": [1, 2]})
        assert capsys.readouterr().out == "1\t2\n"
        rt.jmespath = compile_jmespath("abs(a)")
        with pytest.raises(CliExit) as info:
            rt.emit({"a": "x"})
        assert info.value.code == EXIT_USAGE
        assert not Runtime().structured


class TestSummary:
    def test_a_cancelled_task_lasts_what_globus_says_not_the_wait(self) -> None:
        task = {
            "task_id": TID, "type": "TRANSFER", "status": "FAILED", "files_transferred": 0, "bytes_transferred": 0,
            "request_time": "2030-01-01T10:00:00+00:00", "completion_time": "2030-01-01T10:02:05+00:00",
            "fatal_error": {"code": "CANCELED", "description": "canceled"},
        }
        line = task_summary(task, elapsed=0.3)
        assert "2 min 5 s" in line and "0.3 s" not in line and "CANCELED" in line
        assert globus_duration(task) == 125.0

    def test_without_a_completion_time_the_wait_is_the_duration(self) -> None:
        task = {"task_id": TID, "status": "ACTIVE", "request_time": "2030-01-01T10:00:00+00:00", "completion_time": None}
        assert globus_duration(task) is None
        assert task_summary(task, elapsed=4.25).endswith("4.2 s")
        assert globus_duration({"request_time": "garbage", "completion_time": "2030-01-01T10:00:00+00:00"}) is None

    @pytest.mark.parametrize(("seconds", "text"), [(3.0, "3 s"), (2.25, "2.2 s"), (61, "1 min 1 s"), (7500, "2 h 5 min")])
    def test_durations(self, seconds: float, text: str) -> None:
        assert fmt_duration(seconds) == text


class TestFaultLines:
    def payload(self, time: str | None, details: str | None = "/home/dev/denied/a.txt", **kw: object) -> dict[str, object]:
        return {"task_id": TID, "code": "PERMISSION_DENIED", "description": "permission denied", "details": details, "time": time, **kw}

    def test_one_line_per_fault_not_per_retry(self) -> None:
        lines = FaultLines(TID)
        shown = [lines.line(self.payload(f"2030-01-01T10:00:0{i}+00:00")) for i in range(5)]
        assert shown[0] is not None and "PERMISSION_DENIED" in shown[0] and "a.txt" in shown[0]
        assert shown[1:] == [None] * 4
        # another file failing is another fault
        other = lines.line(self.payload("2030-01-01T10:00:09+00:00", details="/home/dev/denied/b.txt"))
        assert other is not None and "b.txt" in other

    def test_the_nice_status_stand_in_repeats_nothing(self) -> None:
        lines = FaultLines(TID)
        assert lines.line(self.payload("2030-01-01T10:00:00+00:00")) is not None
        assert lines.line(self.payload(None, details=None, description="PERMISSION_DENIED")) is None
        assert FaultLines(TID).line(self.payload(None, details=None)) is not None  # alone, it is the news

    def test_cancelling_is_always_said(self) -> None:
        lines = FaultLines(TID)
        lines.line(self.payload("2030-01-01T10:00:00+00:00"))
        text = lines.line(self.payload("2030-01-01T10:00:01+00:00", cancelling=True))
        assert text is not None and "cancelling (--fail-fast)" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--jq", "DATA[", "task", "list"], "not a JMESPath expression"),
        (["task", "list", "--jmespath", ""], "empty"),
        (["-F", "xml", "task", "list"], "'xml' is not one of"),
        (["task", "cancel"], "TASK_ID or --all"),
        (["task", "cancel", TID, "--all"], "TASK_ID or --all"),
        (["task", "update", TID], "nothing to update"),
        (["task", "update", TID, "--deadline", "soon"], "--deadline"),
        (["task", "list", "--filter-label", "a/b"], "'/' and ','"),
        (["task", "list", "--filter-task-id", "nope"], "--filter-task-id"),
        (["task", "list", "--filter-status", "DONE"], "--filter-status"),
        (["task", "list", "--filter-requested-after", "yesterday"], "--filter-requested-after"),
        (["task", "event-list", TID, "--filter-errors", "--filter-non-errors"], "exclude each other"),
        (["ls", "local:/x/", "-r", "--limit", "5"], "--recursive"),
        (["ls", "local:/x/", "--filter", "a/b"], "cannot contain '/'"),
        (["ls", "local:/x/", "--recursive-depth-limit", "-1"], "--recursive-depth-limit"),
        (["rm", "local"], "COLLECTION:PATH"),
        (["whoami", "--linked"], None),
    ],
)
def test_bad_options_are_one_usage_error_line(args: list[str], says: str | None) -> None:
    """Caught while parsing or before any request: exit 2, one 'Error:' line, no traceback
    (no bridge, no credential is needed to be told)."""
    result = CliRunner().invoke(cli, ["globus", *args], env={"GLOBUS_ACCESS_TOKEN": ""})
    assert result.exit_code == EXIT_USAGE, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    if says is not None:
        assert says in errors[0]


def test_help_lists_the_globus_cli_names() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["globus", "--help"]).stdout
    for name in ("rm", "whoami"):
        assert name in top
    task = runner.invoke(cli, ["globus", "task", "--help"]).stdout
    for name in ("event-list", "pause-info", "update"):
        assert name in task
    ls = runner.invoke(cli, ["globus", "ls", "--help"]).stdout
    assert "--recursive-depth-limit" in ls and "--jmespath" in ls and "unix" in ls
