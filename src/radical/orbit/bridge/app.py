"""``create_app(settings)``: the bridge as one ASGI app.

Requests are split before any framework code runs: ``/{endpoint}/{plugin}...``
(first path segment not a reserved name) goes straight to the lean
:class:`~radical.orbit.bridge.relay.Relay`; everything else (``/health``,
``/endpoints``, ``/events``, ``/ws/endpoint``) is a typed FastAPI route. The caller's
token is checked in the same place for both, so no route can forget it; endpoint
keys are checked on the ``/ws/endpoint`` upgrade request, before it is accepted.

Routes (all but ``/health`` and ``/ui`` need ``Authorization: Bearer <token>``; the
relay, ``/endpoints`` and ``/events`` also take the Explorer's session cookie, see
:mod:`.browser`)::

    GET  /health                  {"status": "ok"} (nothing else: it needs no token); replicas:
                                  {"status": "ok"|"degraded", "replica", "redis": "ok"|"unreachable"}
    ANY  /ui/...                  the Explorer: static files and its sign-in API (:mod:`.ui`)
    GET  /endpoints               {"endpoints": [EndpointInfo]}
    POST /endpoint/list           same (compatibility)
    GET  /endpoints/{name}        EndpointInfo | 404 endpoint_not_found
    GET  /events                  SSE; ?endpoint=&plugin=&topic=&session=&last_event_id= | 429
    WS   /ws/endpoint             endpoints register here (their key, not a client token)
    ANY  /{endpoint}/{plugin}[/{route}]   relay | 404 | 413 | 429 | 502 | 503 | 504

With ``settings.redis_url`` the bridge is one replica of several (:mod:`.backplane`):
``/endpoints`` lists every replica's endpoints, the relay forwards to the replica that
holds an endpoint, ``/events`` ids are the Redis Stream's, tokens are shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..__about__ import __version__
from ..config import orbit_home
from ..errors import RateLimitedError
from ..models.messages import CLOSE_GOING_AWAY, RESERVED_NAMES
from ..web.errors import error_response, install_error_handlers, request_id_of
from .auth import Authenticator, IdentitySource, bearer
from .backplane import Backplane, Hooks, LocalBackplane
from .browser import BrowserSessions, BrowserSignIn, SigninSecrets
from .events import EventHub
from .identities import IdentityStore
from .identity import SCOPE_KEY, Identity, identity_of
from .registry import Registry
from .relay import Relay, send_error
from .schemas import EndpointInfo, EndpointList, Health
from .settings import BridgeSettings
from .ui import ExplorerUI, is_ui_path
from .ws import EndpointSocket, RawSocket

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/healthz"})
#: besides the relay and ``/endpoints/{name}``, what a browser session (the Explorer's cookie) may call
BROWSER_PATHS = frozenset({"/endpoints", "/events"})
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
    browser: BrowserSignIn
    ui: ExplorerUI
    backplane: Backplane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if is_ui_path(path):  # the Explorer: public files and its own sign-in API
                await self.ui(scope, receive, send)
                return
            if path not in PUBLIC_PATHS:
                cut = path.find("/", 1)
                relayed = cut > 1 and cut + 1 < len(path) and path[cut + 1] != "/" and path[1:cut] not in RESERVED_NAMES
                identity = self.tokens.identify(scope)
                if identity is None and self.backplane.clustered and bearer(scope) and await self.tokens.refresh_shared():
                    identity = self.tokens.identify(scope)  # a token made a moment ago, through another replica
                if identity is None:  # no bearer token: a browser's session cookie, if any
                    found = self.browser.identify(scope, allowed=relayed or path in BROWSER_PATHS or path.startswith("/endpoints/"))
                    if not isinstance(found, Identity):
                        await send_error(send, found or Authenticator.error(), None)
                        return
                    identity = found
                scope[SCOPE_KEY] = identity
                if relayed:
                    await self.relay(scope, receive, send)
                    return
        elif kind == "websocket" and scope["path"] == ENDPOINT_SOCKET_PATH:
            await self.sockets.serve(RawSocket(scope, receive, send), self.tokens)
            return
        await super().__call__(scope, receive, send)

    async def watch_identities(self, interval: float = IDENTITY_CHECK_INTERVAL) -> None:
        """Pick up ``radical-orbit bridge tokens|endpoints`` changes without a restart, and
        disconnect endpoints they revoked (also when a request caused the reload)."""
        while True:
            await asyncio.sleep(interval)
            if self.tokens.refresh():
                log.info("identity store changed: reloaded")
            if self.tokens.generation != self._enforced:
                await self.apply_identities()

    async def apply_identities(self) -> None:
        """Enforce the current identity snapshot: disconnect endpoints and end what revoked
        tokens opened (at once when a replica loads a shared change)."""
        self.tokens.refresh()
        self._enforced = self.tokens.generation
        await self.sockets.enforce(self.tokens)
        now = self.tokens.fingerprints()
        # a name whose token changed (revoked, maybe re-added) is revoked too
        keep = frozenset(name for name, mark in now.items() if self._known.get(name, mark) == mark)
        self._known = now
        self.end_revoked(keep)

    _enforced = 0
    _known: Mapping[str, str] = MappingProxyType({})

    def end_revoked(self, keep: frozenset[str]) -> None:
        """What a revoked token opened ends with it: browser sessions, unused sign-in
        links and open ``/events`` streams of identities not in ``keep``."""
        ended = self.browser.sessions.keep_identities(keep)
        self.browser.secrets.keep_identities(keep)
        cut = self.hub.keep_identities(keep)
        if ended or cut:
            log.info("identity store changed: %d browser session(s) and %d event stream(s) of revoked tokens ended", ended, cut)

    async def shutdown_streams(self) -> None:
        """Before the server stops: end SSE streams and say goodbye to endpoints."""
        self.hub.close()
        await self.sockets.close_all(CLOSE_GOING_AWAY, "bridge shutting down")


def create_app(settings: BridgeSettings) -> BridgeApp:
    """Build the bridge app from explicit settings (no module-level app)."""
    token = settings.token.get_secret_value() if (settings.auth and settings.token) else None
    hub_bounds: dict[str, Any] = {
        "max_bytes": settings.event_buffer_bytes,
        "max_queue": settings.subscriber_queue,
        "max_queue_bytes": settings.subscriber_queue_bytes,
        "max_subscribers": settings.max_subscribers_per_identity,
    }
    store: IdentityStore | IdentitySource
    if settings.redis_url is None:
        store = IdentityStore(orbit_home())
        store.ensure_local_key()  # an endpoint in this HOME finds it: zero-config stays zero-config
        hub = EventHub(settings.event_buffer, **hub_bounds)
        backplane: Backplane = LocalBackplane(hub)
    else:  # replicas: only now is the redis package imported
        from .backplane.redis_backplane import RedisBackplane, shared_identities
        from .stream_hub import StreamEventHub

        shared = shared_identities(settings, orbit_home())
        store = shared
        stream_hub = StreamEventHub(settings.event_buffer, **hub_bounds)
        hub = stream_hub
        backplane = RedisBackplane(settings, stream_hub, shared)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backplane.start()
        log.info("bridge %s ready (auth %s)", __version__, "on" if token else "OFF")
        watcher = asyncio.create_task(bridge.watch_identities(), name="orbit-identities")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await bridge.shutdown_streams()
            await backplane.stop()

    bridge = BridgeApp(
        title="radical.orbit bridge",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    bridge.settings = settings
    bridge.registry = Registry()
    bridge.hub = hub
    bridge.backplane = backplane
    bridge.relay = Relay(settings, bridge.registry, backplane)
    bridge.sockets = EndpointSocket(settings, bridge.registry, hub, backplane)
    bridge.tokens = Authenticator(token, store, auth=settings.auth)
    if backplane.clustered:
        bridge.tokens.resync = backplane.sync_identities
    backplane.bind(Hooks(bridge.registry, bridge.relay.serve_forwarded, bridge.sockets.replaced, bridge.apply_identities))
    bridge.browser = BrowserSignIn(SigninSecrets(settings.signin_lifetime), BrowserSessions(settings.browser_idle))
    bridge.ui = ExplorerUI(settings, bridge.tokens, bridge.browser)
    install_error_handlers(bridge)

    @bridge.get("/healthz", response_model=Health, response_model_exclude_none=True, include_in_schema=False)
    @bridge.get("/health", response_model=Health, response_model_exclude_none=True)
    async def health() -> dict[str, Any]:
        """``GET /health``: liveness, no token needed, so it tells nothing else (no
        version, no endpoint count) to whoever can reach the port. A replica also
        says which it is and whether it reaches Redis: "degraded" is still a 200, as a
        degraded replica still serves the endpoints connected to it."""
        return backplane.health()

    async def every_endpoint() -> dict[str, Any]:
        listed = bridge.registry.list()
        if backplane.clustered:
            here = {info["name"].casefold() for info in listed}
            listed += [info for info in await backplane.remote_endpoints() if str(info.get("name", "")).casefold() not in here]
            listed.sort(key=lambda info: str(info.get("name")))
        return {"endpoints": listed}

    @bridge.get("/endpoints", response_model=EndpointList)
    async def list_endpoints() -> dict[str, Any]:
        """``GET /endpoints``: every connected endpoint with its plugins (on every replica)."""
        return await every_endpoint()

    @bridge.post("/endpoint/list", response_model=EndpointList)
    async def list_endpoints_compat() -> dict[str, Any]:
        """``POST /endpoint/list``: same as ``GET /endpoints`` (compatibility)."""
        return await every_endpoint()

    @bridge.get("/endpoints/{name}", response_model=EndpointInfo)
    async def get_endpoint(name: str) -> dict[str, Any]:
        """``GET /endpoints/{name}``: one endpoint; 404 endpoint_not_found."""
        conn = bridge.registry.find(name)
        if conn is not None:
            return conn.info()
        remote = await backplane.find(name) if backplane.clustered else None
        if remote is None:
            raise bridge.registry.missing(name)
        return remote

    @bridge.get("/events")
    async def events(
        request: Request,
        endpoint: str | None = Query(default=None),
        plugin: str | None = Query(default=None),
        topic: str | None = Query(default=None),
        session: str | None = Query(default=None, description="a session tag (session_tag(sid))"),
        last_event_id: str | None = Query(default=None),
        last_event_id_header: str | None = Header(default=None, alias="Last-Event-ID"),
    ) -> Response:
        """``GET /events``: Server-Sent Events (hello, then notifications and topology),
        only the caller's own sessions' events (an admin sees all); 429 when the caller
        has too many streams open."""
        given = {"endpoint": endpoint, "plugin": plugin, "topic": topic, "session": session}
        filters = {key: value for key, value in given.items() if value is not None}
        if backplane.clustered:  # an id seen on another replica: read the stream up to it first
            await backplane.catch_up(last_event_id_header or last_event_id)
        try:
            sub = bridge.hub.subscribe(identity_of(request.scope), filters, last_event_id_header or last_event_id)
        except RateLimitedError as exc:
            refused = error_response(exc, request_id_of(request))
            refused.headers["Retry-After"] = str(exc.details["retry_after"])
            return refused
        return StreamingResponse(
            bridge.hub.stream(sub, settings.sse_keepalive),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return bridge
