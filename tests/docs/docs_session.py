"""Run a document's code blocks the way a reader pastes them: one shell per document.

A :class:`DocSession` is one ``bash`` that receives a document's blocks in order, so
the ``export``s and ``&`` jobs of one block are there for the next, as in a terminal.
It starts where a reader of a fresh clone stands after the README's quick start: in a
folder that looks like the clone (its top-level entries, ``.venv`` being the running
interpreter's environment), with a fresh HOME, a private TMPDIR, ``PATH`` starting
with the interpreter's ``bin`` and none of the developer's Orbit, Globus, proxy or
browser settings. Python blocks run with that interpreter, inside the same shell
(same variables, same folder).

The shell runs a block one complete command at a time (``docs_blocks.split_commands``),
as a terminal runs pasted lines. A block fails, and stops, at a command that exits
non-zero (``a && b`` included; ``pipefail`` is on), at a failure inside a command that
the ERR trap sees (in a ``$(...)``, say; tests of ``until``/``if``/``||`` are left
alone, as bash does), when one of the shell's background jobs exits non-zero (job
control is on, as in a terminal, so the shell reports it), or when it does not finish
in time. What the shell printed goes to ``WORK/session.log``.

Where the system allows it (root, or unprivileged user namespaces), the shell runs in
a network namespace and a PID namespace of its own: the documents' fixed ports (8000,
8700 ...) cannot clash with a developer's own bridge or another test run on the same
machine, and nothing a document starts can outlive the session. Elsewhere the
sessions of every test run on the machine take turns (a lock file). At the end the
session's processes get SIGTERM (services stop cleanly and remove their temporary
folders), then whatever is left SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from docs_blocks import PYTHON, Block, split_commands
from orbit_test_env import scrubbed_environ

#: environment a reader's terminal may have that would change what a block does here
#: (a browser `radical-orbit explorer` would open, a display)
_UNSET = ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "TERM", "PYTHONPATH", "PYTHONSTARTUP")
#: top-level entries of the checkout that a clone does not have
_NOT_CLONED = frozenset({".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"})
_DONE = "__DOCS_DONE__"
_JOB_EXIT = re.compile(r"^\[\d+\][+-]?\s+(?:\d+\s+)?Exit (\d+)\s+(.*?)\s*$")

# brings the new network namespace's loopback up, then becomes the shell; no `ip` needed
_LOOPBACK_UP = """
import fcntl, os, socket, struct, sys
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
os.execvp(sys.argv[1], sys.argv[1:])
"""

# what the shell runs first: failure records, and the function each block goes through
_PRELUDE = r"""
set -m -E -o pipefail
__docs_block=
trap '__docs_rc=$?; if [ "${BASH_SOURCE[0]}" = "$__docs_block" ]; then printf "%s\t%s\t%s\n" "$__docs_rc" "$LINENO" "$BASH_COMMAND" >> "$__DOCS_ERRORS"; printf "[docs] block line %s: exit status %s: %s\n" "$LINENO" "$__docs_rc" "$BASH_COMMAND" >&2; fi' ERR
__docs_run() {
    __docs_block=$1
    source "$1" < /dev/null
    __docs_status=$?
    __docs_block=
    jobs -l > "$__DOCS_JOBS"
    printf '\n%s %s %s\n' __DOCS_DONE__ "$2" "$__docs_status"
}
"""


@functools.cache
def isolation() -> tuple[str, ...] | None:
    """The ``unshare`` prefix that gives a command its own network and PID namespaces,
    or None where the system does not allow it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
    prefix = (unshare, *user, "--net", "--pid", "--fork", "--kill-child")
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", _LOOPBACK_UP, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


@dataclass
class BlockResult:
    """What running one block did."""

    block: Block
    output: str
    seconds: float
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    #: the tails of the log files the blocks wrote in the session's folder (``bridge.log`` ...)
    logs: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.timed_out

    def report(self, root: Path, tail: int = 150) -> str:
        lines = self.output.splitlines()
        shown = lines[-tail:]
        cut = f"(last {len(shown)} of {len(lines)} lines)" if len(lines) > len(shown) else ""
        why = [f"did not finish within {self.seconds:.0f} s"] if self.timed_out else []
        body = self.block.script().rstrip("\n").split("\n")
        numbered = "\n".join(f"{self.block.line + n:5d}  {text}" for n, text in enumerate(body, start=1))
        return (
            f"{self.block.where(root)}: the {self.block.lang} block starting here failed: "
            f"{'; '.join(why + self.errors)}\n"
            f"--- the block (document line numbers) ---\n{numbered}\n"
            f"--- what the session printed while it ran {cut}---\n" + "\n".join(shown)
            + (f"\n{self.logs}" if self.logs else "")
        )


