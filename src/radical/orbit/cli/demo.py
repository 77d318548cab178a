"""``radical-orbit demo``: the all-in-one demo on the embedded Globus emulator.

Starts the emulator, a bridge and an endpoint as real processes (temporary state, free
ports), runs a realistic staging session through the seed's client API with live
progress, prints a summary and what to try next, and stops everything -- also on
Ctrl-C. ``--serve`` leaves the stack running for ``examples/example_globus.py``, the
``radical-orbit globus`` commands and your own scripts, and prints how to reach it.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console

from ..config import BRIDGE_TOKEN_FILE, orbit_home
from .params import FiniteFloat


@click.command("demo")
@click.option("--files", default=300, show_default=True, type=click.IntRange(min=3), help="Files in the generated dataset.")
@click.option("--size-mb", default=256.0, show_default=True, type=FiniteFloat(min=0.01, unit="MB"), help="Total size of the generated dataset (MB).")
@click.option("--bandwidth-mb", default=100.0, show_default=True, type=FiniteFloat(min=0, unit="MB/s"), help="Emulated source link speed in MB/s (0: unlimited).")
@click.option("--timeout", default=600.0, show_default=True, type=FiniteFloat(min=1), help="Seconds to wait for each task.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Keep collections and logs here [default: a temp dir, removed afterwards].")
@click.option("--serve", is_flag=True, help="Start the stack, print how to use it from another shell, and keep it running until Ctrl-C.")
@click.option("--bridge-port", type=click.IntRange(1, 65535), default=None, help="Bridge port for --serve [default: 8000 with --serve, else a free port].")
@click.option("--emulator-port", type=click.IntRange(1, 65535), default=None, help="Emulator port [default: 8700 with --serve, else a free port].")
def demo(
    files: int,
    size_mb: float,
    bandwidth_mb: float,
    timeout: float,
    workdir: Path | None,
    serve: bool,
    bridge_port: int | None,
    emulator_port: int | None,
) -> None:
    """Run the all-in-one demo: stage data between emulated Globus collections through Orbit.

    \b
    Steps: start emulator + bridge + endpoint; log in (refresh token from the emulator);
    stage the tutorial 'godata' folder plus a generated dataset to the local collection
    with sync_level='checksum' and live progress; re-run it (sync skips everything);
    surface a fault (missing source path); run a delete task; print a summary table.
    Exits 0 when every step did what it should, non-zero with a message otherwise.
    """
    from ..demo.guide import next_steps
    from ..demo.session import DemoFailure, DemoOptions, StagingDemo
    from ..demo.stack import DemoStack
    from ..errors import OrbitError

    # a log file or CI gets readable, unwrapped lines rather than rich's 80-column default
    console = Console() if sys.stdout.isatty() else Console(width=120)
    keep = workdir is not None
    work = workdir or Path(tempfile.mkdtemp(prefix="orbit-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    # a private HOME unless serving: the demo must not touch the user's ~/.radical/orbit
    stack = DemoStack(work, None if serve else work / "home")
    if stack.home is not None:
        stack.home.mkdir(parents=True, exist_ok=True)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    code = 0
    try:
        with console.status("starting the Globus emulator, a bridge and an endpoint ..."):
            if serve:
                stack.start(bridge_port=bridge_port or 8000, emulator_port=emulator_port or 8700)
            else:
                stack.start(bridge_port=bridge_port, emulator_port=emulator_port)
        console.print(
            f"[bold cyan]▶[/] emulator {stack.emulator_url} · bridge {stack.bridge_url} · "
            f"endpoint 'demo-dtn' (plugins globus, sysinfo) · logs in {stack.log_dir}"
        )
        if serve:
            _print_serve_help(console, stack.bridge_url, stack.emulator_url, stack.local_collection)
            while True:
                time.sleep(3600)
        runner = StagingDemo(stack, DemoOptions(files=files, size_mb=size_mb, bandwidth_mb=bandwidth_mb, timeout=timeout), console)
        runner.run()
        console.print(runner.summary())
        console.print("[bold green]demo finished: every step did what it should[/]")
        click.echo("\n" + next_steps())
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted; stopping the stack[/]")
        code = 130 if not serve else 0
    except DemoFailure as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        keep = True
        code = 1
    except (OrbitError, TimeoutError, RuntimeError, OSError) as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        console.print(f"logs are in {stack.log_dir}; rerun with --workdir DIR to keep everything")
        keep = True
        code = 1
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        elif code:
            console.print(f"kept {work} for inspection")
    sys.exit(code)


def _print_serve_help(console: Console, bridge_url: str, emulator_url: str, local_collection: str) -> None:
    from ..demo.guide import serve_help

    console.rule("radical-orbit demo --serve")
    # plain output, never wrapped, so the lines can be copied as they are
    click.echo(serve_help(bridge_url, emulator_url, local_collection, orbit_home() / BRIDGE_TOKEN_FILE))
    console.rule()
