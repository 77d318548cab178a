"""What the demo says to do next leads somewhere real: commands that exist, docs that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from radical.orbit.cli.main import cli
from radical.orbit.demo.guide import DOCS, next_steps, serve_help, try_commands

ROOT = Path(__file__).resolve().parents[3]


def test_the_end_of_the_demo_points_at_serve_and_at_docs_that_exist() -> None:
    text = next_steps()
    assert "radical-orbit demo --serve" in text
    for path, _ in DOCS:
        assert path in text
        assert (ROOT / path).is_file(), f"the demo points at {path}, which does not exist"


@pytest.mark.parametrize("command", [command for command, _ in try_commands()])
def test_every_command_it_suggests_exists(command: str) -> None:
    argv = shlex.split(command)
    if argv[0] == "python":
        assert (ROOT / argv[1]).is_file()
        return
    assert argv[0] == "radical-orbit"
    # --help resolves the command path first: an unknown command is a usage error (exit 2)
    result = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_serve_help_says_where_everything_is_but_never_a_token(tmp_path: Path) -> None:
    token_file = tmp_path / "bridge.token"
    text = serve_help("http://127.0.0.1:8123", "http://127.0.0.1:8765", "1f0c0000-0000-4000-8000-000000000001", token_file)
    assert "The stack is running" in text  # what tests/integration/test_demo.py waits for
    assert "export RADICAL_ORBIT_BRIDGE_URL=http://127.0.0.1:8123" in text
    assert "export GLOBUS_SDK_SERVICE_URL_TRANSFER=http://127.0.0.1:8765/" in text
    assert "radical-orbit emulator token --url http://127.0.0.1:8765" in text
    assert str(token_file) in text and "1f0c0000-0000-4000-8000-000000000001" in text
    for command, _ in try_commands():
        assert command in text
    assert not re.search(r"Bearer|orbit_ct_", text)
