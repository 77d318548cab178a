"""The lifeline pipe in one process: the watcher fires when the write end closes, and
refuses anything that is not a pipe (see tests/integration/test_demo.py for the real
parent killed with SIGKILL)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from radical.orbit.lifeline import ENV_LIFELINE, lifeline, watch_parent


def test_without_the_variable_nothing_is_watched() -> None:
    assert watch_parent({}, on_gone=lambda: None) is None


def test_the_child_is_told_when_every_write_end_is_closed() -> None:
    env: dict[str, str] = {"OTHER": "1"}
    read_end, write_end = lifeline(env)
    assert env[ENV_LIFELINE] == str(read_end)
    assert not os.get_inheritable(read_end) and not os.get_inheritable(write_end)  # no other child gets a copy
    gone = threading.Event()
    watcher = watch_parent(env, on_gone=gone.set)
    assert watcher is not None and watcher.daemon
    assert ENV_LIFELINE not in env and env == {"OTHER": "1"}  # not passed on to what this process starts
    assert not gone.wait(0.2)  # the parent is still there
    os.close(write_end)
    assert gone.wait(10)
    watcher.join(10)
    with pytest.raises(OSError):
        os.fstat(read_end)  # the watcher closed its end


@pytest.mark.parametrize("value", ["not-a-number", "-1", "99999", "file"])
def test_anything_but_an_open_pipe_is_refused_with_a_warning(
    value: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open(tmp_path / "plain", "w") as plain:
        env = {ENV_LIFELINE: str(plain.fileno()) if value == "file" else value}
        with caplog.at_level(logging.WARNING, logger="radical.orbit.lifeline"):
            assert watch_parent(env, on_gone=lambda: pytest.fail("must not fire")) is None
    assert ENV_LIFELINE not in env
    assert "is not an open pipe" in caplog.text and ENV_LIFELINE in caplog.text
