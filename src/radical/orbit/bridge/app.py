"""``create_app(settings)``: the bridge as one ASGI app.

Requests are split before any framework code runs: ``/{endpoint}/{plugin}...``
(first path segment not a reserved name) goes straight to the lean
:class:`~radical.orbit.bridge.relay.Relay`; everything else (``/health``,
``/endpoints``, ``/events``, ``/ws/endpoint``) is a typed FastAPI route. The caller's
token is checked in the same place for both, so no route can forget it; endpoint
keys are checked on the ``/ws/endpoint`` upgrade request, before it is accepted.

Routes (all but ``/health`` need ``Authorization: Bearer <token>``)::

    GET  /health                  {"status": "ok"} (nothing else: it needs no token)
    GET  /endpoints               {"endpoints": [EndpointInfo]}
    POST /endpoint/list           same (compatibility)
    GET  /endpoints/{name}        EndpointInfo | 404 endpoint_not_found
    GET  /events                  SSE; ?endpoint=&plugin=&topic=&session=&last_event_id=
    WS   /ws/endpoint             endpoints register here (their key, not a client token)
    ANY  /{endpoint}/{plugin}[/{route}]   relay | 404 | 413 | 503 | 504
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..__about__ import __version__
from ..config import orbit_home
from ..models.messages import CLOSE_GOING_AWAY, RESERVED_NAMES
from ..web.errors import install_error_handlers
from .auth import Authenticator
from .events import EventHub
from .identities import IdentityStore
from .identity import SCOPE_KEY
from .registry import Registry
from .relay import Relay, send_error
from .schemas import EndpointInfo, EndpointList, Health
from .settings import BridgeSettings
from .ws import EndpointSocket, RawSocket

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/healthz"})
ENDPOINT_SOCKET_PATH = "/ws/endpoint"
#: seconds between checks of the identity store file for changes
IDENTITY_CHECK_INTERVAL = 1.0


class BridgeApp(FastAPI):
    """FastAPI for the admin routes; the token check, the relay and the endpoint
    socket are served in front of it (the hot paths skip FastAPI's middleware)."""

    settings: BridgeSettings
    registry: Registry
    hub: EventHub
    relay: Relay
    sockets: EndpointSocket
    tokens: Authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path not in PUBLIC_PATHS:
                identity = self.tokens.identify(scope)
                if identity is None:
                    await send_error(send, Authenticator.error(), None)
                    return
                scope[SCOPE_KEY] = identity
                cut = path.find("/", 1)
                if cut > 1 and cut + 1 < len(path) and path[cut + 1] != "/" and path[1:cut] not in RESERVED_NAMES:
                    await self.relay(scope, receive, send)
                    return
        elif kind == "websocket" and scope["path"] == ENDPOINT_SOCKET_PATH:
            await self.sockets.serve(RawSocket(scope, receive, send), self.tokens)
            return
        await super().__call__(scope, receive, send)

    async def watch_identities(self, interval: float = IDENTITY_CHECK_INTERVAL) -> None:
        """Pick up ``radical-orbit bridge tokens|endpoints`` changes without a restart, and
        disconnect endpoints they revoked (also when a request caused the reload)."""
        seen = self.tokens.generation
        while True:
            await asyncio.sleep(interval)
            if self.tokens.refresh():
                log.info("identity store changed: reloaded")
            if self.tokens.generation != seen:
                seen = self.tokens.generation
                await self.sockets.enforce(self.tokens)

    async def shutdown_streams(self) -> None:
        """Before the server stops: end SSE streams and say goodbye to endpoints."""
        self.hub.close()
        await self.sockets.close_all(CLOSE_GOING_AWAY, "bridge shutting down")


def create_app(settings: BridgeSettings) -> BridgeApp:
    """Build the bridge app from explicit settings (no module-level app)."""
    token = settings.token.get_secret_value() if (settings.auth and settings.token) else None
    store = IdentityStore(orbit_home())
    store.ensure_local_key()  # an endpoint in this HOME finds it: zero-config stays zero-config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("bridge %s ready (auth %s)", __version__, "on" if token else "OFF")
        watcher = asyncio.create_task(bridge.watch_identities(), name="orbit-identities")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await bridge.shutdown_streams()

    bridge = BridgeApp(
        title="radical.orbit bridge",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    bridge.settings = settings
    bridge.registry = Registry()
    bridge.hub = EventHub(settings.event_buffer)
    bridge.relay = Relay(settings, bridge.registry)
    bridge.sockets = EndpointSocket(settings, bridge.registry, bridge.hub)
    bridge.tokens = Authenticator(token, store, auth=settings.auth)
    install_error_handlers(bridge)

    @bridge.get("/healthz", response_model=Health, include_in_schema=False)
    @bridge.get("/health", response_model=Health)
    async def health() -> dict[str, Any]:
        """``GET /health``: liveness, no token needed, so it tells nothing else (no
        version, no endpoint count) to whoever can reach the port."""
        return {"status": "ok"}

    @bridge.get("/endpoints", response_model=EndpointList)
    async def list_endpoints() -> dict[str, Any]:
        """``GET /endpoints``: every connected endpoint with its plugins."""
        return {"endpoints": bridge.registry.list()}

    @bridge.post("/endpoint/list", response_model=EndpointList)
    async def list_endpoints_compat() -> dict[str, Any]:
        """``POST /endpoint/list``: same as ``GET /endpoints`` (compatibility)."""
        return {"endpoints": bridge.registry.list()}

    @bridge.get("/endpoints/{name}", response_model=EndpointInfo)
    async def get_endpoint(name: str) -> dict[str, Any]:
        """``GET /endpoints/{name}``: one endpoint; 404 endpoint_not_found."""
        return bridge.registry.get(name).info()

    @bridge.get("/events")
    async def events(
        endpoint: str | None = Query(default=None),
        plugin: str | None = Query(default=None),
        topic: str | None = Query(default=None),
        session: str | None = Query(default=None, description="a session tag (session_tag(sid))"),
        last_event_id: str | None = Query(default=None),
        last_event_id_header: str | None = Header(default=None, alias="Last-Event-ID"),
    ) -> StreamingResponse:
        """``GET /events``: Server-Sent Events (hello, then notifications and topology)."""
        given = {"endpoint": endpoint, "plugin": plugin, "topic": topic, "session": session}
        filters = {key: value for key, value in given.items() if value is not None}
        sub = bridge.hub.subscribe(filters, last_event_id_header or last_event_id)

        async def stream() -> AsyncIterator[str]:
            try:
                async for chunk in sub.chunks(settings.sse_keepalive):
                    yield chunk
            finally:
                bridge.hub.unsubscribe(sub)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return bridge
