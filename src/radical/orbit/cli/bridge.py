"""``radical-orbit bridge``: run the hub that endpoints dial and clients call."""

from __future__ import annotations

import errno
import functools
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from click.core import ParameterSource
from pydantic import ValidationError as PydanticValidationError

from ..config import (
    BRIDGE_TOKEN_FILE,
    BRIDGE_URL_FILE,
    DEFAULT_BRIDGE_PORT,
    ENV_BRIDGE_TOKEN,
    orbit_home,
    write_private_file,
    write_private_path,
)
from ..errors import UsageError
from .bridge_admin import ENV_REDIS_URL, endpoints_group, tokens_group
from .params import FiniteFloat

log = logging.getLogger("radical.orbit.cli.bridge")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_listen_address(host: str, port: int) -> None:
    """Refuse a ``--host`` that cannot be bound, before the URL file points clients at it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise click.UsageError(
            f"--host {host!r} cannot be resolved to an address ({exc}); "
            "use 127.0.0.1 (the default), 0.0.0.0 for every interface, or a host name that resolves"
        ) from None
    with socket.socket(family, kind, proto) as probe:  # bound and closed again: uvicorn binds for real
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            hint = (
                "another process (another bridge?) listens there: stop it or pick another --port"
                if exc.errno == errno.EADDRINUSE
                else "use an address of this machine: 127.0.0.1 (the default) or 0.0.0.0 for every interface"
            )
            raise click.UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); {hint}") from None


def check_tls_files(cert: str, key: str) -> None:
    """Load ``--cert``/``--key`` once, so a wrong file is one line instead of a traceback at start-up."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise click.UsageError(
            f"cannot use --cert {cert!r} with --key {key!r} ({exc.strerror or exc}): "
            "give a PEM certificate and the PEM private key that belongs to it"
        ) from None


def _loud_warning(text: str) -> None:
    log.warning(text)
    click.secho(f"WARNING: {text}", fg="red", bold=True, err=True)


