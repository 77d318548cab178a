"""Run the bridge app under uvicorn, configured for the relay and with a clean shutdown.

Only uvicorn's public configuration is used: ``http="auto"`` (httptools when
installed, else h11) and ``ws="websockets-sansio"``. The config is loaded here, so
the protocol classes uvicorn chose are known before it serves; two small subclasses
wrap them:

* :func:`~.coalesce.coalescing` around the HTTP class (``coalesce_writes``, on by
  default): one write system call per socket per loop pass. A WebSocket upgrade hands
  the same transport to the WebSocket protocol, so endpoint sockets coalesce too.
* :func:`quiet_shutdown` around the WebSocket class: a workaround for a uvicorn bug in
  the shutdown path, see there.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from .app import BridgeApp, create_app
from .coalesce import coalescing
from .settings import BridgeSettings

log = logging.getLogger(__name__)

#: uvicorn's WebSocket implementation on websockets' Sans-I/O layer: uvicorn's default
#: since 0.50, named so that older releases do not pick their deprecated legacy one
WS_PROTOCOL = "websockets-sansio"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def quiet_shutdown(protocol_class: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's WebSocket protocol whose ``shutdown`` leaves a closing
    connection alone.

    Workaround for a uvicorn bug (seen up to 0.55 with ``websockets-sansio``; no
    upstream report found, the same shape as Kludex/uvicorn#596 in its wsproto
    protocol): when the peer closes, uvicorn answers the close frame and closes the
    transport, but does not remember that the closing handshake is done. A TLS
    transport takes a round trip to finish closing; a server shutdown in that window
    makes uvicorn send a second close frame, which websockets refuses with
    ``InvalidState``, and the exception ends ``Server.shutdown`` (no lifespan shutdown,
    a traceback). A connection whose transport is already closing has nothing left to
    say: it is left to finish, and ``connection_lost`` cleans up as usual.
    ``tests/unit/bridge/test_bridge_live.py`` holds the scenario (a real TLS bridge).
    """

    class QuietShutdown(protocol_class):  # type: ignore[valid-type,misc]
        def shutdown(self) -> None:
            if self.transport.is_closing():
                return
            super().shutdown()

    QuietShutdown.__name__ = QuietShutdown.__qualname__ = f"QuietShutdown{protocol_class.__name__}"
    return QuietShutdown


class BridgeServer(uvicorn.Server):
    """uvicorn, but SSE streams and endpoint sockets end *before* it waits for
    connections to close (otherwise an open ``/events`` stream would hold shutdown)."""

    def __init__(self, config: uvicorn.Config, app: BridgeApp) -> None:
        super().__init__(config)
        self.bridge = app

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await self.bridge.shutdown_streams()
        await super().shutdown(sockets)


def server_config(app: ASGIApp, settings: BridgeSettings, *, access_log: bool = False) -> uvicorn.Config:
    """uvicorn's config for serving ``app`` as the bridge, loaded, protocol classes wrapped."""
    loop: Literal["uvloop", "asyncio"] = "uvloop" if _has("uvloop") else "asyncio"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http="auto",
        ws=WS_PROTOCOL,
        ws_per_message_deflate=False,  # CPU on the hot path; frames are small and local
        ws_max_size=settings.max_frame,  # announced to endpoints in "registered"
        ws_ping_interval=None,  # the bridge's own ping/pong frames decide liveness
        ws_ping_timeout=None,
        lifespan="on",
        log_config=None,  # the CLI configured logging
        access_log=access_log,
        server_header=False,
        proxy_headers=False,  # clients talk to the bridge directly; never trust X-Forwarded-For
        ssl_certfile=settings.cert_file,
        ssl_keyfile=settings.key_file,
        timeout_graceful_shutdown=5,
    )
    config.load()  # resolves the protocol classes; uvicorn does not load a loaded config again
    if settings.coalesce_writes:
        config.http_protocol_class = coalescing(config.http_protocol_class)
    if config.ws_protocol_class is not None:
        config.ws_protocol_class = quiet_shutdown(config.ws_protocol_class)
    log.debug("uvicorn loop=%s http=%s ws=%s", loop, config.http_protocol_class.__name__, WS_PROTOCOL)
    return config


def build_server(settings: BridgeSettings, *, access_log: bool = False) -> BridgeServer:
    """A configured (not yet started) server for ``settings``."""
    app = create_app(settings)
    return BridgeServer(server_config(app, settings, access_log=access_log), app)


def serve(settings: BridgeSettings, *, access_log: bool = False) -> None:
    """Run until SIGINT/SIGTERM."""
    server = build_server(settings, access_log=access_log)
    # everything imported and built so far lives as long as the process: keep the
    # cyclic GC from re-scanning it on every full collection (latency spikes)
    gc.collect()
    gc.freeze()
    server.run()