class DocSession:
    """One shell for one document's blocks (see the module docstring).

    :param root: the checkout whose top-level entries the session's folder shows
    :param work: a fresh folder for HOME, TMPDIR, the folder and the block files
    """

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.home = work / "home"
        self.cwd = work / "clone"
        self.blocks_dir = work / "blocks"
        self.errors_file = work / "errors.tsv"
        self.jobs_file = work / "jobs.txt"
        self.isolated = isolation() is not None
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._lock: IO[bytes] | None = None
        self._count = 0

    # -- set-up ------------------------------------------------------------------------
    def _clone(self) -> None:
        self.cwd.mkdir(parents=True)
        for entry in self.root.iterdir():
            if entry.name not in _NOT_CLONED:
                (self.cwd / entry.name).symlink_to(entry)
        if sys.prefix != sys.base_prefix:  # the quick start's .venv: the environment running the tests
            (self.cwd / ".venv").symlink_to(sys.prefix)

    def environ(self) -> dict[str, str]:
        env = scrubbed_environ(self.home)
        for name in _UNSET:
            env.pop(name, None)
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bindir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bindir)])
        env["TMPDIR"] = str(self.work / "tmp")
        env["PYTHONUNBUFFERED"] = "1"  # a terminal would show their lines at once, too
        env["__DOCS_ERRORS"] = str(self.errors_file)
        env["__DOCS_JOBS"] = str(self.jobs_file)
        return env

    def start(self) -> Self:
        for folder in (self.home, self.blocks_dir, self.work / "tmp"):
            folder.mkdir(parents=True)
        self._clone()
        shell = ["bash", "--noprofile", "--norc"]
        prefix = isolation()
        if prefix is not None:
            argv = [*prefix, sys.executable, "-c", _LOOPBACK_UP, *shell]
        else:  # shared network: take turns with every other session on this machine
            self._lock = open(Path(tempfile.gettempdir()) / "radical-orbit-docs-session.lock", "wb")  # noqa: SIM115
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            argv = shell
        try:
            self.proc = subprocess.Popen(
                argv, cwd=self.cwd, env=self.environ(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except BaseException:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            raise
        self._reader = threading.Thread(target=self._read, name="docs-session-reader", daemon=True)
        self._reader.start()
        self._send(_PRELUDE)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self._lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _send(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8"))
        self.proc.stdin.flush()

    # -- blocks ------------------------------------------------------------------------
    def _commands(self, block: Block) -> list[tuple[int, str]]:
        """The block as the commands a terminal would run one by one: ``(line, text)``."""
        if block.lang in PYTHON:
            self._count += 1
            source = self.blocks_dir / f"{self._count:03d}-{block.doc.stem}-L{block.line}.py"
            # line n of the file is line n of the block: a traceback points into the document
            source.write_text(block.script(), encoding="utf-8")
            return [(1, f"{shlex.quote(sys.executable)} {shlex.quote(str(source))}\n")]
        return split_commands(block.script())

    def run(self, block: Block, timeout: float) -> BlockResult:
        """Run ``block`` in the session, one command at a time, at most ``timeout`` s in all.

        Stops at the first command that fails (its own exit status, a failure inside
        it that the ERR trap saw, or a background job that exited non-zero).
        """
        started = time.monotonic()
        output: list[str] = []
        result = BlockResult(block, "", 0.0)
        for line, text in self._commands(block):
            status, lines, finished = self._source(line, text, started + timeout - time.monotonic())
            output += lines
            if not finished:
                result.timed_out = True
                break
            seen = set()
            for err_status, err_line, command in self._trapped():
                seen.add((err_line, err_status))
                result.errors.append(f"line {block.line + err_line} exited with status {err_status}: {command}")
            if status and (line, status) not in seen:
                first = text.strip().split("\n")[0]
                result.errors.append(f"line {block.line + line} exited with status {status}: {first}")
            for out in [*lines, *self.jobs_file.read_text(encoding="utf-8").splitlines()]:
                died = _JOB_EXIT.match(out)
                if died:
                    result.errors.append(f"the background job `{died.group(2)}` exited with status {died.group(1)}")
            if block.lang in PYTHON and not result.errors and any("Traceback (most recent call last)" in t for t in lines):
                result.errors.append("the Python block printed a traceback")  # raised in a thread, say
            if result.errors:
                break
        result.output = "\n".join(output)
        result.seconds = time.monotonic() - started
        if not result.ok:
            result.logs = self._log_tails()
        return result

    def _log_tails(self, tail: int = 40) -> str:
        """The last lines of every ``*.log`` the blocks wrote (not the clone's own files)."""
        parts = []
        for path in sorted(self.cwd.glob("*.log")):
            if path.is_file() and not path.is_symlink():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-tail:]
                parts.append(f"--- {path.name} (last {len(lines)} lines) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def _source(self, line: int, text: str, timeout: float) -> tuple[int, list[str], bool]:
        """Source one command in the shell: (exit status, lines printed, finished in time)."""
        assert self.proc is not None
        self._count += 1
        tag = str(self._count)
        script = self.blocks_dir / f"{self._count:03d}.sh"
        script.write_text("\n" * (line - 1) + text, encoding="utf-8")  # $LINENO is the block's line
        self.errors_file.write_text("", encoding="utf-8")
        with self._cond:
            first = len(self._lines)
        self._send(f"__docs_run {shlex.quote(str(script))} {tag}\n")
        marker = re.compile(rf"^{_DONE} {tag} (\d+)$")

        def done() -> bool:
            return any(marker.match(out) for out in self._lines[first:]) or self.proc is None or self.proc.poll() is not None

        with self._cond:
            finished = self._cond.wait_for(done, timeout=max(0.0, timeout))
            lines = self._lines[first:]
        for n, out in enumerate(lines):
            found = marker.match(out)
            if found:  # the marker's own line break leaves an empty line before it
                return int(found.group(1)), lines[: n - 1] if n and not lines[n - 1] else lines[:n], True
        if finished:  # the shell itself is gone
            lines.append(f"[docs] the shell exited (status {self.proc.returncode}) before the command finished")
            return 255, lines, True
        return 0, lines, False

    def _trapped(self) -> list[tuple[int, int, str]]:
        """(status, line, command) of each failure the ERR trap recorded since the last command."""
        found: list[tuple[int, int, str]] = []
        for record in self.errors_file.read_text(encoding="utf-8").splitlines():
            head = re.match(r"(\d+)\t(\d+)\t(.*)", record)
            if head:
                found.append((int(head[1]), int(head[2]), head[3]))
            elif found:  # a command of several lines (a quoted python3 -c '...', say)
                status, line, command = found[-1]
                found[-1] = (status, line, f"{command}\n{record}")
        return found

    # -- tear-down -----------------------------------------------------------------------
    def started_pids(self) -> list[int]:
        """Process ids (as this process sees them) of everything the blocks started."""
        if self.proc is None:
            return []
        shells = {self.proc.pid, *_children(self.proc.pid)} if self.isolated else {self.proc.pid}
        return [pid for pid in _descendants(self.proc.pid) if pid not in shells]

    def close(self, grace: float = 20.0) -> None:
        """SIGTERM to everything the blocks started, then end the shell; SIGKILL what is left
        after ``grace`` seconds. Writes what the shell printed to ``work/session.log``."""
        proc = self.proc
        if proc is None:
            return
        try:
            # (pid, start time): a pid the system gave to another process meanwhile is left alone
            started = {(pid, _start_time(pid)) for pid in self.started_pids()}
            for pid, _ in started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while any(_alive(*known) for known in started) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = started | {(pid, _start_time(pid)) for pid in self.started_pids()}
            for pid, since in left:  # in a PID namespace, ending the shell ends them anyway
                if _alive(pid, since):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        finally:
            if self._reader is not None:
                self._reader.join(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            self.proc = None
            with self._cond:
                (self.work / "session.log").write_text("\n".join(self._lines) + "\n", encoding="utf-8")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        out[int(entry)] = int(fields[1])
    return out


def _children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        todo += kids
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if fields else ""


def _alive(pid: int, since: str) -> bool:
    """True while that process (same pid, same start time) runs and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == since
