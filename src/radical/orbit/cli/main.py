"""``radical-orbit``: one console script, one subcommand per component.

Subcommands live in their own modules and are imported only when invoked, so
``radical-orbit --help`` stays fast and a missing optional dependency only
affects the subcommand that needs it.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import sys
from typing import Any

import click

from ..__about__ import __version__
from ..config import ENV_LOG_LEVEL
from ..lifeline import watch_parent

#: name -> (module, attribute, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "bridge": ("radical.orbit.cli.bridge", "bridge", "Run the bridge (the hub endpoints dial and clients call)."),
    "endpoint": ("radical.orbit.cli.endpoint", "endpoint", "Run an endpoint that dials the bridge and hosts plugins."),
    "emulator": ("radical.orbit.cli.emulator", "emulator", "Run the local Globus Transfer + Auth emulator."),
    "demo": ("radical.orbit.cli.demo", "demo", "All-in-one demo: emulator, bridge, endpoint and a staging session."),
    "globus": ("radical.orbit.cli.globus", "globus", "Globus staging through Orbit (ls, transfer, task ...)."),
    "endpoints": ("radical.orbit.cli.endpoints", "endpoints", "List the endpoints connected to the bridge."),
    "explorer": ("radical.orbit.cli.explorer", "explorer", "Print a one-time sign-in link to the bridge's web Explorer."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = SUBCOMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        cmd: click.Command = getattr(module, spec[1])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def setup_logging(level: str) -> None:
    """Configure logging for the CLI (library code never does this)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if level.lower() != "debug":
        # one line per HTTP request is noise at info level (and URLs are all they would add)
        for name in ("httpx", "httpcore", "websockets"):
            logging.getLogger(name).setLevel(logging.WARNING)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radical-orbit")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=lambda: os.environ.get(ENV_LOG_LEVEL, "info").lower(),
    show_default="info, or $RADICAL_ORBIT_LOG_LEVEL",
    help="Logging verbosity.",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """RADICAL Orbit: a bridge, endpoints that dial it, plugins and a client SDK,
    with Globus staging."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level
    setup_logging(log_level)
    watch_parent()  # started by the demo or a test: stop when it is gone


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="radical-orbit")
    except BrokenPipeError:  # `radical-orbit ... | head`: the reader is gone, nothing to say
        _quiet_stdout()
        sys.exit(1)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EPIPE):
            raise
        # stdout could not be written (a full disk, /dev/full): one line, no traceback
        _quiet_stdout()
        sys.stderr.write(f"Error: cannot write the output: {exc.strerror or exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before a command installed its own handling
        sys.exit(130)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    main()
