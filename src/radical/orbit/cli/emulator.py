"""``radical-orbit emulator``: run the local Globus Transfer + Auth emulator.

``radical-orbit emulator [--host H] [--port P] [--root DIR] [--config FILE]
[--token-lifetime S] [--state-dir DIR]`` serves both APIs on one port and prints the
``export GLOBUS_SDK_SERVICE_URL_...`` lines (and ``RADICAL_ORBIT_GLOBUS_COLLECTION``, for an
endpoint's ``local``); ``radical-orbit emulator token`` prints a
fresh token for the dev user (the stand-in for an interactive Globus login).
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import click

from ..config import DEFAULT_EMULATOR_PORT, split_url
from ..errors import UsageError
from .params import FiniteFloat, GlobusId

ENV_EMULATOR_URL = "RADICAL_ORBIT_EMULATOR_URL"
ENV_CLIENT_ID = "RADICAL_ORBIT_EMULATOR_CLIENT_ID"
ENV_CLIENT_SECRET = "RADICAL_ORBIT_EMULATOR_CLIENT_SECRET"


#: the longest access token lifetime the emulator issues (ten years)
MAX_TOKEN_LIFETIME = 10 * 365 * 86400
#: a client or collection id
_GLOBUS_ID = GlobusId(" (Globus ids look like 6c54cade-bde5-45c1-bdea-f4bd71dba2cc)")


@click.group("emulator", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=DEFAULT_EMULATOR_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port (0 = any free port).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding the collections [default: a new temp dir].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSON file: collections, clients, faults.")
@click.option("--token-lifetime", default=172800, show_default=True, type=click.IntRange(1, MAX_TOKEN_LIFETIME), help="Access token lifetime in seconds (at most ten years).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), help="Persist tasks and issued tokens here (survive restarts).")
@click.option("--client-id", envvar=ENV_CLIENT_ID, type=_GLOBUS_ID, help="Confidential client id (a UUID, as Globus's are) for client_credentials [default: generated].")
@click.option("--client-secret", envvar=ENV_CLIENT_SECRET, help="Its secret [default: generated].")
@click.option("--retry-interval", default=1.0, show_default=True, type=FiniteFloat(0, min_open=True), help="Seconds between retries of failing files in tasks.")
@click.pass_context
def emulator(
    ctx: click.Context,
    host: str,
    port: int,
    root: Path | None,
    config_file: Path | None,
    token_lifetime: int,
    state_dir: Path | None,
    client_id: str | None,
    client_secret: str | None,
    retry_interval: float,
) -> None:
    """Run the local Globus Transfer API v0.10 + Globus Auth emulator."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn
    from pydantic import ValidationError as PydanticValidationError

    from ..emulators.globus import Emulator, EmulatorSettings, create_app
    from ..emulators.globus.context import ConfigError

    try:
        settings = EmulatorSettings(
            host=host,
            port=port,
            root=root,
            config=config_file,
            token_lifetime=token_lifetime,
            state_dir=state_dir,
            client_id=client_id,
            client_secret=client_secret,
            retry_interval=retry_interval,
        )
    except PydanticValidationError as exc:  # what the options' own types do not cover
        problems = "; ".join(f"--{'-'.join(str(part) for part in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(problems) from None
    generated = not (client_id and client_secret)
    try:
        em = Emulator(settings)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    except (ValueError, TypeError, OSError) as exc:
        raise click.ClickException(f"cannot start the emulator: {exc}") from exc
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        em.close()  # its temporary collections root goes with it
        raise click.ClickException(f"cannot bind {host}:{port}: {exc.strerror}") from exc
    # listening before the banner: a client that waits for the printed exports (the docs do)
    # is queued until uvicorn accepts (uvicorn listens again with its own backlog), never refused
    sock.listen()
    real_port = sock.getsockname()[1]
    url = f"http://{host}:{real_port}/"
    out = click.echo
    out(f"Globus emulator on {url}")
    out(f"  collections root: {settings.root}" + ("  (temporary: removed on exit; use --root to keep it)" if em.temp_root else ""))
    for c in em.collections:
        tag = "  <- local collection" if c.spec.local else ""
        out(f"  {c.id}  {c.display_name}{tag}")
    if em.collections.local_id:
        out(f"local collection: {em.collections.local_id}")
    if generated and sys.stdout.isatty():
        out(f"confidential client (client_credentials): client_id={settings.client_id} client_secret={settings.client_secret}")
    elif generated:  # output goes to a file or pipe: keep the secret out of logs
        out(
            f"confidential client (client_credentials): client_id={settings.client_id} "
            "(secret not shown: output is not a terminal; pass --client-secret, or use "
            "`radical-orbit emulator token --new-client`)"
        )
    else:
        out(f"confidential client (client_credentials): client_id={settings.client_id}")
    if state_dir:
        out(f"state dir: {state_dir}")
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"WARNING: listening on {host}: the admin API (/_emulator/...) hands out tokens to anyone who can reach it",
            err=True,
        )
    out("Point globus-sdk / the Globus CLI at it" + (" (and an endpoint's 'local' at its local collection):" if em.collections.local_id else ":"))
    out(f"export GLOBUS_SDK_SERVICE_URL_TRANSFER={url}")
    out(f"export GLOBUS_SDK_SERVICE_URL_AUTH={url}")
    if em.collections.local_id:  # the last export: a script waiting for the exports waits for this line
        out(f"export RADICAL_ORBIT_GLOBUS_COLLECTION={em.collections.local_id}")
    out(f"Get a token: radical-orbit emulator token --url {url.rstrip('/')}")
    sys.stdout.flush()
    app = create_app(emulator=em)
    level = (ctx.obj or {}).get("log_level", "info") if ctx.obj else "info"
    config = uvicorn.Config(app, log_level="warning" if level == "info" else level, access_log=level == "debug", lifespan="on")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


