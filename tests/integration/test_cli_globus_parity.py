"""What a Globus CLI user expects of ``radical-orbit globus`` (issue 14, section 6), end to end:
CLI -> bridge -> endpoint's globus plugin -> emulator, all real processes.

``rm``, ``whoami``, ``ls -r``, ``task event-list``/``pause-info``/``update``,
``task cancel --all``, ``task list --filter-*``, ``-F unix`` and ``--jmespath``; one
fault line per fault while waiting; a cancelled task's duration as Globus tells it.
The stack is test_cli_globus.py's (started once more, for this module).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from test_cli_globus import (
    GODATA,
    TUTORIAL_1,
    Stack,
    check,
    print_logs_on_failure,
    run,
    start_stack,
    task_id_of,
)

from radical.orbit.cli.globus_cmds.render import fmt_duration, globus_duration

pytestmark = pytest.mark.integration

DEV_USER = "dev@orbit.local"
DEV_ID = "b0d3c0de-0000-4000-8000-00000000d3f0"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory)


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    yield
    print_logs_on_failure(request, stack)


def stderr_errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


@pytest.fixture
def slow_source(stack: Stack) -> Iterator[str]:
    """A source directory the emulator copies at 20 kB/s: tasks stay ACTIVE for a minute."""
    src = stack.tutorial_root / "home" / "dev" / "parity-slow"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(200_000))
    faults = f"{stack.emu}/_emulator/faults"
    httpx.patch(faults, json={"bandwidth": {TUTORIAL_1: 20_000}}, timeout=10).raise_for_status()
    try:
        yield f"{TUTORIAL_1}:/~/parity-slow/"
    finally:
        httpx.patch(faults, json={"bandwidth": {}}, timeout=10)
        run(stack, "task", "cancel", "--all")  # whatever a failed test left running


def test_whoami_text_json_unix_and_linked(stack: Stack) -> None:
    assert check(run(stack, "whoami")).stdout.strip() == DEV_USER
    info = json.loads(check(run(stack, "whoami", "-F", "json")).stdout)
    assert info["sub"] == DEV_ID and info["preferred_username"] == DEV_USER
    assert check(run(stack, "-F", "unix", "--jq", "sub", "whoami")).stdout.strip() == DEV_ID
    verbose = check(run(stack, "whoami", "-v")).stdout
    assert "ID:" in verbose and DEV_ID in verbose
    assert check(run(stack, "whoami", "--linked-identities")).stdout.split() == [DEV_USER]
    linked = json.loads(check(run(stack, "whoami", "--linked-identities", "-F", "json")).stdout)
    assert [i["username"] for i in linked] == [DEV_USER]


def test_ls_recursive_depth_filter_and_formats(stack: Stack) -> None:
    root = stack.local_root / "lsr"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hid").mkdir()
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "b.log").write_text("b")
    (root / "sub" / "deeper" / "c.txt").write_text("c")
    names = check(run(stack, "ls", "-r", "local:/lsr/")).stdout.split()
    assert sorted(names) == ["a.txt", "sub/", "sub/b.log", "sub/b.txt", "sub/deeper/", "sub/deeper/c.txt"]
    assert names.index("sub/") < names.index("sub/b.txt") and names.index("sub/deeper/") < names.index("sub/deeper/c.txt")
    assert ".hid/" in check(run(stack, "ls", "-r", "-a", "local:/lsr/")).stdout.split()
    # depth 1 lists sub/ but not what deeper/ holds; depth 0 is a plain ls
    one = check(run(stack, "ls", "-r", "--recursive-depth-limit", "1", "local:/lsr/")).stdout.split()
    assert "sub/deeper/" in one and "sub/deeper/c.txt" not in one
    assert sorted(check(run(stack, "ls", "-r", "--recursive-depth-limit", "0", "local:/lsr/")).stdout.split()) == ["a.txt", "sub/"]
    # --filter keeps every directory (to descend) and the matching files, as the Globus CLI
    filtered = check(run(stack, "ls", "-r", "local:/lsr/", "--filter", "~*.txt")).stdout.split()
    assert "sub/b.log" not in filtered and "sub/deeper/c.txt" in filtered and "sub/" in filtered
    doc = json.loads(check(run(stack, "ls", "-r", "local:/lsr/", "-F", "json")).stdout)
    assert {e["name"] for e in doc["DATA"]} >= {"sub/deeper/c.txt", "a.txt"}
    rows = check(run(stack, "ls", "-r", "local:/lsr/", "-F", "unix", "--jq", "DATA[].[name, type]")).stdout.splitlines()
    assert "sub/deeper\tdir" in rows and "sub/deeper/c.txt\tfile" in rows
    result = check(run(stack, "ls", "-r", "local:/lsr/", "--offset", "1"), 2)
    assert len(stderr_errors(result.stderr)) == 1


def test_unix_and_jmespath_on_lists_and_records(stack: Stack) -> None:
    lines = check(run(stack, "ls", GODATA, "-F", "unix")).stdout.splitlines()
    assert lines[0].startswith("file_list\t") and lines.count("DATA") == 3
    assert check(run(stack, "ls", GODATA, "--jq", "DATA[].name", "-F", "unix")).stdout.split() == ["file1.txt", "file2.txt", "file3.txt"]
    assert json.loads(check(run(stack, "ls", GODATA, "--jmespath", "length(DATA)")).stdout) == 3
    # an expression that fails on the data is the caller's to fix: one line, exit 2
    result = check(run(stack, "ls", GODATA, "--jq", "abs(path)"), 2)
    assert stderr_errors(result.stderr) and "failed on this output" in result.stderr
    result = check(run(stack, "ls", GODATA, "-F", "unix", "--jq", "[path, DATA[0]]"), 2)
    assert "-F unix cannot print" in result.stderr and "Traceback" not in result.output


def test_rm_waits_and_exits_like_globus_rm(stack: Stack) -> None:
    root = stack.local_root / "rmt"
    (root / "dir" / "in").mkdir(parents=True)
    (root / "dir" / "in" / "x.txt").write_text("x")
    (root / "one.txt").write_text("1")
    for name in ("a.tmp", "b.tmp", "keep.txt"):
        (root / name).write_text(name)
    result = check(run(stack, "rm", "local:/rmt/one.txt"))
    assert "Delete task submitted under ID" in result.stderr and "SUCCEEDED" in result.stdout
    assert not (root / "one.txt").exists()
    result = check(run(stack, "rm", "local:/rmt/one.txt"), 1)  # missing: the delete FAILED
    assert "FAILED" in result.stderr
    check(run(stack, "rm", "local:/rmt/one.txt", "--ignore-missing"))
    check(run(stack, "rm", "local:/rmt/dir/"), 1)  # a directory needs -r
    assert (root / "dir").exists()
    assert check(run(stack, "rm", "-r", "local:/rmt/dir/", "-F", "json", "--jq", "status")).stdout.strip() == '"SUCCEEDED"'
    assert not (root / "dir").exists()
    check(run(stack, "rm", "local:/rmt/*.tmp"))  # globs by default; no prompt without a terminal
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]
    dry = json.loads(check(run(stack, "rm", "local:/rmt/keep.txt", "--dry-run", "-F", "json")).stdout)
    assert dry["paths"] == ["/rmt/keep.txt"] and (root / "keep.txt").exists()


def test_task_update_pause_info_events_filters_and_cancel_all(stack: Stack, slow_source: str) -> None:
    first = task_id_of(check(run(stack, "transfer", slow_source, "local:/par1/", "-r", "--label", "p14d-first")))
    second = task_id_of(check(run(stack, "transfer", slow_source, "local:/par2/", "-r", "--label", "p14d-second")))
    # update: a new label and deadline, shown by task show
    assert "Updated" in check(run(stack, "task", "update", first, "--label", "p14d-renamed", "--deadline", "2031-01-02 03:04:05")).stdout
    shown = check(run(stack, "task", "show", first, "-F", "unix", "--jq", "[label, deadline]")).stdout.split()
    assert shown[0] == "p14d-renamed" and shown[1].startswith("2031-01-02")
    assert check(run(stack, "task", "pause-info", first)).stdout.strip() == f"Task {first} is not paused."
    assert json.loads(check(run(stack, "task", "pause-info", first, "-F", "json")).stdout)["pause_rules"] == []
    # event-list is events under the Globus CLI's name and options
    events = json.loads(check(run(stack, "task", "event-list", first, "--filter-non-errors", "-F", "json")).stdout)
    assert events["DATA"] and not any(e["is_error"] for e in events["DATA"])
    assert "STARTED" in check(run(stack, "task", "event-list", first)).stdout
    # list filters, mapped onto Globus' task_list filter
    def listed(*args: str) -> set[str]:
        return set(json.loads(check(run(stack, "task", "list", "--limit", "100", "--jq", "DATA[].task_id", *args)).stdout))

    assert listed("--filter-label", "P14D-*") >= {first, second}  # inexact: glob, any case
    assert listed("--exact", "--filter-label", "p14d-second") == {second}
    assert listed("--filter-task-id", first, "--filter-status", "ACTIVE") == {first}
    assert not listed("--filter-type", "DELETE") & {first, second}
    assert not listed("--filter-requested-after", "2099-01-01") & {first, second}
    assert {first, second} <= listed("--filter-requested-after", "2000-01-01", "--filter-not-label", "nothing*")
    # cancel --all: one line per in-progress task, then nothing is left
    out = check(run(stack, "task", "cancel", "--all")).stdout.splitlines()
    assert any(line.startswith(f"{first} (") and " of " in line for line in out)
    assert any(line.startswith(f"{second} (") for line in out)
    result = check(run(stack, "task", "cancel", "--all"), 1)
    assert stderr_errors(result.stderr) == ["Error: You have no in-progress tasks."]
    # the update refused once the task ended: one line, exit 1
    check(run(stack, "task", "wait", first, "--timeout", "60"), 1)
    result = check(run(stack, "task", "update", first, "--label", "late"), 1)
    assert len(stderr_errors(result.stderr)) == 1 and "conflict" in result.stderr.lower()


def test_a_cancelled_task_shows_globus_duration_not_the_wait(stack: Stack, slow_source: str) -> None:
    tid = task_id_of(check(run(stack, "transfer", slow_source, "local:/par3/", "-r")))
    check(run(stack, "task", "wait", tid, "--timeout", "2.5"), 3)  # let it run a while first
    check(run(stack, "task", "cancel", tid))
    result = check(run(stack, "task", "wait", tid, "--timeout", "60"), 1)
    doc = json.loads(check(run(stack, "task", "show", tid, "-F", "json")).stdout)
    duration = globus_duration(doc)
    assert duration is not None and duration >= 2
    summary = next(line for line in result.stderr.splitlines() if line.startswith(f"Task {tid} FAILED"))
    assert fmt_duration(duration) in summary and "CANCELED" in summary
    assert not re.search(r"\d\.\d s", summary)  # how long the wait took (a fraction of a second) is not shown


def test_one_fault_line_per_fault_not_per_retry(stack: Stack) -> None:
    src = stack.tutorial_root / "home" / "dev" / "parity-denied"
    src.mkdir(parents=True, exist_ok=True)
    (src / "a.txt").write_text("a")
    resp = httpx.post(
        f"{stack.emu}/_emulator/faults/paths",
        json={"collection": TUTORIAL_1, "path": "/home/dev/parity-denied", "kind": "permission"},
        timeout=10,
    )
    resp.raise_for_status()
    try:
        result = check(run(stack, "transfer", f"{TUTORIAL_1}:/~/parity-denied/", "local:/par4/", "-r", "--wait", "--timeout", "10"), 3)
        tid = task_id_of(result)
        faults = [line for line in result.stderr.splitlines() if "fault on task" in line]
        assert len(faults) == 1 and "PERMISSION_DENIED" in faults[0], result.stderr
        retries = json.loads(check(run(stack, "task", "event-list", tid, "--filter-errors", "-F", "json")).stdout)
        assert len(retries["DATA"]) >= 2  # Globus logged the fault at each retry
    finally:
        httpx.delete(f"{stack.emu}/_emulator/faults/paths/{resp.json()['id']}", timeout=10)
        run(stack, "task", "cancel", "--all")
