"""Plugin framework, endpoint side: ``Plugin`` (routes + sessions) and ``PluginSession``.

Contract::

      endpoint agent                       Plugin subclass
      --------------                       ---------------
      cls.check_enabled() -> reason|None   (class-level; may import optional deps)
      plugin = cls(ctx)                    ctx: endpoint name, notify(), limits
      await plugin.start()                 start background work
      plugin.app(scope, receive, send)     ASGI app: base routes + add_routes()
      await plugin.stop()                  close sessions, stop background work

Base routes every plugin serves (relative to ``/{endpoint}/{plugin}``)::

      GET  /                   plugin info
      POST /register_session   body: cls.register_model -> {"sid": ...}
      POST /unregister_session body: {"sid": ...}       -> {"closed": true}

A subclass declares typed FastAPI routes in :meth:`Plugin.add_routes`; each request
model inherits :class:`SessionRequest` (a ``sid`` field) and the handler looks the
session up with :meth:`Plugin.session` (404 unknown, 410 expired). Session ids carry
192 random bits. Sessions idle for longer than ``session_ttl`` are closed.

Sessions belong to the identity that opened them (:func:`.caller.current_identity`,
named by the bridge): to any other identity a sid is exactly an unknown one (the same
404, or ``{"closed": false}`` from unregister_session), so a sid that leaked is no use
to a stranger and nobody can probe which sids exist. Each identity holds at most
``PluginContext.max_sessions_per_identity`` sessions per plugin (429 beyond), so one
client cannot fill an endpoint with sessions. A session's notifications carry its
owner, and the bridge shows them to that identity only.

When the bridge stops waiting for an answer (504) it calls the request off and the
endpoint cancels the handler; a handler whose work has effects elsewhere awaits it
through :func:`to_completion`, so that the work ends whole (session registration
and closing do).

``plugin.app`` is a plain ``FastAPI`` app whose default response class writes text
UTF-8 cannot carry as JSON escapes instead of failing (:mod:`.answers`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import ValidationError as PydanticValidationError

from ..__about__ import __version__
from ..errors import (
    RateLimitedError,
    SessionExpiredError,
    SessionNotFoundError,
    UsageError,
    ValidationError,
    describe_validation_errors,
)
from ..text import find_lone_surrogate
from ..web.errors import install_error_handlers
from .answers import SafeJSONResponse
from .caller import current_identity

log = logging.getLogger(__name__)

#: "no owner recorded" (None is an owner: the identity of a request no bridge named)
_NOBODY = object()

#: FastAPI's ``telemetry=`` for plugin apps: off (see :meth:`Plugin._build_app`)
PLUGIN_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

#: sessions one identity may hold on one plugin, unless the endpoint says otherwise
DEFAULT_MAX_SESSIONS = 500

T = TypeVar("T")

#: work that goes on after its request was called off (held here until it ends)
_UNFINISHED: set[asyncio.Future[Any]] = set()


async def to_completion(work: Awaitable[T]) -> T:
    """Await ``work`` in a task of its own that goes on if the request is called off.

    The bridge calls a request off when it stops waiting for the answer (its client got
    a 504) and the endpoint then cancels the route's handler, which frees what a read
    holds. Work with effects elsewhere must not stop half way: a transfer Globus
    accepted must still be tracked, a session opened must still be registered. Such a
    handler awaits its work through this; the work then ends as if the client had
    waited, and only the answer is dropped.
    """
    task = asyncio.ensure_future(work)
    _UNFINISHED.add(task)
    task.add_done_callback(_ended)
    return await asyncio.shield(task)


def _ended(task: asyncio.Future[Any]) -> None:
    _UNFINISHED.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:  # retrieved: asyncio logs no "never retrieved"
        log.debug("work that went on for a called-off request failed: %s", type(exc).__name__)


class NotifyFn(Protocol):
    """``notify(plugin, sid, topic, payload, owner)``; must be callable from any thread.

    ``owner`` is the identity whose session emits it (None: a plugin-wide notification,
    for everyone).
    """

    def __call__(
        self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None, /
    ) -> None: ...


@dataclass
class PluginContext:
    """What the endpoint hands each plugin."""

    endpoint: str
    notify: NotifyFn
    settings: dict[str, Any] = field(default_factory=dict)
    #: sessions one identity may hold on this plugin (429 beyond)
    max_sessions_per_identity: int = DEFAULT_MAX_SESSIONS
    #: the endpoint's state directory (``--state-dir``), for what a plugin keeps across
    #: restarts; None: keep nothing on disk (not created until a plugin writes there)
    state_dir: Path | None = None


class StrictBody(BaseModel):
    """Base of request bodies: unknown fields refused, every string valid Unicode.

    JSON can spell a lone surrogate (``"\\ud800"``) that no UTF-8 text holds; such a
    string would fail later, in a query string or an answer, as a 500.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        found = find_lone_surrogate(value)
        if found:
            raise ValueError(f"is not valid Unicode text ({found}); send it as UTF-8")
        return value


class EmptyRequest(StrictBody):
    pass


