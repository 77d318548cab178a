"""The rules about code blocks in README.md and docs/ (see ``docs_blocks``), without running them.

Fast: every document is parsed, so an untagged fence or a ``not-runnable`` marker
without a reason fails here before any shell starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_blocks import DocError, documents, parse, split_commands, transcript_commands

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]
DOC = Path("guide.md")


@pytest.mark.parametrize("doc", documents(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_document_follows_the_rules(doc: Path) -> None:
    parse(doc)


def test_the_readme_and_every_doc_under_docs_are_found() -> None:
    found = {str(p.relative_to(ROOT)) for p in documents(ROOT)}
    assert "README.md" in found and "docs/cli.md" in found and "docs/globus.md" in found


def test_shell_console_and_python_blocks_run_text_does_not() -> None:
    blocks = parse(DOC, "```bash\necho a\n```\n\n```console\n$ echo b\nb\n```\n\n```python\nprint(1)\n```\n\n```text\n$ echo c\n```\n")
    assert [(b.lang, b.line, b.runs) for b in blocks] == [("bash", 1, True), ("console", 5, True), ("python", 10, True), ("text", 14, False)]


def test_a_marker_with_a_reason_keeps_its_block_from_running() -> None:
    (block,) = parse(DOC, "<!-- not-runnable: needs real Globus credentials -->\n\n```bash\nglobus login\n```\n")
    assert block.skip_reason == "needs real Globus credentials" and not block.runs


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<!-- not-runnable -->\n```bash\nx\n```\n", "needs a reason"),
        ("<!-- not-runnable:   -->\n```bash\nx\n```\n", "needs a reason"),
        ("```\nradical-orbit bridge\n```\n", "without a language"),
        ("<!-- not-runnable: why -->\n```text\nx\n```\n", "never runs anyway"),
        ("<!-- not-runnable: why -->\nSome prose.\n```bash\nx\n```\n", "just above"),
        ("<!-- not-runnable: why -->\n", "no code block below"),
        ("```bash\nx\n", "never closed"),
    ],
)
def test_what_breaks_the_rules_is_refused_naming_the_line(text: str, says: str) -> None:
    with pytest.raises(DocError, match=says) as err:
        parse(DOC, text)
    assert str(err.value).startswith("guide.md:1:")


def test_a_longer_fence_holds_a_shorter_one() -> None:
    (block,) = parse(DOC, "````markdown\n```bash\nx\n```\n````\n")
    assert block.lang == "markdown" and "```bash" in block.text


def test_a_transcript_runs_its_prompted_lines_and_keeps_the_line_numbers() -> None:
    lines = ["$ export A=1 \\", "> B=2", "output", "$ echo $A", "1"]
    assert transcript_commands(lines) == ["export A=1 \\", "B=2", "", "echo $A", ""]


def test_a_script_splits_into_the_commands_a_terminal_would_run_one_by_one() -> None:
    script = "# setup\necho a && \\\n  echo b\ncat > f <<'EOF'\nx\nEOF\n\nuntil true; do\n  sleep 1\ndone\n"
    assert split_commands(script) == [
        (2, "echo a && \\\n  echo b\n"),
        (4, "cat > f <<'EOF'\nx\nEOF\n"),
        (8, "until true; do\n  sleep 1\ndone\n"),
    ]
