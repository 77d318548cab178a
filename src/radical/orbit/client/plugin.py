"""``PluginClient``: the application-side helper that mirrors a plugin's session methods.

It imports nothing server-side (no FastAPI, uvicorn or plugin dependencies), so a
laptop with only the SDK can use it. A concrete client (``GlobusClient``) subclasses
it and turns each method into :meth:`PluginClient._call`.

Sessions: when ``session_kwargs`` are given (to ``get_plugin`` or the constructor) the
session is registered at once; otherwise, if the plugin needs no credentials
(``requires_credentials = False``), it is registered lazily on the first call; else
the first call says "call register_session(...) first".

The original Orbit's calls work too (docs/compat.md): notification callbacks written
as ``cb(endpoint, plugin, topic, data)``, ``unregister_notification_callback(cb)``
and ``unregister_session()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..errors import SessionExpiredError, SessionNotFoundError, UsageError
from ..models.messages import session_tag
from .compat import CallbackStyle, choose_style, describe

if TYPE_CHECKING:
    from .endpoint import EndpointClient

log = logging.getLogger(__name__)

NotificationCallback = Callable[..., object]
"""``callback(topic, payload)``, or the original Orbit's ``callback(endpoint, plugin, topic, data)``."""


class PluginClient:
    """Generic client for any plugin; concrete plugins subclass it.

    :param endpoint_client: the :class:`EndpointClient` this plugin lives on
    :param name: the plugin name (as registered on the endpoint)
    :param session_kwargs: passed to ``register_session`` right away when given
    """

    plugin_name: ClassVar[str] = ""
    requires_credentials: ClassVar[bool] = False
    #: keyword names whose values must never appear in reprs, logs or errors
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, endpoint_client: EndpointClient, name: str | None = None, **session_kwargs: Any) -> None:
        self._ec = endpoint_client
        self.name = name or self.plugin_name
        if not self.name:
            raise UsageError("a plugin client needs a plugin name")
        self._sid: str | None = None
        self._lock = threading.Lock()
        #: (id, callback, topic) of each notification callback, for close() and removal by callback
        self._callbacks: list[tuple[str, Any, str | None]] = []
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
    def register_session(self, **kwargs: Any) -> str:
        """Open a session on the endpoint (closing any previous one of this client)."""
        body = {k: v for k, v in kwargs.items() if v is not None}
        reply = self._ec.call(self.name, "register_session", body)
        old, self._sid = self._sid, reply["sid"]
        if old:
            self._close_remote(old)
        log.debug("%s/%s: session %s... registered", self._ec.name, self.name, self._sid[:8])
        return self._sid

    def close(self) -> None:
        """Close the remote session and drop this client's notification callbacks; never raises."""
        for cid, _, _ in self._callbacks:
            self._ec.bridge.unregister_callback(cid)
        self._callbacks.clear()
        sid, self._sid = self._sid, None
        if sid:
            self._close_remote(sid)

    def unregister_session(self) -> None:
        """Close the session now, keeping the client and its callbacks (the original Orbit's call).

        Unlike :meth:`close` a failure raises; a session the endpoint no longer has
        counts as closed.
        """
        sid = self._sid
        if sid is None:
            return
        try:
            self._ec.call(self.name, "unregister_session", {"sid": sid})
        except (SessionNotFoundError, SessionExpiredError):
            pass
        if self._sid == sid:
            self._sid = None

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

    # -- calls -----------------------------------------------------------------
    def _call(self, route: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """POST ``kwargs`` (plus ``sid``) to ``route`` and return the decoded JSON."""
        sid = self._ensure_session()
        return self._ec.call(self.name, route, {"sid": sid, **kwargs}, timeout=timeout)

    def request(self, method: str, route: str, **kwargs: Any) -> Any:
        """Raw access to any route of this plugin; returns the decoded JSON body."""
        resp = self._ec.request(method, self.name, route, **kwargs)
        return resp.json() if resp.content else None

    # -- notifications ---------------------------------------------------------
    def register_notification_callback(
        self, callback: NotificationCallback, topic: str | None = None, *, style: CallbackStyle | None = None
    ) -> str:
        """Call ``callback(topic, payload)`` for this client's session notifications.

        May be called before ``register_session``; it follows the session across
        re-registrations. A callback written for the original Orbit,
        ``callback(endpoint, plugin, topic, data)``, is called that way: its signature
        says which; one that takes either (``*args``) gets ``(topic, payload)`` unless
        ``style="original"`` (docs/compat.md).

        :param topic: only this topic (default: every topic of this session)
        :returns: an id for :meth:`unregister_notification_callback`
        """
        where = "register_notification_callback"
        if not callable(callback):
            raise UsageError(f"{where}: callback must be callable as callback(topic, payload), got {describe(callback)}")
        if topic is not None and (not isinstance(topic, str) or not topic):
            raise UsageError(f"{where}: topic must be a topic name, a pattern or None (every topic), got {topic!r}")
        original = choose_style(callback, ("topic", "original"), "topic", style, where) == "original"

        def _deliver(event: dict[str, Any]) -> None:
            # filter on the *current* sid, so a re-registered session keeps its callbacks
            if self._sid is None or event.get("session") != session_tag(self._sid) or event.get("kind") != "notification":
                return
            if original:
                callback(event.get("endpoint"), event.get("plugin"), event["topic"], event.get("payload") or {})
            else:
                callback(event["topic"], event.get("payload") or {})

        cid = self._ec.bridge.register_callback(self._ec.name, self.name, topic or "*", _deliver)
        self._callbacks.append((cid, callback, topic))
        return cid

    def unregister_notification_callback(self, cid: str | NotificationCallback, topic: str | None = None) -> None:
        """Forget a notification callback: by the id :meth:`register_notification_callback`
        returned, or (the original Orbit's form) by the callback and topic it was registered with."""
        for index, (known, callback, known_topic) in enumerate(self._callbacks):
            same = (known == cid) if isinstance(cid, str) else (callback == cid and known_topic == topic)
            if same:
                del self._callbacks[index]
                self._ec.bridge.unregister_callback(known)
                return
        if isinstance(cid, str):  # an id from elsewhere: still the bridge's to forget
            self._ec.bridge.unregister_callback(cid)
