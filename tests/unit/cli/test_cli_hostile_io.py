"""The CLI with hostile surroundings (found by a newcomer's probe): a 100 KB URL, a closed
stdin for ``--batch -``, a stdout that cannot be written. A clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from radical.orbit.config import check_bridge_url
from radical.orbit.errors import UsageError


def _close_stdin() -> None:  # in the child before exec: Python then starts without fd 0 (`<&-`)
    os.close(0)


def run(args: list[str], home: Path, *, close_stdin: bool = False, stdout: IO[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    env["HOME"] = str(home)
    env["GLOBUS_ACCESS_TOKEN"] = "unused-here"  # so the globus commands get as far as the URL
    return subprocess.run(
        [sys.executable, "-m", "radical.orbit.cli.main", *args],
        check=False,
        env=env,
        preexec_fn=_close_stdin if close_stdin else None,  # safe: this test starts no threads
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def test_an_absurdly_long_bridge_url_is_a_usage_error_quoted_short() -> None:
    with pytest.raises(UsageError) as info:
        check_bridge_url("http://" + "a" * 100_000, "the argument")
    assert "100007 characters long" in info.value.message and len(info.value.message) < 300


@pytest.mark.parametrize("url", ["http://a..b:8000", "http://" + "a" * 64 + ".org:8000", "http://.:8000"])
def test_a_host_dns_cannot_look_up_is_a_usage_error(url: str) -> None:
    """It was a UnicodeError traceback from getaddrinfo's IDNA encoding (and an endpoint retried forever)."""
    with pytest.raises(UsageError, match="names a host DNS cannot look up"):
        check_bridge_url(url, "the argument")
    for fine in ("http://[::1]:8000", "http://bridge-01.example.org:8000", "http://xn--nxasmq6b.com:80", "http://ünïcode.example:80"):
        check_bridge_url(fine, "the argument")


@pytest.mark.parametrize("url", ["http://alice:S3cretPW@127.0.0.1:8000", "https://alice@bridge:8443", "ws://:S3cretPW@h:1"])
def test_credentials_in_a_bridge_url_are_refused_and_never_shown(url: str) -> None:
    """They were printed in errors and logged by the endpoint on every dial."""
    with pytest.raises(UsageError) as info:
        check_bridge_url(url, "the argument", websocket=True)
    assert "user name or password" in info.value.message and "***@" in info.value.message
    assert "S3cretPW" not in info.value.message and "alice" not in info.value.message


@pytest.mark.parametrize("args", [["endpoints"], ["globus", "ls", "local"], ["endpoint", "--name", "ep"]], ids=["endpoints", "globus-ls", "endpoint"])
def test_a_password_in_the_url_never_reaches_the_terminal(args: list[str], tmp_path: Path) -> None:
    proc = run([args[0], "--url", "http://alice:S3cretPW@127.0.0.1:9", *args[1:]], tmp_path)
    assert proc.returncode in (1, 2) and "***@127.0.0.1:9" in proc.stderr, proc.stderr[-500:]
    assert "S3cretPW" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["endpoints"], ["globus", "ls", "local"]], ids=["endpoints", "globus-ls"])
def test_long_url_from_the_command_line(args: list[str], tmp_path: Path) -> None:
    proc = run([args[0], "--url", "http://" + "a" * 100_000, *args[1:]], tmp_path)
    assert proc.returncode in (1, 2) and "characters long" in proc.stderr, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr and len(proc.stderr) < 2000


@pytest.mark.parametrize("name", ["bridge.token", "bridge.url"])
def test_a_settings_file_that_is_not_utf8(name: str, tmp_path: Path) -> None:
    """``radical-orbit endpoints`` said UnicodeDecodeError in a traceback."""
    orbit = tmp_path / ".radical" / "orbit"
    orbit.mkdir(parents=True, mode=0o700)
    (orbit / name).write_bytes(b"\xff")
    (orbit / name).chmod(0o600)
    proc = run(["endpoints"], tmp_path)
    assert proc.returncode == 1 and f"{orbit / name} is not UTF-8 text" in proc.stderr, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["delete", "local"], ["transfer", "--dry-run", "local:/", "local:/d/"]])
def test_batch_from_a_closed_stdin_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    proc = run(["globus", *command, "--batch", "-"], tmp_path, close_stdin=True)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "standard input is closed" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["--help"], ["globus", "--help"]])
def test_unwritable_stdout_is_one_line_not_a_traceback(args: list[str], tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = run(args, tmp_path, stdout=full)
    assert proc.returncode == 1
    assert "cannot write the output" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-500:]
