"""Number options of every ``radical-orbit`` command: finite floats, ports in range."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from radical.orbit.cli.main import cli
from radical.orbit.cli.params import LIMIT, FiniteFloat


def _commands(group: click.Group, ctx: click.Context, path: str = "") -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        yield f"{path} {name}".strip(), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, ctx, f"{path} {name}")


def _options() -> list[tuple[str, click.Option]]:
    ctx = click.Context(cli)
    return [(path, p) for path, cmd in _commands(cli, ctx) for p in cmd.params if isinstance(p, click.Option)]


class TestFiniteFloat:
    @pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e309"])
    def test_non_finite_refused(self, value: str) -> None:
        with pytest.raises(click.BadParameter, match=rf"must be a finite number of seconds, got {value}"):
            FiniteFloat(0).convert(value, None, None)

    def test_absurd_magnitude_refused(self) -> None:
        """1e300 s passed every open-ended range and overflowed thread waits."""
        with pytest.raises(click.BadParameter, match="at most 1e\\+09 seconds"):
            FiniteFloat(0).convert("1e300", None, None)
        assert FiniteFloat(0).convert(str(LIMIT), None, None) == LIMIT

    def test_range_and_unit_kept(self) -> None:
        assert FiniteFloat(0.1).convert("0.5", None, None) == 0.5
        with pytest.raises(click.BadParameter, match="not in the range"):
            FiniteFloat(0, min_open=True).convert("0", None, None)
        with pytest.raises(click.BadParameter, match="finite number of MiB"):
            FiniteFloat(0, unit="MiB").convert("nan", None, None)


class TestEveryCommand:
    def test_every_float_option_is_finite(self) -> None:
        floats = [(path, opt) for path, opt in _options() if isinstance(opt.type, click.types.FloatParamType)]
        assert len(floats) >= 12  # the walk found the commands
        assert [(path, opt.name) for path, opt in floats if not isinstance(opt.type, FiniteFloat)] == []

    def test_every_port_option_has_a_range(self) -> None:
        ports = [(path, opt) for path, opt in _options() if opt.name and opt.name.endswith("port")]
        assert {path for path, _ in ports} >= {"bridge", "emulator", "demo"}
        for path, opt in ports:
            assert isinstance(opt.type, click.IntRange), (path, opt.name)
            assert opt.type.min in (0, 1) and opt.type.max == 65535, (path, opt.name)

    @pytest.mark.parametrize(
        ("argv", "option"),
        [
            (["endpoints"], "--timeout"),
            (["bridge"], "--heartbeat"),
            (["bridge"], "--request-timeout"),
            (["endpoint", "--name", "e1"], "--heartbeat"),
            (["endpoint", "--name", "e1"], "--backoff-max"),
            (["endpoint", "--name", "e1"], "--shutdown-grace"),
            (["emulator"], "--retry-interval"),
            (["demo"], "--timeout"),
            (["demo"], "--size-mb"),
            (["globus", "task", "wait", "TID"], "--polling-interval"),
            (["globus", "task", "wait", "TID"], "--timeout"),
            (["globus", "transfer", "--wait", "local:/a", "local:/b"], "--timeout"),
            (["globus", "delete", "--wait", "local:/a"], "--polling-interval"),
        ],
    )
    @pytest.mark.parametrize("value", ["nan", "inf"])
    def test_non_finite_is_a_usage_error(self, argv: list[str], option: str, value: str) -> None:
        """Each was a traceback, a busy loop or an endless wait."""
        result = CliRunner().invoke(cli, [*argv, option, value])
        assert result.exit_code == 2, result.output
        assert f"'{option}': must be a finite number" in result.output and "Traceback" not in result.output

    @pytest.mark.parametrize(
        ("argv", "says"),
        [
            (["endpoints", "--timeout", "-1"], "'--timeout': -1.0 is not in the range x>0"),
            (["emulator", "--retry-interval", "-1"], "'--retry-interval': -1.0 is not in the range x>0"),
            (["emulator", "--port", "-1"], "'--port': -1 is not in the range 0<=x<=65535"),
            (["emulator", "--port", "70000"], "'--port': 70000 is not in the range 0<=x<=65535"),
            (["demo", "--emulator-port", "99999"], "'--emulator-port': 99999 is not in the range 1<=x<=65535"),
            (["demo", "--bridge-port", "0"], "'--bridge-port': 0 is not in the range 1<=x<=65535"),
        ],
    )
    def test_out_of_range_is_a_usage_error(self, argv: list[str], says: str) -> None:
        """``endpoints --timeout -1`` exited 1; the ports were OverflowError tracebacks."""
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2 and says in result.output, result.output
