"""``BridgeClient``: the application's handle on one bridge (sync, httpx).

    from radical.orbit import BridgeClient
    with BridgeClient() as bc:                  # URL, token and CA cert found by themselves
        ec = bc.get_endpoint_client(bc.list_endpoints()[0])
        bc.register_callback(ec.name, "*", "*", print)

Each of ``url``, ``token`` and ``cert`` resolves as argument > environment variable
(``RADICAL_ORBIT_BRIDGE_URL`` / ``_TOKEN`` / ``_CERT``, then the original Orbit's
``RADICAL_BRIDGE_URL`` / ``_CERT``) > file under ``~/.radical/orbit/`` (``bridge.url``,
``bridge.token``, ``bridge.cert``, written by ``radical-orbit bridge``; then the
original's ``bridge_cert.pem``) > default (``http://127.0.0.1:8000``, no token, system CAs).

The original Orbit's client calls work here too (docs/compat.md): ``BridgeClient(url,
cert)``, ``register_callback(endpoint_id=..., callback=cb)`` with ``cb(endpoint, plugin,
topic, data)``, ``register_topology_callback``, ``wait_for_listener`` and
``wait_for_endpoint([names])``; :mod:`.compat` holds the rules that tell the two apart.

Every failure is an :class:`~radical.orbit.errors.OrbitError`: a non-2xx answer is
rebuilt into the server's own class with ``error_from_payload`` (its message starts
with ``endpoint/plugin/route``), an unreachable bridge is
:class:`~radical.orbit.errors.BridgeUnavailableError` saying how to start one, and a
refused token is :class:`~radical.orbit.errors.AuthenticationError` saying where the
token was looked up. The token itself never appears in a repr, log or message; a
token file other users may read is refused (:class:`~radical.orbit.errors.UsageError`
with the ``chmod 600`` that fixes it), and sending the token over plain HTTP to
another host is a logged warning.
How requests travel, and how their failures read, is :mod:`.transport`'s: one
``httpx.Client``, which honours ``HTTP(S)_PROXY`` and ``NO_PROXY`` by itself.

This module imports nothing server-side (no FastAPI, uvicorn, plugin dependencies).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, cast, overload
from urllib.parse import quote

import httpx

from ..config import (
    BRIDGE_CERT_ENVS,
    BRIDGE_CERT_FILES,
    BRIDGE_TOKEN_ENVS,
    BRIDGE_TOKEN_FILES,
    BRIDGE_URL_ENVS,
    BRIDGE_URL_FILES,
    ENDPOINT_KEY_PREFIX,
    bridge_url_list,
    resolve_bridge_cert,
    resolve_bridge_token,
    resolve_bridge_url,
    setting_source,
)
from ..errors import (
    BridgeUnavailableError,
    EndpointNotFoundError,
    EndpointWaitTimeoutError,
    OrbitError,
    UsageError,
    quoted,
)
from ..models.messages import ENDPOINT_NAME_PATTERN
from .compat import (
    CallbackStyle,
    TopologyCallback,
    TopologyFeed,
    as_original,
    choose_style,
    endpoint_names,
    one_of,
)
from .endpoint import EndpointClient
from .events import RECONNECT, EventCallback, EventListener, Subscription
from .transport import NO_JSON, BridgeHTTP, tls_context
from .waiting import poll_until, seconds_arg

__all__ = ["DEFAULT_TIMEOUT", "BridgeClient", "seconds_arg"]

log = logging.getLogger(__name__)

#: seconds a relayed request may take (sent as ``X-Orbit-Timeout``; the bridge caps it at 3600)
DEFAULT_TIMEOUT = 60.0
#: how long ``register_callback`` waits for the event stream to be subscribed
SUBSCRIBE_TIMEOUT = 15.0
#: ``wait_for_endpoint``'s default: the original Orbit's, long enough for an endpoint
#: that starts inside a batch job
ENDPOINT_WAIT = 1800.0


_METHOD = re.compile(r"[A-Za-z]+")
_ENDPOINT_NAME = re.compile(ENDPOINT_NAME_PATTERN)

class BridgeClient:
    """Client of one Orbit bridge: discovery, relayed requests, notification callbacks.

    :param url: bridge URL (``http(s)://host:port``), or several as a list or a comma-separated
        string (replicas: requests go to the one that answers, see :mod:`.transport`)
    :param cert: CA bundle (or the bridge's self-signed certificate) to verify TLS with;
        second, as in the original Orbit's ``BridgeClient(url, cert)``
    :param token: the bridge's bearer token (keyword only: the original had none, and
        its scripts pass a certificate path second)
    :param timeout: default seconds a relayed request may take
    :param transport: an ``httpx`` transport to use instead of the network (tests)
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if url is not None and not isinstance(url, (str, list, tuple)):
            raise UsageError(f"BridgeClient url must be a string, a list of strings or None, got {type(url).__name__}")
        if token is not None and not isinstance(token, str):
            raise UsageError(f"BridgeClient token must be a string or None, got {type(token).__name__}")
        if cert is not None and not isinstance(cert, (str, os.PathLike)):
            raise UsageError(f"BridgeClient cert must be a file path or None, got {type(cert).__name__}")
        self.timeout = seconds_arg(timeout, "timeout", "BridgeClient")
        if cert is not None:
            cert = os.fspath(cert)
        self.url_source = setting_source(url, BRIDGE_URL_ENVS, BRIDGE_URL_FILES)
        #: every bridge URL, in the order they are tried
        self.urls = bridge_url_list(url if url is not None and not isinstance(url, str) else resolve_bridge_url(url), self.url_source)
        self._token = resolve_bridge_token(token)
        self.token_source = setting_source(token, BRIDGE_TOKEN_ENVS, BRIDGE_TOKEN_FILES) if self._token else None
        if self._token and self._token.startswith(ENDPOINT_KEY_PREFIX):
            raise UsageError(
                f"the bridge token (from {self.token_source}) is an endpoint key, which only registers an endpoint: "
                "use a client token (radical-orbit bridge tokens add NAME makes one)"
            )
        if self._token and not (self._token.isascii() and self._token.isprintable()):
            raise UsageError(
                f"the bridge token (from {self.token_source}) has characters an HTTP header cannot carry: "
                "it must be printable ASCII, as `radical-orbit bridge` makes them"
            )
        self.cert = resolve_bridge_cert(cert)
        self.cert_source = setting_source(cert, BRIDGE_CERT_ENVS, BRIDGE_CERT_FILES) if self.cert else None
        self._http = BridgeHTTP(
            self.urls,
            self.url_source,
            self._token,
            self.token_source,
            verify=tls_context(next((u for u in self.urls if u.startswith("https://")), self.urls[0]), self.cert, self.cert_source),
            timeout=self.timeout,
            transport=transport,
        )
        self._listener: EventListener | None = None
        self._listener_lock = threading.Lock()
        self._topology = TopologyFeed(
            self.endpoints, lambda handler: self.register_callback("*", "*", "*", handler), self.unregister_callback
        )

    @property
    def url(self) -> str:
        """The bridge URL requests go to: the first one, or the one that answered last."""
        return self._http.url

    def __repr__(self) -> str:
        auth = f"token from {self.token_source}" if self._token else "no token"
        state = ", closed" if self._http.closed else ""
        return f"BridgeClient({self.url!r}, {auth}{state})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the event listener and release connections; idempotent."""
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._http.close()

    # -- relayed requests ------------------------------------------------------------
    def relay(
        self,
        method: str,
        endpoint: str,
        plugin: str,
        route: str = "",
        *,
        json: Any = None,
        params: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """``METHOD /{endpoint}/{plugin}/{route}`` through the bridge (see ``EndpointClient.request``).

        ``json`` is sent as :meth:`call` sends its body (``None``: no body).
        """
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise UsageError(f"method must be an HTTP method name such as 'GET' or 'POST', got {method!r}")
        context, path, seconds = self._route(endpoint, plugin, route, timeout)
        hdrs = dict(headers or {})
        hdrs["X-Orbit-Timeout"] = f"{seconds:g}"
        return self._http.send(
            method.upper(), path, context=context, json=NO_JSON if json is None else json, params=params,
            content=content, headers=hdrs, timeout=seconds,
        )

    def call(self, endpoint: str, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
        """POST ``body`` as JSON to a plugin route; returns the decoded JSON answer.

        What :class:`~radical.orbit.client.plugin.PluginClient` calls are made of:
        ``relay("POST", ..., json=body).json()``. Paths and UUIDs in ``body`` become
        strings; a value JSON cannot carry is a :class:`~radical.orbit.errors.UsageError`
        naming it, raised before anything is sent.
        """
        context, path, seconds = self._route(endpoint, plugin, route, timeout)
        resp = self._http.send(
            "POST", path, context=context, json=body, headers={"X-Orbit-Timeout": f"{seconds:g}"}, timeout=seconds
        )
        return resp.json()

    def _route(self, endpoint: str, plugin: str, route: str, timeout: float | None) -> tuple[str, str, float]:
        """``(context, path, seconds)`` of a relayed call: names for messages, quoted path, bridge deadline."""
        for name, value in (("endpoint", endpoint), ("plugin", plugin)):
            if not isinstance(value, str) or not value:
                raise UsageError(f"{name} must be a non-empty string, got {value!r}")
        if not isinstance(route, str):
            raise UsageError(f"route must be a string, got {route!r}")
        route = route.lstrip("/")
        if any(part in (".", "..") for part in route.split("/")):  # the URL would leave the plugin's routes
            raise UsageError(f"route must not have '.' or '..' segments, got {route!r}: name the plugin's route itself")
        context = f"{endpoint}/{plugin}/{route}" if route else f"{endpoint}/{plugin}"
        path = "/" + "/".join(quote(part, safe="") for part in (endpoint, plugin))
        if route:
            path += "/" + quote(route, safe="/")
        seconds = self.timeout if timeout is None else seconds_arg(timeout, "timeout", context)
        return context, path, seconds

    # -- discovery -----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health`` (needs no token): ``{"status": "ok"}`` while the bridge is alive."""
        data: dict[str, Any] = self._http.send("GET", "/health", context="bridge /health").json()
        return data

    def explorer_link(self) -> dict[str, Any]:
        """A one-time sign-in link to the bridge's web Explorer for this client's identity.

        ``{"url", "expires_in"}``: the URL signs one browser in, once, within
        ``expires_in`` seconds; the bridge token itself never reaches the browser.
        """
        data: dict[str, Any] = self._http.send("POST", "/ui/api/signin-link", context="bridge explorer sign-in").json()
        return data

    def endpoints(self) -> list[dict[str, Any]]:
        """Full info of every endpoint the bridge knows (name, host, plugins, liveness)."""
        data = self._http.send("GET", "/endpoints", context="bridge /endpoints").json()
        return list(data.get("endpoints", []))

    def list_endpoints(self) -> list[str]:
        """Names of the live endpoints."""
        return [info["name"] for info in self.endpoints() if info.get("alive", True)]

    def endpoint_info(self, name: str) -> dict[str, Any]:
        """Info of one endpoint; :class:`EndpointNotFoundError` names the connected ones."""
        try:
            return self._endpoint_info(name)
        except EndpointNotFoundError:
            raise self._no_such_endpoint(name) from None

    def _endpoint_info(self, name: str) -> dict[str, Any]:
        if not isinstance(name, str) or not _ENDPOINT_NAME.fullmatch(name):
            raise UsageError(
                f"{quoted(name)} is not an endpoint name: endpoint names are 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (`radical-orbit endpoints` lists the connected ones)"
            )
        data: dict[str, Any] = self._http.send(
            "GET", f"/endpoints/{quote(name, safe='')}", context=f"bridge /endpoints/{name}"
        ).json()
        return data

    def _no_such_endpoint(
        self, name: str | list[str], extra: str = "", cls: type[EndpointNotFoundError] = EndpointNotFoundError
    ) -> EndpointNotFoundError:
        try:
            known = self.list_endpoints()
        except OrbitError:
            known = []
        have = ", ".join(sorted(known)) if known else "none"
        what = f"no endpoint named '{name}' is" if isinstance(name, str) else f"none of {', '.join(map(repr, name))} is"
        return cls(
            f"{what} connected to the bridge at {self.url}{extra} (connected: {have})",
            endpoint=name,
            known=sorted(known),
        )

    @overload
    def wait_for_endpoint(  # type: ignore[overload-overlap]  # a str is an Iterable[str] too
        self, names: str, timeout: float = ..., poll: float | None = ..., on_heartbeat: Callable[[], object] | None = ...,
        heartbeat_interval: float = ..., *, interval: float = ...,
    ) -> dict[str, Any]: ...
    @overload
    def wait_for_endpoint(
        self, names: Iterable[str], timeout: float = ..., poll: float | None = ..., on_heartbeat: Callable[[], object] | None = ...,
        heartbeat_interval: float = ..., *, interval: float = ...,
    ) -> str: ...

    def wait_for_endpoint(
        self,
        names: str | Iterable[str],
        timeout: float = ENDPOINT_WAIT,
        poll: float | None = None,
        on_heartbeat: Callable[[], object] | None = None,
        heartbeat_interval: float = 10.0,
        *,
        interval: float = 0.1,
    ) -> dict[str, Any] | str:
        """Block until an endpoint is connected.

        One name (ours): returns its info. An iterable of names (the original Orbit's
        form): returns the first of them seen connected. Tolerates a bridge that is
        still starting. Polls every ``poll`` seconds if given, else from ``interval``
        up to every few seconds; ``on_heartbeat()`` is called at most every
        ``heartbeat_interval`` seconds while waiting (to print progress).

        :raises EndpointWaitTimeoutError: after ``timeout`` seconds (an
            :class:`EndpointNotFoundError` and a ``TimeoutError``), or the last
            :class:`BridgeUnavailableError` if the bridge never answered
        :raises UsageError: no names, or one that cannot be an endpoint name
        """
        one = isinstance(names, str)
        wanted = [names] if isinstance(names, str) else endpoint_names(names, _ENDPOINT_NAME)
        where = f"wait_for_endpoint({names!r})" if one else "wait_for_endpoint"
        timeout = seconds_arg(timeout, "timeout", where, allow_zero=True)
        interval = seconds_arg(interval if poll is None else poll, "interval" if poll is None else "poll", where)
        beat = seconds_arg(heartbeat_interval, "heartbeat_interval", where)
        if on_heartbeat is not None and not callable(on_heartbeat):
            raise UsageError(f"{where}: on_heartbeat must be callable or None, got {on_heartbeat!r}")
        found = poll_until(
            functools.partial(self._live, wanted, one), timeout, interval,
            fixed=poll is not None, on_heartbeat=on_heartbeat, heartbeat_interval=beat,
        )
        if found is None:
            raise self._no_such_endpoint(wanted[0] if one else wanted, f" after waiting {timeout:g} s", EndpointWaitTimeoutError)
        return cast("dict[str, Any] | str", found)  # mypy joins the probe's union to Collection[str]

    def _live(self, wanted: list[str], one: bool) -> dict[str, Any] | str | None:
        """The info of ``wanted[0]`` (``one``) or the first live name of ``wanted``; None if not yet."""
        if one:
            try:
                info = self._endpoint_info(wanted[0])
            except EndpointNotFoundError:
                return None
            return info if info.get("alive", True) else None
        live = set(self.list_endpoints())
        return next((name for name in wanted if name in live), None)

    def get_endpoint_client(self, endpoint: str | Mapping[str, Any]) -> EndpointClient:
        """The :class:`EndpointClient` for a connected endpoint (name or info dict)."""
        name = endpoint.get("name") if isinstance(endpoint, Mapping) else endpoint
        if not isinstance(name, str) or not name:
            raise UsageError(f"get_endpoint_client needs an endpoint name or info dict, got {endpoint!r}")
        info = self.endpoint_info(name)
        return EndpointClient(self, name, info=info)

    # -- notifications ---------------------------------------------------------------
    def register_callback(
        self,
        endpoint: str | None = None,
        plugin: str | None = None,
        topic: str | None = None,
        callback: Callable[..., object] | None = None,
        *,
        session: str | None = None,
        style: CallbackStyle | None = None,
        endpoint_id: str | None = None,
        plugin_name: str | None = None,
    ) -> str:
        """Call ``callback(event)`` for every matching event from ``GET /events``.

        ``endpoint``, ``plugin`` and ``topic`` are names, ``"*"`` or shell-style
        patterns; ``session`` (a session tag, or a sid) narrows to one session. Topology
        events have plugin null (match with ``"*"``). Callbacks run one at a time on
        the listener thread; an exception in one is logged and ignored. Returns once
        the stream is subscribed, so no later event is missed.

        The original Orbit's form works too: ``register_callback(endpoint_id=None,
        plugin_name=None, topic=None, callback=cb)``, None matching anything, and
        ``cb(endpoint, plugin, topic, data)`` called for notifications. Which way a
        callback is called follows from its signature, or from the call's shape when
        it takes either (``*args``); ``style=`` says it outright (docs/compat.md).

        :returns: an id for :meth:`unregister_callback`
        :raises BridgeUnavailableError / AuthenticationError: the stream could not be opened
        """
        where = "register_callback"
        endpoint = one_of(where, endpoint, endpoint_id, "endpoint", "endpoint_id")
        plugin = one_of(where, plugin, plugin_name, "plugin", "plugin_name")
        original_shape = endpoint_id is not None or plugin_name is not None or None in (endpoint, plugin, topic)
        chosen = choose_style(callback, ("event", "original"), "original" if original_shape else "event", style, where)
        deliver = cast(EventCallback, callback) if chosen == "event" else as_original(cast(Callable[..., object], callback))
        ep, pl, tp = _wild(endpoint, plugin, topic)
        if self._http.closed:
            raise UsageError(f"{where}: this BridgeClient is closed")
        sub = Subscription(ep, pl, tp, deliver, session=session, key=(ep, pl, tp, callback))
        with self._listener_lock:
            if self._listener is None:
                self._listener = EventListener(self._http)
            listener = self._listener
            cid = listener.add(sub)
            try:
                listener.start(SUBSCRIBE_TIMEOUT)
            except OrbitError:
                listener.remove(cid)
                raise
        return cid

    def unregister_callback(
        self,
        cid: str | None = None,
        plugin_name: str | None = None,
        topic: str | None = None,
        callback: Callable[..., object] | None = None,
        *,
        endpoint_id: str | None = None,
    ) -> bool:
        """Forget a callback by the id :meth:`register_callback` returned; returns whether it was registered.

        The original Orbit's form, ``unregister_callback(endpoint_id, plugin_name,
        topic, callback)``, forgets the registration made with those same filters and
        callback (the first argument is then the endpoint filter).
        """
        listener = self._listener
        if callback is None and plugin_name is None and topic is None and endpoint_id is None:
            if not isinstance(cid, str):
                raise UsageError(f"unregister_callback: give the id register_callback returned, or its filters and callback; got {cid!r}")
            return listener.remove(cid) if listener is not None else False
        endpoint = one_of("unregister_callback", cid, endpoint_id, "a first argument", "endpoint_id")
        return listener.remove_key((*_wild(endpoint, plugin_name, topic), callback)) if listener is not None else False

    def register_topology_callback(self, callback: TopologyCallback) -> None:
        """Call ``callback(endpoints)`` on every endpoint connect and disconnect (the original Orbit's).

        ``endpoints`` is ``{name: info}`` of every connected endpoint, each info as in
        :meth:`endpoints` but with ``plugins`` as :meth:`EndpointClient.list_plugins`
        gives them (a dict by name). Returns once the stream is subscribed.
        """
        self._topology.add(callback)

    def unregister_topology_callback(self, callback: TopologyCallback) -> bool:
        """Forget a topology callback; returns whether it was registered."""
        return self._topology.remove(callback)

    def wait_for_listener(self, timeout: float = 30) -> bool:
        """Block until the notification stream is subscribed (the original Orbit's); False on timeout.

        Starts the stream if no callback did, and retries while the bridge cannot be
        reached. A refused token is raised (waiting cannot fix it).
        """
        seconds = seconds_arg(timeout, "timeout", "wait_for_listener", allow_zero=True)
        if self._http.closed:
            raise UsageError("wait_for_listener: this BridgeClient is closed")
        deadline = time.monotonic() + seconds
        attempt = 0
        while True:
            with self._listener_lock:
                if self._listener is None:
                    self._listener = EventListener(self._http)
                listener = self._listener
                try:  # returns at once while it reconnects: then wait below
                    listener.start(max(0.0, min(SUBSCRIBE_TIMEOUT, deadline - time.monotonic())))
                    started = True
                except BridgeUnavailableError as exc:
                    log.debug("wait_for_listener: %s", exc.message)
                    started = False
            if started and listener.wait_subscribed(max(0.0, deadline - time.monotonic())):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, RECONNECT.delay(attempt)))
            attempt += 1

    @property
    def listener(self) -> EventListener | None:
        """The event listener (None until the first ``register_callback``)."""
        return self._listener


def _wild(endpoint: Any, plugin: Any, topic: Any) -> tuple[Any, Any, Any]:
    """None, the original Orbit's wildcard, as ours: ``"*"``."""
    return ("*" if endpoint is None else endpoint, "*" if plugin is None else plugin, "*" if topic is None else topic)
