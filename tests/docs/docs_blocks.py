"""Find the fenced code blocks of the documentation and decide which of them run.

The rule: every shell and Python block of README.md and docs/ runs as written, or
says why it cannot.

* a block tagged ``bash``, ``sh``, ``shell``, ``console`` (or ``shell-session``) or
  ``python`` (``py``) runs, as a user would paste it;
* unless the line just above its opening fence (blank lines aside) is
  ``<!-- not-runnable: REASON -->``: it needs something CI cannot have (real Globus
  credentials, a second host, root, a TLS certificate of the user's), or is covered
  elsewhere; the reason is required;
* every other block is text that is never run (``text`` for output and synopses,
  ``json``, ``toml`` ...); a fence without a tag is refused, so a command cannot
  hide in an untagged block;
* a ``console`` block is a transcript: the lines after a ``$ `` prompt are the
  commands (a line ending in ``\\`` continues on the next, which may start with
  ``> ``); the other lines are output and are not run.

This module reads Markdown (and asks ``bash -n`` where a command ends); ``docs_session``
runs what it finds.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: languages whose blocks are shell commands (``console``: a transcript with ``$ `` prompts)
SHELL = frozenset({"bash", "sh", "shell", "console", "shell-session"})
PYTHON = frozenset({"python", "py", "python3"})
RUNNABLE = SHELL | PYTHON
TRANSCRIPTS = frozenset({"console", "shell-session"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*not-runnable\s*(?::(?P<reason>.*?))?\s*-->\s*$")
_MARKER_START = re.compile(r"^\s*<!--\s*not-runnable\b")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file.

    :param line: 1-based line number of the opening fence
    :param skip_reason: the reason of its ``not-runnable`` marker, None when unmarked
    """

    doc: Path
    line: int
    lang: str
    text: str
    skip_reason: str | None = None

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE

    @property
    def runs(self) -> bool:
        return self.runnable and self.skip_reason is None

    def where(self, root: Path | None = None) -> str:
        doc = self.doc.relative_to(root) if root is not None and self.doc.is_relative_to(root) else self.doc
        return f"{doc}:{self.line}"

    def script(self) -> str:
        """The shell script or Python source to run, line for line with the block.

        Line ``n`` of the result is line ``n`` of the block's body (the line after the
        fence is 1), so an error's line number points into the document.
        """
        if self.lang not in TRANSCRIPTS:
            return self.text
        return "\n".join(transcript_commands(self.text.split("\n"))) + "\n"


def split_commands(script: str) -> list[tuple[int, str]]:
    """The complete commands of a shell script, as a terminal runs them one at a time.

    Each item is ``(first_line, text)``: one command (a pipeline, an ``&&`` list, a
    loop, a heredoc) possibly over several lines; comments and blank lines are
    dropped. ``bash -n`` decides where a command ends. A command that never becomes
    complete (a syntax error) is returned as it is, for bash to report.
    """
    lines = script.rstrip("\n").split("\n")
    out: list[tuple[int, str]] = []
    start = 0
    for end in range(len(lines)):
        text = "\n".join(lines[start : end + 1])
        if end + 1 < len(lines) and not _complete(text):
            continue
        if any(line.strip() and not line.lstrip().startswith("#") for line in lines[start : end + 1]):
            out.append((start + 1, text + "\n"))
        start = end + 1
    return out


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    check = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True, check=False)
    return check.returncode == 0 and "here-document" not in check.stderr


class DocError(ValueError):
    """The Markdown breaks the rule above (the message names the file and line)."""


def transcript_commands(lines: list[str]) -> list[str]:
    """The commands of a console transcript; output lines become empty lines."""
    out: list[str] = []
    continued = False
    for line in lines:
        if continued:
            command = line.removeprefix("> ")
        elif line.startswith("$ ") or line == "$":
            command = line[2:]
        else:
            out.append("")
            continue
        out.append(command)
        continued = command.rstrip().endswith("\\")
    return out


def parse(doc: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of ``doc`` in order.

    :raises DocError: an untagged fence, a marker without a reason, a marker above
        something that is not a runnable block, or a fence that is never closed
    """
    lines = (doc.read_text(encoding="utf-8") if text is None else text).split("\n")
    blocks: list[Block] = []
    pending: tuple[int, str | None] | None = None  # (line, reason) of a marker waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _FENCE.match(line)
        if opening is None:
            if _MARKER_START.match(line):
                found = _MARKER.match(line)
                if pending is not None:
                    raise DocError(f"{doc}:{pending[0]}: a not-runnable marker with no code block below it")
                pending = (i + 1, found.group("reason") if found else None)
            elif line.strip() and pending is not None:
                raise DocError(f"{doc}:{pending[0]}: a not-runnable marker must stand just above the block it marks")
            i += 1
            continue
        fence, lang = opening.group("fence"), opening.group("info").strip().split(" ")[0].lower()
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise DocError(f"{doc}:{start}: the code block opened here is never closed")
        i += 1
        if not lang:
            raise DocError(
                f"{doc}:{start}: a code block without a language; tag it bash, console or python "
                "to run it (or mark it not-runnable), or text for output"
            )
        reason = None
        if pending is not None:
            reason = (pending[1] or "").strip()
            if not reason:
                raise DocError(f"{doc}:{pending[0]}: a not-runnable marker needs a reason: <!-- not-runnable: REASON -->")
            if lang not in RUNNABLE:
                raise DocError(f"{doc}:{pending[0]}: a not-runnable marker above a {lang} block, which never runs anyway")
            pending = None
        blocks.append(Block(doc, start, lang, "\n".join(body) + "\n", reason))
    if pending is not None:
        raise DocError(f"{doc}:{pending[0]}: a not-runnable marker with no code block below it")
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]} and len(line) - len(line.lstrip()) <= 3


def documents(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/ (subfolders included), sorted."""
    docs = [root / "README.md"] if (root / "README.md").is_file() else []
    return docs + sorted((root / "docs").rglob("*.md"))
