"""``radical-orbit explorer``: a one-time sign-in link to the bridge's web Explorer.

The link carries a secret the bridge made for this client's identity (in the URL
fragment, which browsers never send to a server); opening it signs that browser in
with a cookie of its own. The bridge token stays here: the browser never sees it.
"""

from __future__ import annotations

import webbrowser

import click

from ..config import ENV_BRIDGE_CERT, ENV_BRIDGE_TOKEN, ENV_BRIDGE_URL
from ..errors import OrbitError
from .params import FiniteFloat


def _open_in_browser(url: str) -> bool:
    """Open ``url`` in the user's browser; False where there is none (a server, a container)."""
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


@click.command(name="explorer")
@click.option("--url", default=None, metavar="URL[,URL...]", help=f"Bridge URL, or several comma-separated (replicas: the first that answers) [default: ${ENV_BRIDGE_URL}, ~/.radical/orbit/bridge.url, http://127.0.0.1:8000].")
@click.option("--token", default=None, help=f"Bridge token [default: ${ENV_BRIDGE_TOKEN}, ~/.radical/orbit/bridge.token].")
@click.option("--cert", default=None, help=f"CA certificate to verify a TLS bridge [default: ${ENV_BRIDGE_CERT}, ~/.radical/orbit/bridge.cert].")
@click.option("--print-url", is_flag=True, help="Print only the sign-in URL (for scripts); open no browser.")
@click.option("--timeout", type=FiniteFloat(0, min_open=True), default=10.0, show_default=True, help="Seconds to wait for the bridge.")
def explorer(url: str | None, token: str | None, cert: str | None, print_url: bool, timeout: float) -> None:
    """Sign a browser in to the Orbit Explorer, the bridge's web page.

    Prints a sign-in URL that works once, within 5 minutes, and opens it in a
    browser when this machine has one. Open it in a browser that reaches the
    bridge at the same address.
    """
    from ..client.bridge import BridgeClient

    try:
        with BridgeClient(url, cert, token=token, timeout=timeout) as bc:
            link = bc.explorer_link()
    except OrbitError as exc:
        raise click.ClickException(exc.message) from None
    signin_url = str(link["url"])
    if print_url:
        click.echo(signin_url)
        return
    seconds = int(link.get("expires_in", 300))
    within = f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"
    click.echo(f"Sign-in link for the Orbit Explorer (works once, within {within}):\n\n  {signin_url}\n")
    if _open_in_browser(signin_url):
        click.echo("Opened it in your browser.")
    else:
        click.echo("No browser found on this machine: open the link in a browser that reaches the bridge.")