@click.group("bridge", invoke_without_command=True, context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Address to bind; anything but loopback exposes the bridge.")
@click.option("--port", default=DEFAULT_BRIDGE_PORT, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--token",
    default=None,
    show_default=False,
    help=f"The default client token (identity 'admin') [default: ${ENV_BRIDGE_TOKEN}, else "
    f"~/.radical/orbit/{BRIDGE_TOKEN_FILE}, else a new one written there]. Prefer the "
    "environment variable: command lines are visible to other local users.",
)
@click.option(
    "--no-auth", is_flag=True, help="Accept client requests without a token (only on a trusted machine); endpoints still need their key."
)
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM); needs --key.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM); needs --cert.")
@click.option(
    "--heartbeat", default=10.0, type=FiniteFloat(min=0.05), help="Seconds between pings; endpoints silent for 3 intervals are dropped."
)
@click.option("--max-body", default=16 * 1024 * 1024, type=click.IntRange(min=0), help="Largest relayed request body, in bytes (413 beyond).")
@click.option(
    "--request-timeout",
    default=60.0,
    type=FiniteFloat(min=0.001),
    help="Seconds to wait for an endpoint's answer (504 beyond); clients may send X-Orbit-Timeout (max 3600).",
)
@click.option(
    "--coalesce-writes/--no-coalesce-writes",
    default=None,
    show_default=False,
    help="Gather each socket's writes of one event-loop pass into one system call "
    "[default: on, or $RADICAL_ORBIT_BRIDGE_COALESCE_WRITES].",
)
@click.option(
    "--max-inflight-per-identity",
    type=click.IntRange(min=1),
    help="Requests one client identity may have waiting for an answer; 429 beyond "
    "[default: 256, or $RADICAL_ORBIT_BRIDGE_MAX_INFLIGHT_PER_IDENTITY].",
)
@click.option(
    "--max-inflight-per-endpoint",
    type=click.IntRange(min=1),
    help="Requests waiting on one endpoint; 503 beyond [default: 1024, or $RADICAL_ORBIT_BRIDGE_MAX_INFLIGHT_PER_ENDPOINT].",
)
@click.option(
    "--max-held-answer-bytes",
    type=click.IntRange(min=1),
    help="Bytes of answers the bridge holds for clients that have not read them yet; 503 for an "
    "answer beyond [default: 256 MiB, or $RADICAL_ORBIT_BRIDGE_MAX_HELD_ANSWER_BYTES].",
)
@click.option(
    "--event-buffer-bytes",
    type=click.IntRange(min=1),
    help="Bytes of events kept for /events replay, oldest dropped first "
    "[default: 64 MiB, or $RADICAL_ORBIT_BRIDGE_EVENT_BUFFER_BYTES].",
)
@click.option(
    "--max-notification-bytes",
    type=click.IntRange(min=1),
    help="Largest notification payload an endpoint may send; larger ones are dropped "
    "[default: 256 KiB, or $RADICAL_ORBIT_BRIDGE_MAX_NOTIFICATION_BYTES].",
)
@click.option(
    "--max-subscribers-per-identity",
    type=click.IntRange(min=1),
    help="/events streams one client identity may have open; 429 beyond "
    "[default: 64, or $RADICAL_ORBIT_BRIDGE_MAX_SUBSCRIBERS_PER_IDENTITY].",
)
@click.option(
    "--redis",
    "redis_url",
    envvar=ENV_REDIS_URL,
    show_envvar=True,
    default=None,
    help="Run as one replica of several that share this Redis (redis://HOST:PORT/DB): endpoints, "
    "events and tokens are shared, requests are forwarded, clients fail over (docs/deployment.md). "
    "Also for the tokens/endpoints commands.",
)
@click.pass_context
def bridge(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    no_auth: bool,
    cert: str | None,
    key: str | None,
    heartbeat: float,
    max_body: int,
    request_timeout: float,
    coalesce_writes: bool | None,
    max_inflight_per_identity: int | None,
    max_inflight_per_endpoint: int | None,
    max_held_answer_bytes: int | None,
    event_buffer_bytes: int | None,
    max_notification_bytes: int | None,
    max_subscribers_per_identity: int | None,
    redis_url: str | None,
) -> None:
    """Run the bridge: endpoints dial it over a WebSocket, clients call
    /{endpoint}/{plugin}/{route} over HTTP and follow /events.

    It writes the URL it serves to ~/.radical/orbit/bridge.url and the local endpoint
    key to ~/.radical/orbit/endpoint.key, so clients and endpoints on this machine
    find it without arguments. `tokens` and `endpoints` manage who may use it.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"redis_url": redis_url}  # the tokens/endpoints commands edit the shared identities then
        given = [
            f"--{name.replace('_', '-')}"
            for name in ctx.params
            if name != "redis_url" and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} run the bridge; `radical-orbit bridge {ctx.invoked_subcommand} ...` takes none of them"
            )
        return
    from pydantic import SecretStr

    from ..bridge.backplane.redis_url import check_redis_url, redis_missing
    from ..bridge.identities import IdentityStore
    from ..bridge.server import serve
    from ..bridge.settings import BridgeSettings
    from ..bridge.token_file import resolve_server_token

    if redis_url:
        problem = redis_missing()
        if problem:
            raise click.UsageError(problem)
        try:
            redis_url = check_redis_url(redis_url)
        except UsageError as exc:
            raise click.UsageError(f"--redis / ${ENV_REDIS_URL}: {exc.message}") from None
    if no_auth and token:
        raise click.UsageError("--token and --no-auth exclude each other")
    if bool(cert) != bool(key):
        raise click.UsageError("TLS needs both --cert and --key")
    if cert and key:
        check_tls_files(cert, key)
    check_listen_address(host, port)
    secret: str | None = None
    if no_auth:
        _loud_warning(
            "authentication is OFF (--no-auth): anyone who can reach "
            f"{host}:{port} can call every plugin on every endpoint"
        )
    else:
        try:
            secret, source = resolve_server_token(token)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"bridge token: from {source}", err=True)
    if host not in LOOPBACK:
        _loud_warning(f"binding {host}: the bridge is reachable from other machines" + ("" if cert else " over plain HTTP (use --cert/--key)"))

    flags = {
        "max_inflight_per_identity": max_inflight_per_identity,
        "max_inflight_per_endpoint": max_inflight_per_endpoint,
        "max_held_answer_bytes": max_held_answer_bytes,
        "event_buffer_bytes": event_buffer_bytes,
        "max_notification_bytes": max_notification_bytes,
        "max_subscribers_per_identity": max_subscribers_per_identity,
    }
    # unset: BridgeSettings reads RADICAL_ORBIT_BRIDGE_<NAME>, else its default
    limits: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}
    if coalesce_writes is not None:  # unset: BridgeSettings reads RADICAL_ORBIT_BRIDGE_COALESCE_WRITES, else on
        limits["coalesce_writes"] = coalesce_writes
    try:
        settings = BridgeSettings(
            host=host,
            port=port,
            auth=not no_auth,
            token=SecretStr(secret) if secret else None,
            cert_file=cert,
            key_file=key,
            heartbeat_interval=heartbeat,
            max_body=max_body,
            request_timeout=request_timeout,
            redis_url=SecretStr(redis_url) if redis_url else None,
            **limits,
        )
    except PydanticValidationError as exc:  # click checked each flag: the environment, or flags that disagree
        bad = "; ".join(
            f"RADICAL_ORBIT_BRIDGE_{str(e['loc'][0]).upper()}: {e['msg']}" if e["loc"] else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise click.UsageError(f"invalid bridge setting: {bad}") from None
    try:  # the app does this too; here a bad file is a usage error before anything listens
        key_path = IdentityStore(orbit_home()).ensure_local_key()
    except UsageError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"endpoint key for this HOME: {key_path} (other hosts: radical-orbit bridge endpoints enroll NAME)", err=True)
    url_path = orbit_home() / BRIDGE_URL_FILE
    before = _read_quietly(url_path)
    ours = settings.url + "\n"
    write_private_file(BRIDGE_URL_FILE, ours)
    click.echo(f"bridge URL: {settings.url} (written to {url_path})", err=True)
    log.info("bridge settings: %s", settings.redacted())
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    hand_back = functools.partial(_hand_back_url_file, url_path, ours, before)
    # uvicorn stops gracefully on SIGTERM, then raises it again with the handler it found:
    # with the default one the process ends inside serve(), past any ``finally``
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, functools.partial(_last_words, hand_back))
    try:
        serve(settings, access_log=debug)
    finally:
        signal.signal(signal.SIGTERM, previous)
        hand_back()


def _last_words(last: Callable[[], None], sig: int, frame: FrameType | None) -> None:
    """Do ``last``, then end by ``sig`` as the default action would (the exit status stays)."""
    last()
    signal.signal(sig, signal.SIG_DFL)
    signal.raise_signal(sig)


def _read_quietly(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _hand_back_url_file(path: Path, ours: str, before: str | None) -> None:
    """On the way out, give ``bridge.url`` back to the bridge it named before this one.

    A second bridge started in the same HOME (a quick test one) took the file over and,
    once gone, left clients dialling its dead URL while the first one still served. The
    file is put back only while it still holds this bridge's URL: a later bridge's keeps.
    """
    if before is None or before == ours or _read_quietly(path) != ours:
        return
    try:
        write_private_path(path, before)
    except OSError as exc:
        log.warning("could not give %s back its earlier bridge URL (%s)", path, exc.strerror or type(exc).__name__)


bridge.add_command(tokens_group)
bridge.add_command(endpoints_group)
