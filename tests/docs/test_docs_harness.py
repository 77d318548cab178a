"""The shell that runs the documents: what it keeps between blocks, what counts as a
failure, what a failure report says, and that nothing it started outlives it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_blocks import parse
from docs_session import BlockResult, DocSession

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def session(tmp_path: Path) -> Iterator[DocSession]:
    with DocSession(ROOT, tmp_path / "work") as shell:
        yield shell


def run_doc(session: DocSession, tmp_path: Path, markdown: str, timeout: float = 30.0) -> list[BlockResult]:
    doc = tmp_path / "guide.md"
    doc.write_text(markdown, encoding="utf-8")
    results = []
    for block in parse(doc):
        results.append(session.run(block, timeout))
        if not results[-1].ok:
            break
    return results


def test_exports_jobs_and_the_folder_carry_over_and_python_sees_them(session: DocSession, tmp_path: Path) -> None:
    results = run_doc(session, tmp_path, (
        "```bash\nexport GREETING=hello\nsleep 300 &\necho started > note.txt\n```\n\n"
        "```console\n$ echo \"$GREETING again\"\nhello again\n$ jobs | grep -c sleep\n1\n```\n\n"
        "```python\nimport os, pathlib, shutil\n"
        "print(os.environ['GREETING'], pathlib.Path('note.txt').read_text().strip(), shutil.which('radical-orbit') is not None)\n```\n"
    ))
    assert [r.ok for r in results] == [True, True, True], results[-1].report(tmp_path)
    assert results[1].output.split("\n") == ["hello again", "1"]
    assert results[2].output.strip() == "hello started True"


def test_a_fresh_home_and_the_clone_with_its_venv(session: DocSession, tmp_path: Path) -> None:
    (result,) = run_doc(session, tmp_path, "```bash\necho $HOME; ls -A ~ | wc -l; test -x .venv/bin/python && test -f examples/example_globus.py && echo clone\n```\n")
    home, entries, clone = result.output.split("\n")
    assert home == str(session.home) and entries == "0" and clone == "clone"
    assert not any(k.startswith(("RADICAL_ORBIT_", "GLOBUS_")) for k in session.environ() if k != "__DOCS_ERRORS")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("echo one\nfalse && echo never\necho after\n", "line 5 exited with status 1: false && echo never"),
        ("X=$(ls /no/such/place)\necho after $X\n", "line 4 exited with status 2: ls /no/such/place"),
        ("radical-orbit no-such-command | cat\necho after\n", "line 4 exited with status 2"),
    ],
)
def test_a_failing_command_fails_its_block_naming_the_document_line(session: DocSession, tmp_path: Path, body: str, says: str) -> None:
    (result,) = run_doc(session, tmp_path, f"Text.\n\n```bash\n{body}```\n")
    assert not result.ok
    report = result.report(tmp_path)
    assert report.startswith("guide.md:3: the bash block starting here failed")
    assert says in report
    assert "after" not in result.output  # the block stops at the failure


def test_a_background_job_that_dies_fails_the_block(session: DocSession, tmp_path: Path) -> None:
    (result,) = run_doc(session, tmp_path, "```bash\n(sleep 0.2; exit 3) &\nsleep 1\n```\n")
    assert not result.ok and "exited with status 3" in result.errors[0]


def test_a_python_block_that_raises_reports_its_traceback(session: DocSession, tmp_path: Path) -> None:
    (result,) = run_doc(session, tmp_path, "```python\nx = 1\nraise SystemExit('no such thing: ' + str(x))\n```\n")
    assert not result.ok
    assert "no such thing: 1" in result.report(tmp_path)


def test_a_block_that_never_ends_times_out(session: DocSession, tmp_path: Path) -> None:
    (result,) = run_doc(session, tmp_path, "```bash\necho waiting\nsleep 300\n```\n", timeout=1.0)
    assert result.timed_out and not result.ok
    assert "did not finish within" in result.report(tmp_path) and "waiting" in result.output


def test_marked_blocks_are_not_run(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text("<!-- not-runnable: needs real Globus credentials -->\n```bash\nexit 1\n```\n", encoding="utf-8")
    assert [b.runs for b in parse(doc)] == [False]


def test_closing_the_session_ends_everything_it_started(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text("```bash\nsleep 300 &\n(trap '' TERM; sleep 300) &\n```\n", encoding="utf-8")
    with DocSession(ROOT, tmp_path / "work") as session:
        (block,) = parse(doc)
        assert session.run(block, 30).ok
        started = session.started_pids()
        assert len(started) >= 2
        session.close(grace=1.0)  # the second one ignores SIGTERM: SIGKILL after the grace
    for pid in started:
        assert not _alive(pid), f"process {pid} outlived the session"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    return state != "Z"
