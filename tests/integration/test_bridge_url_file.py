"""``~/.radical/orbit/bridge.url``: a second bridge in the same HOME gives it back when it stops."""

from __future__ import annotations

from pathlib import Path

from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs


def test_a_second_bridge_gives_the_url_file_back_to_the_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = scrubbed_environ()
    url_file = home / ".radical" / "orbit" / "bridge.url"
    with procs.start_bridge(home=home, env=env, log_dir=tmp_path / "a", name="first") as first:
        assert url_file.read_text().strip() == first.url
        second = procs.start_bridge(home=home, env=env, log_dir=tmp_path / "b", name="second")
        try:
            assert url_file.read_text().strip() == second.url  # the newest bridge is the default while it runs
        finally:
            second.stop()  # SIGTERM: its graceful stop
        assert url_file.read_text().strip() == first.url  # not the dead one's
        third = procs.start_bridge(home=home, env=env, log_dir=tmp_path / "c", name="third")
        try:
            first.stop()  # the file names the third: the first leaves it alone
            assert url_file.read_text().strip() == third.url
        finally:
            third.stop()
