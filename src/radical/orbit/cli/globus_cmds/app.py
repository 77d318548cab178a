"""The shared machinery of ``radical-orbit globus``: options, session, errors, output.

Each invocation is one short Globus session: credentials come from the environment,
the session is registered on the chosen endpoint's ``globus`` plugin on first use
and closed when the command ends (Globus tasks keep running; they live in Globus).

Exit codes (documented in docs/cli.md)::

    0  success
    1  an error, or the task waited for FAILED / INACTIVE
    2  usage error, or no Globus credentials in the environment
    3  timeout of `task wait` / `--wait` (the task keeps running)
    4  consent required (as the Globus CLI)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import httpx

from ...errors import (
    AuthenticationError,
    BridgeUnavailableError,
    ConsentRequiredError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    GlobusAuthError,
    OrbitError,
    PluginDisabledError,
    PluginNotFoundError,
    RateLimitedError,
    SessionExpiredError,
    SessionNotFoundError,
    UsageError,
)
from .render import FORMATS, OutputError, compile_jmespath, machine_output

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_CONSENT = 4
EXIT_INTERRUPTED = 130

ENV_ACCESS_TOKEN = "GLOBUS_ACCESS_TOKEN"
ENV_REFRESH_TOKEN = "GLOBUS_REFRESH_TOKEN"
ENV_CLIENT_ID = "GLOBUS_CLIENT_ID"
ENV_CLIENT_SECRET = "GLOBUS_CLIENT_SECRET"

PLUGIN = "globus"

CREDENTIALS_HELP = (
    f"set {ENV_ACCESS_TOKEN}, or {ENV_REFRESH_TOKEN} + {ENV_CLIENT_ID}, or "
    f"{ENV_CLIENT_ID} + {ENV_CLIENT_SECRET} (a confidential client); against the emulator: "
    "export GLOBUS_ACCESS_TOKEN=$(radical-orbit emulator token | jq -r .access_token)"
)

F = TypeVar("F", bound=Callable[..., Any])


class CliExit(Exception):
    """Leave with ``code`` after printing ``message`` (one line, stderr)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message


