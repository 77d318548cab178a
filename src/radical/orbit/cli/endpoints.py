"""``radical-orbit endpoints``: what is connected to the bridge, and which plugins can run."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..config import ENV_BRIDGE_CERT, ENV_BRIDGE_TOKEN, ENV_BRIDGE_URL
from ..errors import OrbitError
from .params import FiniteFloat


def _ago(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    seconds = max(0.0, time.time() - float(ts))
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _plugins_cell(plugins: list[dict[str, Any]]) -> str:
    lines = []
    for p in plugins:
        version = f" {p['version']}" if p.get("version") else ""
        if p.get("enabled", True):
            lines.append(f"[green]{p.get('name')}[/green]{version}")
        else:
            lines.append(f"[red]{p.get('name')}[/red]{version} (disabled: {p.get('reason') or 'no reason given'})")
    return "\n".join(lines) or "-"


def _render_table(url: str, endpoints: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Endpoints at {escape(url)}", title_justify="left")
    for column in ("Endpoint", "Host", "Version", "Plugins", "Connected", "Last seen", "In flight"):
        table.add_column(column)
    for ep in endpoints:
        host = ep.get("host") or {}
        name = escape(str(ep.get("name")))
        if not ep.get("alive", True):
            name += " [yellow](not alive)[/yellow]"
        plugins = [{k: escape(str(v)) if isinstance(v, str) else v for k, v in p.items()} for p in ep.get("plugins", [])]
        table.add_row(
            name,
            escape(str(host.get("hostname", "-"))),
            escape(str(ep.get("version") or "-")),
            _plugins_cell(plugins),
            _ago(ep.get("connected_at")),
            _ago(ep.get("last_seen")),
            str(ep.get("inflight", 0)),
        )
    console = Console()
    if endpoints:
        console.print(table)
    else:
        console.print(f"No endpoint is connected to the bridge at {escape(url)}.")


@click.command(name="endpoints")
@click.option("--url", default=None, metavar="URL[,URL...]", help=f"Bridge URL, or several comma-separated (replicas: the first that answers) [default: ${ENV_BRIDGE_URL}, ~/.radical/orbit/bridge.url, http://127.0.0.1:8000].")
@click.option("--token", default=None, help=f"Bridge token [default: ${ENV_BRIDGE_TOKEN}, ~/.radical/orbit/bridge.token].")
@click.option("--cert", default=None, help=f"CA certificate to verify a TLS bridge [default: ${ENV_BRIDGE_CERT}, ~/.radical/orbit/bridge.cert].")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="A table for people, or the bridge's JSON for scripts.",
)
@click.option("--timeout", type=FiniteFloat(0, min_open=True), default=10.0, show_default=True, help="Seconds to wait for the bridge.")
def endpoints(url: str | None, token: str | None, cert: str | None, fmt: str, timeout: float) -> None:
    """List the endpoints connected to the bridge, with their plugins.

    Each plugin shows whether it is enabled on that endpoint and, if not, why
    (for example a missing optional dependency).
    """
    from ..client.bridge import BridgeClient

    try:
        with BridgeClient(url, cert, token=token, timeout=timeout) as bc:
            found = bc.endpoints()
            bridge_url = bc.url
    except OrbitError as exc:
        raise click.ClickException(exc.message) from None
    if fmt == "json":
        click.echo(json.dumps({"bridge": bridge_url, "endpoints": found}, indent=2, sort_keys=True))
    else:
        _render_table(bridge_url, found)
