"""``PluginClient``: the application-side helper that mirrors a plugin's session methods.

It imports nothing server-side (no FastAPI, uvicorn or plugin dependencies), so a
laptop with only the SDK can use it. A concrete client (``GlobusClient``) subclasses
it and turns each method into :meth:`PluginClient._call`.

Sessions: when ``session_kwargs`` are given (to ``get_plugin`` or the constructor) the
session is registered at once; otherwise, if the plugin needs no credentials
(``requires_credentials = False``), it is registered lazily on the first call; else
the first call says "call register_session(...) first".

An endpoint that restarts forgets its sessions. So that a script does not have to
notice, the client keeps its ``register_session`` arguments in memory
(:class:`SessionArgs`: never in a repr, a log line, an error or a pickle, never on
disk) and, when a call finds its session gone (404 ``session_not_found`` or 410
``session_expired``), registers again once, re-attaching what the plugin needs
(:meth:`PluginClient._reattach`), and repeats the call: a call the endpoint refused
for want of a session never ran, so repeating it cannot do anything twice. When the
endpoint connects to the bridge again, a client with notification callbacks asks its
``probe_route`` at once, so a script that only waits for callbacks is re-attached too.
``register_session(..., reopen=False)`` or ``client.reopen = False`` turns this off
(and the arguments are not kept).

Notifications go through one :class:`~.feed.SessionFeed` per client: events of a
session being opened are not lost to the race between the reply and the event
stream, and a ``gap`` notification (and the ``on_gap`` hook) says when events may
be missing.

The original Orbit's calls work too (docs/compat.md): notification callbacks written
as ``cb(endpoint, plugin, topic, data)``, ``unregister_notification_callback(cb)``
and ``unregister_session()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self

from ..errors import OrbitError, SessionExpiredError, SessionNotFoundError, UsageError
from .compat import CallbackStyle, choose_style, describe
from .feed import GAP, SessionFeed

if TYPE_CHECKING:
    from .endpoint import EndpointClient

__all__ = ["GAP", "NotificationCallback", "PluginClient", "SessionArgs"]

log = logging.getLogger(__name__)

NotificationCallback = Callable[..., object]
"""``callback(topic, payload)``, or the original Orbit's ``callback(endpoint, plugin, topic, data)``."""