def credentials_from_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``register_session`` keyword arguments for the credential in the environment.

    Precedence: access token; refresh token + client id; client id + secret.
    """
    env = os.environ if environ is None else environ
    access = env.get(ENV_ACCESS_TOKEN, "").strip()
    refresh = env.get(ENV_REFRESH_TOKEN, "").strip()
    client_id = env.get(ENV_CLIENT_ID, "").strip()
    secret = env.get(ENV_CLIENT_SECRET, "").strip()
    if access:
        return {"access_token": access}
    if refresh and client_id:
        creds = {"refresh_token": refresh, "client_id": client_id}
        if secret:  # a refresh token issued to a confidential client
            creds["client_secret"] = secret
        return creds
    if client_id and secret:
        return {"client_id": client_id, "client_secret": secret}
    if refresh:
        raise CliExit(EXIT_USAGE, f"{ENV_REFRESH_TOKEN} is set but {ENV_CLIENT_ID} is not: a refresh token needs the client id it was issued to")
    if secret:
        raise CliExit(EXIT_USAGE, f"{ENV_CLIENT_SECRET} is set but {ENV_CLIENT_ID} is not: export the id of the confidential client the secret belongs to")
    if client_id:
        raise CliExit(EXIT_USAGE, f"{ENV_CLIENT_ID} alone is not a credential: add {ENV_REFRESH_TOKEN} (native app) or {ENV_CLIENT_SECRET} (confidential client)")
    raise CliExit(EXIT_USAGE, f"no Globus credentials: {CREDENTIALS_HELP}")


class Runtime:
    """What one ``radical-orbit globus`` invocation holds: options, bridge, session."""

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        cert: str | None = None,
        endpoint: str | None = None,
        fmt: str = "text",
        local_collection: str | None = None,
        jmespath: Any = None,
    ) -> None:
        self.url = url
        self.token = token
        self.cert = cert
        self.endpoint = endpoint
        self.fmt = fmt
        #: the compiled ``--jmespath`` expression (None: none given)
        self.jmespath = jmespath
        self.local_collection = local_collection
        self._bridge: Any = None
        self._client: Any = None
        self._out: Console | None = None
        self._err: Console | None = None

    # -- output ----------------------------------------------------------------
    @property
    def structured(self) -> bool:
        """Machine output (``-F json``, ``-F unix`` or ``--jmespath``) instead of text."""
        return self.fmt != "text" or self.jmespath is not None

    @property
    def out(self) -> Console:
        """Rich console on stdout (wide when not a terminal, so UUIDs never wrap)."""
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    def emit(self, value: Any) -> None:
        """Print ``value`` in the machine format asked for (``--jmespath`` alone means JSON),
        as the Globus CLI prints it: without the keys GlobusClient adds for the original
        Orbit's scripts."""
        from ...plugins.globus.client import globus_document

        fmt = "unix" if self.fmt == "unix" else "json"
        try:
            text = machine_output(globus_document(value), fmt, self.jmespath)
        except OutputError as exc:
            raise CliExit(EXIT_USAGE, str(exc)) from None
        if text:
            click.echo(text)

    # -- connection ------------------------------------------------------------
    @property
    def bridge(self) -> Any:
        if self._bridge is None:
            from ... import BridgeClient

            self._bridge = BridgeClient(url=self.url, token=self.token, cert=self.cert)
        return self._bridge

    def _choose_endpoint(self) -> Any:
        bc = self.bridge
        if self.endpoint:
            return bc.get_endpoint_client(self.endpoint)
        infos = bc.endpoints()
        if not infos:
            raise EndpointNotFoundError("no endpoint is connected to the bridge; start one with `radical-orbit endpoint --name NAME`")
        notes: list[str] = []
        usable: list[dict[str, Any]] = []
        for info in infos:
            if not info.get("alive", True):
                continue
            plugins = {p.get("name"): p for p in info.get("plugins", [])}
            plugin = plugins.get(PLUGIN)
            if plugin is None:
                notes.append(f"{info.get('name')}: no globus plugin")
            elif not plugin.get("enabled", True):
                notes.append(f"{info.get('name')}: globus disabled ({plugin.get('reason') or 'no reason given'})")
            else:
                usable.append(info)
        if not usable:
            raise PluginDisabledError("no connected endpoint has the globus plugin enabled: " + "; ".join(notes))
        if len(usable) > 1:
            others = ", ".join(str(i.get("name")) for i in usable[1:])
            click.echo(f"Note: using endpoint '{usable[0].get('name')}' (also connected: {others}); choose one with --endpoint", err=True)
        return bc.get_endpoint_client(usable[0])

    @property
    def client(self) -> Any:
        """The ``GlobusClient``, with a session opened from the environment's credential."""
        if self._client is None:
            creds = credentials_from_env()  # before any network: a missing credential is a usage error
            ec = self._choose_endpoint()
            self.endpoint = ec.name
            gc = ec.get_plugin(PLUGIN)
            self._register(gc, creds)
            self._client = gc
        return self._client

    def _register(self, gc: Any, creds: dict[str, str]) -> None:
        kwargs: dict[str, Any] = dict(creds)
        if self.local_collection:
            kwargs["local_collection"] = self.local_collection
        gc.register_session(**kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(*args, **kwargs)``, keyword arguments that are None left out.

        If the endpoint lost the session (it restarted, or reaped it during a long
        wait), the session is opened again once -- the credential is read from the
        environment again, never kept here -- and the call repeated.
        """
        gc = self.client
        fn = getattr(gc, method, None)
        if fn is None:
            raise UsageError(f"the installed GlobusClient has no {method}(); upgrade radical.orbit")
        clean = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return fn(*args, **clean)
        except (SessionNotFoundError, SessionExpiredError) as exc:
            log.info("globus session lost (%s); opening a new one", exc.code)
            self._register(gc, credentials_from_env())
            return fn(*args, **clean)

    def close(self) -> None:
        client, self._client = self._client, None
        bridge, self._bridge = self._bridge, None
        if client is not None:
            try:
                client.close()
            except (OrbitError, OSError) as exc:  # best effort: the endpoint reaps idle sessions
                log.debug("closing the globus session failed: %s", exc)
        if bridge is not None:
            try:
                bridge.close()
            except (OrbitError, OSError) as exc:
                log.debug("closing the bridge client failed: %s", exc)


def get_runtime() -> Runtime:
    ctx = click.get_current_context()
    rt = ctx.find_object(Runtime)
    if rt is None:  # a subcommand invoked on its own (tests)
        rt = ctx.ensure_object(Runtime)
    return rt


# -- errors ----------------------------------------------------------------------

def _hint(exc: OrbitError) -> str | None:
    """One actionable sentence for the common failures."""
    if isinstance(exc, BridgeUnavailableError):
        if "radical-orbit bridge" in exc.message:  # the SDK's message already says what to do
            return None
        return "is the bridge running? check --url, RADICAL_ORBIT_BRIDGE_URL or ~/.radical/orbit/bridge.url"
    if isinstance(exc, ConsentRequiredError):
        return "log in again with the scopes named above and export the new token"
    if isinstance(exc, GlobusAuthError):
        return f"export a valid credential ({ENV_ACCESS_TOKEN}, {ENV_REFRESH_TOKEN} + {ENV_CLIENT_ID}, or {ENV_CLIENT_ID} + {ENV_CLIENT_SECRET})"
    if isinstance(exc, AuthenticationError):
        if "token" in exc.message:  # the SDK's message already says where it looked
            return None
        return "the bridge refused its token: check --token, RADICAL_ORBIT_BRIDGE_TOKEN or ~/.radical/orbit/bridge.token"
    if isinstance(exc, EndpointNotFoundError):
        return "list connected endpoints with `radical-orbit endpoints`; pick one with --endpoint"
    if isinstance(exc, PluginNotFoundError | PluginDisabledError):
        return "install radical.orbit[globus] where the endpoint runs and restart it, or pick another --endpoint"
    if isinstance(exc, EndpointUnavailableError):
        return "the endpoint went away; check it is running and retry"
    if isinstance(exc, GatewayTimeoutError):
        return "the endpoint did not answer in time; retry, or check the endpoint's log"
    if isinstance(exc, RateLimitedError):
        return "Globus is rate limiting this identity; wait a little and retry"
    if isinstance(exc, SessionExpiredError):
        return "the session expired on the endpoint; run the command again"
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def exit_code_for(exc: OrbitError) -> int:
    if isinstance(exc, ConsentRequiredError):
        return EXIT_CONSENT
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    return EXIT_ERROR


def report_error(exc: OrbitError) -> int:
    """Print ``Error: <message> -- hint: <hint>`` (one line) on stderr; return the exit code."""
    message = _one_line(exc.message or str(exc))
    hint = _hint(exc)
    line = f"Error: {message}"
    if hint:
        line += f" -- hint: {hint}"
    click.echo(line, err=True)
    return exit_code_for(exc)


class OrbitCommand(click.Command):
    """A command that turns Orbit errors into one stderr line and an exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["globus.argv"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliExit as exc:
            if exc.message:
                click.echo(f"Error: {_one_line(exc.message)}" if exc.code in (EXIT_ERROR, EXIT_USAGE) else exc.message, err=True)
            ctx.exit(exc.code)
        except OrbitError as exc:
            ctx.exit(report_error(exc))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (OSError, httpx.HTTPError) as exc:  # e.g. a transport error the SDK did not wrap
            log.debug("command failed", exc_info=True)
            click.echo(f"Error: {_one_line(str(exc)) or type(exc).__name__}", err=True)
            ctx.exit(EXIT_ERROR)


class OrbitGroup(click.Group):
    command_class = OrbitCommand
    group_class = type  # subgroups are OrbitGroup too


def _set_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Runtime).fmt = value.lower()


def jmespath_param(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Compile ``--jmespath`` while parsing, so a bad expression is a usage error (exit 2)
    before anything is asked of Globus."""
    if value is None:
        return None
    try:
        return compile_jmespath(value)
    except OutputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _set_jmespath(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    expression = jmespath_param(ctx, param, value)
    if expression is not None:
        ctx.ensure_object(Runtime).jmespath = expression


JMESPATH_HELP = "A JMESPath expression applied to the JSON output (forces -F json unless -F unix)."


def format_option(f: F) -> F:
    """``-F/--format text|json|unix`` and ``--jmespath/--jq`` on a subcommand (override the group's)."""
    f = click.option(
        "--jmespath",
        "--jq",
        default=None,
        metavar="EXPR",
        expose_value=False,
        callback=_set_jmespath,
        help=JMESPATH_HELP,
    )(f)
    return click.option(
        "-F",
        "--format",
        "fmt",
        type=click.Choice(FORMATS, case_sensitive=False),
        default=None,
        expose_value=False,
        callback=_set_format,
        help="Output format (overrides the group option).",
    )(f)