def check_emulator_url(url: str) -> None:
    """Refuse a ``--url`` no request could use, as a usage error rather than "cannot reach"."""
    try:
        split_url(url, "it", ("http", "https"), f"e.g. http://127.0.0.1:{DEFAULT_EMULATOR_PORT}")
    except UsageError as exc:
        raise click.UsageError(f"--url {url!r} is not a usable URL: {exc.message}") from None


@emulator.command("token")
@click.option("--url", envvar=ENV_EMULATOR_URL, default=f"http://127.0.0.1:{DEFAULT_EMULATOR_PORT}", show_default=True, help="Emulator root URL.")
@click.option("--refresh", is_flag=True, help="Also return a refresh_token and the native client_id it is bound to.")
@click.option("--client-id", type=_GLOBUS_ID, help="Do a client_credentials grant as this confidential client (its UUID).")
@click.option("--client-secret", help="Secret of --client-id.")
@click.option("--new-client", is_flag=True, help="Register a new confidential client, print its id/secret and a token for it.")
@click.option("--scope", help="Scope string [default: the Transfer :all scope].")
@click.option("--consent", "consents", multiple=True, type=_GLOBUS_ID, help="Collection id (UUID) to include data_access consent for (repeatable).")
@click.option("--lifetime", type=click.IntRange(min=1), help="Access token lifetime for this token (dev user only).")
def token(url: str, refresh: bool, client_id: str | None, client_secret: str | None, new_client: bool, scope: str | None, consents: tuple[str, ...], lifetime: int | None) -> None:
    """Print JSON with a fresh access token (stands in for a Globus login)."""
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    check_emulator_url(url)
    base = url.rstrip("/")
    try:
        if new_client:
            resp = httpx.post(f"{base}/_emulator/clients", timeout=10)
            resp.raise_for_status()
            creds = resp.json()
            client_id, client_secret = creds["client_id"], creds["client_secret"]
        if client_id or client_secret:
            if not (client_id and client_secret):
                raise click.UsageError("--client-id and --client-secret go together")
            full = scope or "urn:globus:auth:scope:transfer.api.globus.org:all"
            if consents and not scope:
                deps = " ".join(f"*https://auth.globus.org/scopes/{c}/data_access" for c in consents)
                full = f"urn:globus:auth:scope:transfer.api.globus.org:all[{deps}]"
            resp = httpx.post(
                f"{base}/v2/oauth2/token",
                data={"grant_type": "client_credentials", "scope": full},
                auth=(client_id, client_secret),
                timeout=10,
            )
            if resp.status_code != 200:
                raise click.ClickException(f"token grant failed: HTTP {resp.status_code} {resp.text}")
            body = resp.json()
            body["client_id"] = client_id
            if new_client:
                body["client_secret"] = client_secret
        else:
            req: dict[str, object] = {"refresh": refresh}
            if scope:
                req["scope"] = scope
            if consents:
                req["consents"] = list(consents)
            if lifetime:
                req["lifetime"] = lifetime
            resp = httpx.post(f"{base}/_emulator/token", json=req, timeout=10)
            if resp.status_code != 200:
                raise click.ClickException(f"token request failed: HTTP {resp.status_code} {resp.text}")
            body = resp.json()
            if not refresh:
                body.pop("client_id", None)
    except httpx.InvalidURL as exc:
        raise click.UsageError(f"--url {url!r} is not a usable URL ({exc}); e.g. http://127.0.0.1:{DEFAULT_EMULATOR_PORT}") from None
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the emulator at {base}: {exc}") from exc
    click.echo(json.dumps(body, indent=2))