class SessionArgs:
    """``register_session``'s arguments, kept in this process's memory to re-open a session.

    They may hold credentials, so the object shows only how many there are: not in
    ``repr``/``str`` (hence not in logs or error messages) and not through
    ``vars()``; pickling it (the way objects reach a disk or another process) is
    refused.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __repr__(self) -> str:
        return f"<register_session arguments: {len(self._values)} kept in memory, not shown>"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("register_session arguments stay in memory: they are never pickled")

    def reveal(self) -> dict[str, Any]:
        """The arguments themselves (a copy), to send in a ``register_session``."""
        return dict(self._values)


class PluginClient:
    """Generic client for any plugin; concrete plugins subclass it.

    :param endpoint_client: the :class:`EndpointClient` this plugin lives on
    :param name: the plugin name (as registered on the endpoint)
    :param session_kwargs: passed to ``register_session`` right away when given

    ``reopen`` (default True): re-open the session by itself when the endpoint lost it.
    ``on_gap``: None, or ``on_gap(info)`` called when notifications may have been
    missed (the callbacks also get a ``gap`` notification); assign it or override it.
    """

    plugin_name: ClassVar[str] = ""
    requires_credentials: ClassVar[bool] = False
    #: keyword names whose values must never appear in reprs, logs or errors
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    #: a per-session route that costs the endpoint nothing, asked when the endpoint
    #: connects again to learn whether the session survived (None: wait for a call)
    probe_route: ClassVar[str | None] = None
    on_gap: Callable[[dict[str, Any]], object] | None = None

    def __init__(self, endpoint_client: EndpointClient, name: str | None = None, **session_kwargs: Any) -> None:
        self._ec = endpoint_client
        self.name = name or self.plugin_name
        if not self.name:
            raise UsageError("a plugin client needs a plugin name")
        self._sid: str | None = None
        self._lock = threading.RLock()
        self.reopen = True
        #: how often the session was re-opened after the endpoint lost it
        self.reopened = 0
        self._args: SessionArgs | None = None
        self._feed = SessionFeed(
            endpoint_client.name, self.name, observe=self._observe, endpoint_back=self._endpoint_back,
            gap_hook=lambda: self.on_gap,
        )
        #: the bridge subscription that feeds ``_feed`` (while callbacks are registered)
        self._router: str | None = None
        self._router_lock = threading.Lock()
        #: a probe is running (its own lock: the listener thread must never wait for a call)
        self._probing = False
        self._probe_lock = threading.Lock()
        if session_kwargs:
            self.register_session(**session_kwargs)

    def __repr__(self) -> str:
        sid = f"{self._sid[:8]}..." if self._sid else None
        return f"{type(self).__name__}(endpoint={self._ec.name!r}, plugin={self.name!r}, sid={sid!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> EndpointClient:
        return self._ec

    @property
    def sid(self) -> str | None:
        """The session id (None before ``register_session``)."""
        return self._sid

    # -- sessions --------------------------------------------------------------
    def register_session(self, *, reopen: bool | None = None, **kwargs: Any) -> str:
        """Open a session on the endpoint (closing any previous one of this client).

        :param reopen: keep ``kwargs`` in memory and re-open the session by itself if
            the endpoint loses it (default: the client's ``reopen``, True); False
            forgets them and turns that off
        """
        self._set_reopen(reopen)
        return self._open(kwargs)

    def _set_reopen(self, reopen: bool | None) -> None:
        if reopen is None:
            return
        if not isinstance(reopen, bool):
            raise UsageError(f"register_session: reopen must be True or False, got {reopen!r}")
        self.reopen = reopen

    def _open(self, args: Mapping[str, Any], extra: Mapping[str, Any] | None = None, *, close_old: bool = True) -> str:
        """``register_session`` with ``args`` (kept for re-opening) plus ``extra`` (this time only).

        The feed holds the new session's events until the reply names it, so none
        raised while the endpoint opens it is lost.
        """
        body = {k: v for k, v in {**args, **(extra or {})}.items() if v is not None}
        with self._lock, self._feed.opening():
            reply = self._ec.call(self.name, "register_session", body)
            sid = reply.get("sid") if isinstance(reply, dict) else None
            if not isinstance(sid, str) or not sid:
                raise OrbitError(f"{self._ec.name}/{self.name}/register_session: the endpoint answered without a session id")
            old, self._sid = self._sid, sid
            self._args = SessionArgs(args) if self.reopen else None
            self._feed.opened(sid)
        if old and close_old and old != sid:
            self._close_remote(old)
        log.debug("%s/%s: session %s... registered", self._ec.name, self.name, sid[:8])
        return sid

    def _reattach(self) -> dict[str, Any]:
        """What a re-opened session is sent besides the kept arguments (globus: the tasks to track)."""
        return {}

    def _observe(self, topic: str, payload: dict[str, Any]) -> None:
        """Sees every notification of this client's sessions before its callbacks (a hook)."""

    def close(self) -> None:
        """Close the remote session, drop this client's notification callbacks and forget
        its kept arguments; never raises."""
        self._feed.clear()
        self._unsubscribe()
        self._feed.forget()
        with self._lock:
            sid, self._sid = self._sid, None
            self._args = None
        if sid:
            self._close_remote(sid)

    def unregister_session(self) -> None:
        """Close the session now, keeping the client and its callbacks (the original Orbit's call).

        Unlike :meth:`close` a failure raises; a session the endpoint no longer has
        counts as closed. The kept arguments are forgotten: a closed session is not re-opened.
        """
        sid = self._sid
        if sid is None:
            return
        try:
            self._ec.call(self.name, "unregister_session", {"sid": sid})
        except (SessionNotFoundError, SessionExpiredError):
            pass
        with self._lock:
            if self._sid == sid:
                self._sid = None
                self._args = None

    def _close_remote(self, sid: str) -> None:
        try:
            self._ec.call(self.name, "unregister_session", {"sid": sid})
        except Exception as exc:  # noqa: BLE001 - closing is best effort: the endpoint reaps idle sessions
            log.debug("%s/%s: closing session failed: %s", self._ec.name, self.name, exc)

    def _ensure_session(self) -> str:
        if self._sid is not None:
            return self._sid
        with self._lock:
            if self._sid is None:
                if self.requires_credentials:
                    raise UsageError(
                        f"plugin '{self.name}' on endpoint '{self._ec.name}' has no session yet: "
                        "call register_session(...) with credentials first"
                    )
                self.register_session()
        sid = self.sid  # re-read: register_session() has just set it
        if sid is None:
            raise UsageError(f"plugin '{self.name}' on endpoint '{self._ec.name}': no session could be opened")
        return sid

    def _recover(self, lost: str, exc: OrbitError) -> str:
        """The session to repeat a call with after ``lost`` was refused as unknown or expired.

        Another thread may have re-opened or replaced it already: then that one.
        Otherwise, if re-opening is on, register again once (re-attaching); else ``exc``.
        """
        with self._lock:
            current = self._sid
            if current is not None and current != lost:
                return current
            if current is None or not self.reopen or self._args is None:
                raise exc
            log.info("%s/%s: session %s... is gone (%s); opening a new one", self._ec.name, self.name, lost[:8], exc.code)
            sid = self._open(self._args.reveal(), self._reattach(), close_old=False)
            self.reopened += 1
            return sid

    # -- calls -----------------------------------------------------------------
    def _call(self, route: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """POST ``kwargs`` (plus ``sid``) to ``route`` and return the decoded JSON (see :meth:`_send`)."""
        return self._send(route, kwargs, timeout=timeout)

    def _send(self, route: str, body: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """POST ``body`` plus ``sid`` to ``route``; the decoded JSON answer.

        A session the endpoint no longer has is re-opened once and the call repeated
        (see the module docstring).

        :param timeout: seconds the bridge waits for the endpoint (default: the BridgeClient's)
        """
        sid = self._ensure_session()
        try:
            return self._ec.call(self.name, route, {"sid": sid, **body}, timeout=timeout)
        except (SessionNotFoundError, SessionExpiredError) as exc:
            lost = exc
        sid = self._recover(sid, lost)
        return self._ec.call(self.name, route, {"sid": sid, **body}, timeout=timeout)

    def request(self, method: str, route: str, **kwargs: Any) -> Any:
        """Raw access to any route of this plugin; returns the decoded JSON body."""
        resp = self._ec.request(method, self.name, route, **kwargs)
        return resp.json() if resp.content else None

    def _endpoint_back(self) -> None:
        """The endpoint connected again (listener thread): ask whether the session survived,
        on a thread of its own, so the event stream is not held up by it."""
        if not (self.reopen and self._sid and self.probe_route and self._args is not None):
            return
        with self._probe_lock:
            if self._probing:
                return
            self._probing = True
        threading.Thread(target=self._probe, name=f"orbit-reopen-{self.name}", daemon=True).start()

    def _probe(self) -> None:
        sid, route = self._sid, self.probe_route
        try:
            if sid is not None and route is not None:  # never opens a session of its own (a closed client)
                try:
                    self._ec.call(self.name, route, {"sid": sid})
                except (SessionNotFoundError, SessionExpiredError) as exc:
                    self._recover(sid, exc)
        except OrbitError as exc:
            log.info("%s/%s: the session could not be checked or re-opened: %s", self._ec.name, self.name, exc.message)
        except Exception:  # a thread of ours: log, never leak
            log.exception("%s/%s: checking the session after the endpoint came back failed", self._ec.name, self.name)
        finally:
            with self._probe_lock:
                self._probing = False

    # -- notifications ---------------------------------------------------------
    def register_notification_callback(
        self, callback: NotificationCallback, topic: str | None = None, *, style: CallbackStyle | None = None
    ) -> str:
        """Call ``callback(topic, payload)`` for this client's session notifications.

        May be called before ``register_session``; it follows the session across
        re-registrations and re-openings. A callback written for the original Orbit,
        ``callback(endpoint, plugin, topic, data)``, is called that way: its signature
        says which; one that takes either (``*args``) gets ``(topic, payload)`` unless
        ``style="original"`` (docs/compat.md). Callbacks whose topic matches ``"gap"``
        (every one registered without a topic) also get ``gap`` notifications: events
        may have been missed, re-read what matters.

        :param topic: only this topic (a name or a pattern; default: every topic of this session)
        :returns: an id for :meth:`unregister_notification_callback`
        """
        where = "register_notification_callback"
        if not callable(callback):
            raise UsageError(f"{where}: callback must be callable as callback(topic, payload), got {describe(callback)}")
        if topic is not None and (not isinstance(topic, str) or not topic):
            raise UsageError(f"{where}: topic must be a topic name, a pattern or None (every topic), got {topic!r}")
        original = choose_style(callback, ("topic", "original"), "topic", style, where) == "original"
        rid = self._feed.add(callback, topic, original=original)
        try:
            self._subscribe()
        except BaseException:
            self._feed.remove(rid)
            raise
        return rid

    def unregister_notification_callback(self, cid: str | NotificationCallback, topic: str | None = None) -> None:
        """Forget a notification callback: by the id :meth:`register_notification_callback`
        returned, or (the original Orbit's form) by the callback and topic it was registered with."""
        if isinstance(cid, str):
            if not self._feed.remove(cid):  # an id from elsewhere: still the bridge's to forget
                self._ec.bridge.unregister_callback(cid)
        else:
            self._feed.remove_callback(cid, topic)
        if not len(self._feed):
            self._unsubscribe()

    def _subscribe(self) -> None:
        with self._router_lock:
            if self._router is None:
                self._router = self._ec.bridge.register_callback("*", "*", "*", self._feed.on_event, style="event")

    def _unsubscribe(self) -> None:
        with self._router_lock:
            router, self._router = self._router, None
        if router is not None:
            self._ec.bridge.unregister_callback(router)