class SessionRequest(StrictBody):
    """Base of every per-session request body."""

    sid: str


class PluginSession:
    """State for one client of a plugin (credentials, tracked work, background tasks).

    Subclasses override :meth:`start` and :meth:`close`; :meth:`notify` may be called
    from any thread or coroutine.
    """

    def __init__(self, plugin: Plugin, sid: str) -> None:
        self.plugin = plugin
        self.sid = sid
        #: the identity that opened the session (set by :meth:`Plugin.open_session`)
        self.owner: str | None = None
        self.created = time.time()
        self.last_used = time.monotonic()
        self.closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(plugin={self.plugin.name!r}, sid={self.sid[:8]}...)"

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def notify(self, topic: str, payload: dict[str, Any]) -> None:
        """Send a notification scoped to this session (and shown to its owner only)."""
        self.plugin.ctx.notify(self.plugin.name, self.sid, topic, payload, self.owner)

    async def start(self) -> None:
        """Called once after creation, on the event loop."""

    async def close(self) -> None:
        """Release everything the session holds; called once."""


class Plugin(ABC):
    """Base class of every endpoint plugin. See the module docstring for the contract."""

    name: ClassVar[str]
    version: ClassVar[str] = __version__
    description: ClassVar[str] = ""
    #: body model of ``POST /register_session``
    register_model: ClassVar[type[BaseModel]] = EmptyRequest
    #: idle seconds after which a session is closed (410 afterwards)
    session_ttl: ClassVar[float] = 24 * 3600.0
    reap_interval: ClassVar[float] = 30.0
    _expired_memory: ClassVar[int] = 10_000
    #: the plugin's options (``-o NAME.KEY=VALUE``) as a pydantic model; None: it takes none.
    #: Validated into :attr:`options` when the plugin is built.
    options_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.options = self.validate_options(ctx.settings or {})
        self.sessions: dict[str, PluginSession] = {}
        #: sessions held (or being opened) per owner, for the cap
        self._held: dict[str | None, int] = {}
        #: closed or expired sids -> their owner (410 to the owner, 404 to anyone else)
        self._expired: OrderedDict[str, str | None] = OrderedDict()
        self._reaper: asyncio.Task[None] | None = None
        self._app: FastAPI | None = None

    # -- enablement ------------------------------------------------------------
    @classmethod
    def check_enabled(cls) -> str | None:
        """Return why this plugin cannot run on this host, or None when it can."""
        return None

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> BaseModel | None:
        """``PluginContext.settings`` checked with :attr:`options_model` (the endpoint CLI
        calls this before the plugin starts, so a typo in ``--plugin-option`` is a usage
        error, not a surprise); the validated options, or None for a plugin without any.

        :raises UsageError: naming the option and what is accepted
        """
        model = cls.options_model
        if model is None:
            if options:
                raise UsageError(f"plugin '{cls.name}' takes no options (got: {', '.join(sorted(options))})")
            return None
        try:
            return model.model_validate(options)
        except PydanticValidationError as exc:
            _, fields = describe_validation_errors(exc.errors())
            parts = []
            for item in fields:
                if item["type"] == "extra_forbidden":
                    parts.append(f"unknown option '{item['field']}'")
                elif item["field"] == "body":  # a rule across options: its message names them
                    parts.append(item["error"].removeprefix("Value error, "))
                else:
                    parts.append(f"'{item['field']}': {item['error']}")
            known = ", ".join(sorted(model.model_fields))
            raise UsageError(
                f"plugin '{cls.name}' options: {'; '.join(parts)} (known: {known}; set with -o {cls.name}.KEY=VALUE)",
                fields=fields,
            ) from None

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_loop(), name=f"{self.name}-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            try:
                await self._reaper
            except asyncio.CancelledError:
                pass
            self._reaper = None
        for sid in list(self.sessions):
            await self.close_session(sid)

    # -- sessions --------------------------------------------------------------
    async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
        """Build the session object for a validated register request; override."""
        return PluginSession(self, sid)

    async def open_session(self, request: BaseModel) -> PluginSession:
        """Open a session for the current identity, within its cap.

        :raises RateLimitedError: the identity already holds the most sessions allowed
        """
        owner = current_identity()
        self._hold(owner)  # before any await: concurrent opens cannot overshoot the cap
        try:
            sid = secrets.token_urlsafe(24)
            session = await self.create_session(sid, request)
            session.owner = owner
            await session.start()
        except BaseException:
            self._release(owner)
            raise
        self.sessions[sid] = session
        log.info("%s: session %s... opened", self.name, sid[:8])
        return session

    def _hold(self, owner: str | None) -> None:
        held = self._held.get(owner, 0)
        limit = self.ctx.max_sessions_per_identity
        if held >= limit:
            who = f"identity '{owner}'" if owner is not None else "this caller"
            raise RateLimitedError(
                f"{who} already holds {held} sessions on plugin '{self.name}' of endpoint '{self.ctx.endpoint}', "
                f"the most it may (the endpoint's --max-sessions, {limit}); close the ones no longer needed "
                f"with unregister_session (idle ones close after {self.session_ttl:g} s)",
                plugin=self.name,
                limit=limit,
            )
        self._held[owner] = held + 1

    def _release(self, owner: str | None) -> None:
        left = self._held.get(owner, 0) - 1
        if left > 0:
            self._held[owner] = left
        else:
            self._held.pop(owner, None)

    def owned(self, sid: str) -> PluginSession | None:
        """The live session ``sid`` if the current identity opened it, else None."""
        found = self.sessions.get(sid)
        if found is not None and found.owner == current_identity():
            return found
        return None

    def session(self, sid: str) -> PluginSession:
        """The live session ``sid``; 404 if unknown, 410 if it expired or was closed.

        A session of another identity is answered exactly as an unknown sid (same
        error, same message): its existence is not revealed.
        """
        found = self.owned(sid)
        if found is not None:
            found.touch()
            return found
        if self._expired.get(sid, _NOBODY) == current_identity():
            raise SessionExpiredError(
                f"session {sid[:8]}... of plugin '{self.name}' has expired or was closed; "
                "call register_session again",
                plugin=self.name,
            )
        raise SessionNotFoundError(
            f"no session {sid[:8]}... on plugin '{self.name}' (the endpoint may have restarted); "
            "call register_session first",
            plugin=self.name,
        )

    def held(self, owner: str | None) -> int:
        """How many sessions ``owner`` holds on this plugin."""
        return self._held.get(owner, 0)

    async def close_session(self, sid: str) -> bool:
        """Close ``sid``, whoever owns it (the caller checks ownership: :meth:`owned`)."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        self._remember_expired(sid, session.owner)
        self._release(session.owner)
        session.closed = True
        try:
            await session.close()
        except Exception:  # a failing close must not keep others open
            log.exception("%s: error closing session %s...", self.name, sid[:8])
        log.info("%s: session %s... closed", self.name, sid[:8])
        return True

    def _remember_expired(self, sid: str, owner: str | None) -> None:
        self._expired[sid] = owner
        while len(self._expired) > self._expired_memory:
            self._expired.popitem(last=False)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            now = time.monotonic()
            for sid, session in list(self.sessions.items()):
                if now - session.last_used > self.session_ttl:
                    log.info("%s: session %s... idle for %.0f s, closing", self.name, sid[:8], now - session.last_used)
                    await self.close_session(sid)

    # -- notifications ---------------------------------------------------------
    def notify(self, topic: str, payload: dict[str, Any], *, sid: str | None = None) -> None:
        """Emit a notification (thread-safe), scoped to this plugin and ``sid``; one
        with a ``sid`` goes to that session's owner only."""
        owner: str | None = None
        if sid is not None:
            session = self.sessions.get(sid)
            owner = session.owner if session is not None else self._expired.get(sid)
        self.ctx.notify(self.name, sid, topic, payload, owner)

    # -- routes ----------------------------------------------------------------
    @abstractmethod
    def add_routes(self, router: APIRouter) -> None:
        """Declare the plugin's own routes on ``router``."""

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "endpoint": self.ctx.endpoint,
            # the caller's own: how many others hold is none of its business
            "sessions": self.held(current_identity()),
        }

    @property
    def app(self) -> FastAPI:
        """The plugin's ASGI app, built on first use."""
        if self._app is None:
            self._app = self._build_app()
        return self._app

    def _build_app(self) -> FastAPI:
        app = FastAPI(
            title=f"radical.orbit plugin {self.name}",
            version=self.version,
            docs_url=None,
            redoc_url=None,
            # a redirect from here would name the endpoint's in-process address, not the
            # bridge URL the client used: a trailing slash is a plain 404 instead
            redirect_slashes=False,
            # answers holding lone surrogates go out with JSON escapes, not as a 500
            default_response_class=SafeJSONResponse,
            # FastAPI's native OpenTelemetry asks the global providers on every request;
            # a plugin app is an in-process sub-app of the endpoint, not a service of its own
            telemetry=PLUGIN_TELEMETRY,
        )
        install_error_handlers(app)
        # routes go straight onto the app's own router: an included APIRouter is matched
        # through an extra wrapper that scans every route twice per request (the cost grows
        # with the number of routes; globus has 23)
        router = app.router
        plugin = self

        @router.get("/")
        async def plugin_info() -> dict[str, Any]:
            return plugin.info()

        @router.post("/register_session")
        async def register_session(request: Request) -> dict[str, Any]:
            raw = await request.body()
            try:
                body = plugin.register_model.model_validate_json(raw or b"{}")
            except PydanticValidationError as exc:
                message, fields = describe_validation_errors(exc.errors())
                raise ValidationError(message, fields=fields) from None
            session = await to_completion(plugin.open_session(body))
            return {"sid": session.sid, "plugin": plugin.name}

        @router.post("/unregister_session")
        async def unregister_session(body: SessionRequest) -> dict[str, Any]:
            # another identity's session is as unknown as one that never existed
            closed = plugin.owned(body.sid) is not None and await to_completion(plugin.close_session(body.sid))
            return {"closed": closed}

        self.add_routes(router)
        return app
