"""Run the bridge app under uvicorn, tuned for the relay and with a clean shutdown."""

from __future__ import annotations

import gc
import importlib.util
import logging
from typing import Literal

import uvicorn

from .app import BridgeApp, create_app
from .coalesce import coalescing
from .settings import BridgeSettings
from .ws_protocol import protocol_class

log = logging.getLogger(__name__)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class BridgeServer(uvicorn.Server):
    """uvicorn, but SSE streams and endpoint sockets end *before* it waits for
    connections to close (otherwise an open ``/events`` stream would hold shutdown)."""

    def __init__(self, config: uvicorn.Config, app: BridgeApp) -> None:
        super().__init__(config)
        self.bridge = app

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await self.bridge.shutdown_streams()
        await super().shutdown(sockets)


def build_server(settings: BridgeSettings, *, access_log: bool = False) -> BridgeServer:
    """A configured (not yet started) server for ``settings``."""
    app = create_app(settings)
    loop: Literal["uvloop", "asyncio"] = "uvloop" if _has("uvloop") else "asyncio"
    if _has("httptools"):
        from uvicorn.protocols.http.httptools_impl import (
            HttpToolsProtocol as http_protocol,
        )
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as http_protocol  # type: ignore[assignment]
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=coalescing(http_protocol),  # one write system call per response (coalesce.py)
        ws=protocol_class() or "auto",  # uvicorn's, plus direct delivery of endpoint frames
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
    log.debug("uvicorn loop=%s http=%s", loop, http_protocol.__name__)
    return BridgeServer(config, app)


def serve(settings: BridgeSettings, *, access_log: bool = False) -> None:
    """Run until SIGINT/SIGTERM."""
    server = build_server(settings, access_log=access_log)
    # everything imported and built so far lives as long as the process: keep the
    # cyclic GC from re-scanning it on every full collection (latency spikes)
    gc.collect()
    gc.freeze()
    server.run()
