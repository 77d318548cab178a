"""``radical-orbit endpoint``: run an endpoint agent in the foreground."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import click
from pydantic import ValidationError as PydanticValidationError

from ..config import ENV_BRIDGE_CERT, ENV_BRIDGE_URL, ENV_ENDPOINT_KEY
from ..errors import OrbitError, UsageError
from .params import FiniteFloat

log = logging.getLogger("radical.orbit.endpoint")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): less relay overhead."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


@click.command("endpoint", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--name", "-n", required=True, help="Endpoint name, unique on the bridge (letters, digits, '.', '_', '-').")
@click.option(
    "--url",
    default=None,
    metavar="URL[,URL...]",
    help=f"Bridge URL as clients use it (http(s)://host:port; ws(s):// also accepted); several comma-separated "
    "(replicas of one bridge): dialed in order, the next one when a connection is lost. "
    f"Default: ${ENV_BRIDGE_URL}, ~/.radical/orbit/bridge.url, http://127.0.0.1:8000.",
)
@click.option(
    "--key-file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help=f"File (mode 0600) holding this endpoint's key. Default: ${ENV_ENDPOINT_KEY}, else "
    "~/.radical/orbit/endpoint.key (the bridge writes it in its own HOME). The key itself never goes on the command line.",
)
@click.option("--token", default=None, hidden=True, help="Ignored: a client token cannot register an endpoint.")
@click.option(
    "--cert",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help=f"CA bundle / self-signed certificate to verify a TLS bridge. Default: ${ENV_BRIDGE_CERT}, "
    "~/.radical/orbit/bridge.cert.",
)
@click.option(
    "--no-proxy",
    "no_proxy",
    is_flag=True,
    help="Dial the bridge directly, ignoring HTTPS_PROXY / HTTP_PROXY / ALL_PROXY "
    "(NO_PROXY=HOST does the same for one host). By default the endpoint goes through "
    "the HTTP proxy those name, as websockets' own client does.",
)
@click.option(
    "--state-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory of this endpoint's own state (the globus plugin's task journal, never a token). "
    "Default: ~/.radical/orbit/endpoints/<name>/.",
)
@click.option(
    "--plugins",
    "-p",
    default=None,
    metavar="A,B",
    help="Comma-separated plugins to load (default: every installed plugin; "
    "plugins that cannot run here are reported as disabled with the reason).",
)
@click.option(
    "--plugin-option",
    "-o",
    "plugin_option",
    multiple=True,
    metavar="PLUGIN.KEY=VALUE",
    help="A setting for one plugin, repeatable (e.g. -o globus.min_interval=0.5 -o globus.workers=32); "
    "values are read as JSON when they parse. See each plugin's docs for its keys.",
)
@click.option(
    "--heartbeat",
    type=FiniteFloat(min=0.05),
    default=None,
    metavar="S",
    help="Seconds between the endpoint's own pings (default: the bridge's heartbeat interval).",
)
@click.option(
    "--backoff-max",
    type=FiniteFloat(min=0.1),
    default=30.0,
    show_default=True,
    metavar="S",
    help="Longest wait between reconnection attempts (exponential backoff with jitter).",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    metavar="N",
    help="Sessions one client identity may hold on each plugin (429 beyond; unregister_session frees one).",
)
@click.option(
    "--max-notification-bytes",
    type=click.IntRange(min=1024),
    default=256 * 1024,
    show_default=True,
    metavar="N",
    help="Largest notification payload sent, in bytes of JSON; a larger one is dropped with a warning.",
)
@click.option(
    "--shutdown-grace",
    type=FiniteFloat(min=0.0),
    default=10.0,
    show_default=True,
    metavar="S",
    help="Seconds in-flight requests get to finish on SIGINT/SIGTERM (a second signal cuts it short).",
)
def endpoint(
    name: str,
    url: str | None,
    key_file: str | None,
    token: str | None,
    cert: str | None,
    no_proxy: bool,
    state_dir: str | None,
    plugins: str | None,
    plugin_option: tuple[str, ...],
    heartbeat: float | None,
    backoff_max: float,
    max_sessions: int,
    max_notification_bytes: int,
    shutdown_grace: float,
) -> None:
    """Run an endpoint: dial the bridge, register plugins, answer relayed requests.

    The endpoint never listens on a port. It proves who it is with an endpoint
    key: started in the bridge's HOME it uses the key the bridge wrote there (and
    waits for it if the bridge is still starting); on another host, enrol it on the
    bridge host with `radical-orbit bridge endpoints enroll NAME`. It reconnects by
    itself when the bridge goes away and stops cleanly on SIGINT/SIGTERM. It exits
    non-zero when the bridge refuses its key or its name. Behind an outbound HTTP
    proxy it tunnels through the one HTTPS_PROXY (or HTTP_PROXY for http://, or
    ALL_PROXY) names, unless NO_PROXY lists the bridge's host or --no-proxy is given.

    \b
    Example:
      radical-orbit endpoint --name laptop --plugins sysinfo     # in the bridge's HOME
      export RADICAL_ORBIT_ENDPOINT_KEY=...                      # printed by `endpoints enroll dtn`
      radical-orbit endpoint --name dtn --url https://bridge.example.org:8000 --plugins globus
      radical-orbit endpoint --name dtn --url https://b1.example.org,https://b2.example.org   # two replicas
    """
    from ..endpoint.agent import EndpointAgent
    from ..endpoint.proxy import select_proxy
    from ..endpoint.settings import (
        EndpointSettings,
        check_endpoint_name,
        parse_plugin_options,
    )
    from ..plugins.registry import available_plugins, discover_plugins

    try:
        check_endpoint_name(name)
        settings = EndpointSettings.resolve(
            name=name,
            url=url,
            key_file=key_file,
            token=token,
            cert=cert,
            use_proxy=not no_proxy,
            state_dir=state_dir,
            plugins=plugins,
            plugin_options=parse_plugin_options(plugin_option),
            heartbeat=heartbeat,
            backoff_max=backoff_max,
            max_sessions_per_identity=max_sessions,
            max_notification_bytes=max_notification_bytes,
            shutdown_grace=shutdown_grace,
        )
        settings.load_key()  # a key file open to other users is refused now, not at the first dial
        for ws_url in settings.ws_urls:  # validates every URL before starting anything
            if settings.use_proxy:  # and a proxy the endpoint cannot use
                select_proxy(ws_url)
        installed = available_plugins()
        typos = sorted(set(settings.plugin_options) - set(installed))
        if typos:  # options for a plugin not even installed: a typo, not a plugin left out this run
            raise UsageError(
                f"-o/--plugin-option names {', '.join(repr(t) for t in typos)}, but no such plugin is installed "
                f"(installed: {', '.join(installed) or 'none'}); write NAME.KEY=VALUE with one of those names"
            )
        entries = discover_plugins(settings.plugins)
        for entry in entries:  # a bad --plugin-option is a usage error now, not a disabled plugin later
            options = settings.plugin_options.get(entry.name)
            if options and entry.cls is not None:
                entry.cls.validate_options(options)
    except OrbitError as exc:
        raise click.UsageError(exc.message) from None
    except PydanticValidationError as exc:  # what click's own checks do not cover
        raise click.UsageError("; ".join(str(e.get("ctx", {}).get("error") or e["msg"]) for e in exc.errors())) from None
    if token:
        log.warning("--token is ignored: an endpoint registers with its endpoint key, never with a client token "
                    "(and a token on the command line is visible to every local user)")
    agent = EndpointAgent(settings, entries)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(agent.run(handle_signals=True))
    except OrbitError as exc:
        raise click.ClickException(exc.message) from None
    except KeyboardInterrupt:  # a signal before the handlers were installed
        raise SystemExit(130) from None
    _leave_blocked_workers()


def _leave_blocked_workers(grace: float = 2.0) -> None:
    """Exit now even if plugin worker threads are still inside a blocking call.

    By the time the agent returns, every request was answered or failed and every
    session closed. A thread can still sit in a Globus request against a slow or
    failing service (up to the SDK's 60 s read timeout), and Python would wait for
    it at exit: the endpoint would look hung after saying it stopped.
    """
    deadline = time.monotonic() + grace
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    blocked = sorted(t.name for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive())
    if blocked:
        log.warning(
            "not waiting for %d worker thread(s) still in a blocking call (%s); exiting",
            len(blocked), ", ".join(blocked[:5]) + (", ..." if len(blocked) > 5 else ""),
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
