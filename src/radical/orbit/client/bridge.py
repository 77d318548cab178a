"""``BridgeClient``: the application's handle on one bridge (sync, httpx).

    from radical.orbit import BridgeClient
    with BridgeClient() as bc:                  # URL, token and CA cert found by themselves
        ec = bc.get_endpoint_client(bc.list_endpoints()[0])
        bc.register_callback(ec.name, "*", "*", print)

Each of ``url``, ``token`` and ``cert`` resolves as argument > environment variable
(``RADICAL_ORBIT_BRIDGE_URL`` / ``_TOKEN`` / ``_CERT``) > file under
``~/.radical/orbit/`` (``bridge.url``, ``bridge.token``, ``bridge.cert``, written by
``radical-orbit bridge``) > default (``http://127.0.0.1:8000``, no token, system CAs).

Every failure is an :class:`~radical.orbit.errors.OrbitError`: a non-2xx answer is
rebuilt into the server's own class with ``error_from_payload`` (its message starts
with ``endpoint/plugin/route``), an unreachable bridge is
:class:`~radical.orbit.errors.BridgeUnavailableError` saying how to start one, and a
refused token is :class:`~radical.orbit.errors.AuthenticationError` saying where the
token was looked up. The token itself never appears in a repr, log or message.
How requests travel, and how their failures read, is :mod:`.transport`'s: one
``httpx.Client``, which honours ``HTTP(S)_PROXY`` and ``NO_PROXY`` by itself.

This module imports nothing server-side (no FastAPI, uvicorn, plugin dependencies).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import quote

import httpx

from ..config import (
    BRIDGE_CERT_FILE,
    BRIDGE_TOKEN_FILE,
    BRIDGE_URL_FILE,
    ENV_BRIDGE_CERT,
    ENV_BRIDGE_TOKEN,
    ENV_BRIDGE_URL,
    MAX_SECONDS,
    check_bridge_url,
    orbit_home,
    resolve_bridge_cert,
    resolve_bridge_token,
    resolve_bridge_url,
)
from ..errors import (
    BridgeUnavailableError,
    EndpointNotFoundError,
    OrbitError,
    UsageError,
    quoted,
)
from ..models.messages import ENDPOINT_NAME_PATTERN
from .endpoint import EndpointClient
from .events import EventCallback, EventListener, Subscription
from .transport import NO_JSON, BridgeHTTP, tls_context

__all__ = ["DEFAULT_TIMEOUT", "BridgeClient"]

#: seconds a relayed request may take (sent as ``X-Orbit-Timeout``; the bridge caps it at 3600)
DEFAULT_TIMEOUT = 60.0
#: how long ``register_callback`` waits for the event stream to be subscribed
SUBSCRIBE_TIMEOUT = 15.0


_METHOD = re.compile(r"[A-Za-z]+")
_ENDPOINT_NAME = re.compile(ENDPOINT_NAME_PATTERN)
_MAX_TEXT = f"{MAX_SECONDS:.0e}".replace("e+0", "e")  # "1e9"


def seconds_arg(value: Any, name: str, context: str = "", *, allow_zero: bool = False) -> float:
    """``value`` as a finite number of seconds, or a :class:`UsageError` naming ``name``.

    Shared by every SDK call that takes a timeout or an interval, so ``None``, a
    string, NaN, infinity or a negative number is one clear error, not a
    ``TypeError``/``OverflowError`` from deep inside, a busy loop or an endless wait.
    """
    prefix = f"{context}: " if context else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{prefix}{name} must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        raise UsageError(f"{prefix}{name} must be at most {_MAX_TEXT} seconds, got an integer of {len(str(value))} digits") from None
    if not math.isfinite(seconds):
        raise UsageError(f"{prefix}{name} must be a finite number of seconds, got {value!r}")
    if seconds > MAX_SECONDS:
        raise UsageError(f"{prefix}{name} must be at most {_MAX_TEXT} seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise UsageError(f"{prefix}{name} must be positive, got {value!r}")
    return seconds


def _source(arg: str | None, env: str, filename: str) -> str:
    """Where a setting came from, for error messages (never the value)."""
    if arg:
        return "the argument"
    if os.environ.get(env):
        return f"${env}"
    path = orbit_home() / filename
    if path.is_file():
        return str(path)
    return "the default"


class BridgeClient:
    """Client of one Orbit bridge: discovery, relayed requests, notification callbacks.

    :param url: bridge URL (``http(s)://host:port``)
    :param token: the bridge's bearer token
    :param cert: CA bundle (or the bridge's self-signed certificate) to verify TLS with
    :param timeout: default seconds a relayed request may take
    :param transport: an ``httpx`` transport to use instead of the network (tests)
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        cert: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        for name, value in (("url", url), ("token", token)):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"BridgeClient {name} must be a string or None, got {type(value).__name__}")
        if cert is not None and not isinstance(cert, (str, os.PathLike)):
            raise UsageError(f"BridgeClient cert must be a file path or None, got {type(cert).__name__}")
        self.timeout = seconds_arg(timeout, "timeout", "BridgeClient")
        if cert is not None:
            cert = os.fspath(cert)
        self.url = resolve_bridge_url(url)
        self.url_source = _source(url, ENV_BRIDGE_URL, BRIDGE_URL_FILE)
        check_bridge_url(self.url, self.url_source)
        self._token = resolve_bridge_token(token)
        self.token_source = _source(token, ENV_BRIDGE_TOKEN, BRIDGE_TOKEN_FILE) if self._token else None
        if self._token and not (self._token.isascii() and self._token.isprintable()):
            raise UsageError(
                f"the bridge token (from {self.token_source}) has characters an HTTP header cannot carry: "
                "it must be printable ASCII, as `radical-orbit bridge` makes them"
            )
        self.cert = resolve_bridge_cert(cert)
        self.cert_source = _source(cert, ENV_BRIDGE_CERT, BRIDGE_CERT_FILE) if self.cert else None
        self._http = BridgeHTTP(
            self.url,
            self.url_source,
            self._token,
            self.token_source,
            verify=tls_context(self.url, self.cert, self.cert_source),
            timeout=self.timeout,
            transport=transport,
        )
        self._listener: EventListener | None = None
        self._listener_lock = threading.Lock()

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
        context = f"{endpoint}/{plugin}/{route}" if route else f"{endpoint}/{plugin}"
        path = "/" + "/".join(quote(part, safe="") for part in (endpoint, plugin))
        if route:
            path += "/" + quote(route, safe="/")
        seconds = self.timeout if timeout is None else seconds_arg(timeout, "timeout", context)
        return context, path, seconds

    # -- discovery -----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health`` (needs no token): status, version, number of endpoints."""
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

    def _no_such_endpoint(self, name: str, extra: str = "") -> EndpointNotFoundError:
        try:
            known = self.list_endpoints()
        except OrbitError:
            known = []
        have = ", ".join(sorted(known)) if known else "none"
        return EndpointNotFoundError(
            f"no endpoint named '{name}' is connected to the bridge at {self.url}{extra} (connected: {have})",
            endpoint=name,
            known=sorted(known),
        )

    def wait_for_endpoint(self, name: str, timeout: float = 30.0, *, interval: float = 0.1) -> dict[str, Any]:
        """Block until ``name`` is connected; returns its info.

        Tolerates a bridge that is still starting. Raises
        :class:`EndpointNotFoundError` after ``timeout`` seconds (or the last
        :class:`BridgeUnavailableError` if the bridge never answered).
        """
        timeout = seconds_arg(timeout, "timeout", f"wait_for_endpoint({name!r})", allow_zero=True)
        interval = seconds_arg(interval, "interval", f"wait_for_endpoint({name!r})")
        deadline = time.monotonic() + timeout
        last: OrbitError | None = None
        while True:
            try:
                info = self._endpoint_info(name)
                if info.get("alive", True):
                    return info
                last = None
            except EndpointNotFoundError:
                last = None
            except BridgeUnavailableError as exc:
                last = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        if last is not None:
            raise last
        raise self._no_such_endpoint(name, f" after waiting {timeout:g} s")

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
        endpoint: str,
        plugin: str,
        topic: str,
        callback: EventCallback,
        *,
        session: str | None = None,
    ) -> str:
        """Call ``callback(event)`` for every matching event from ``GET /events``.

        ``endpoint``, ``plugin`` and ``topic`` are names, ``"*"`` or shell-style
        patterns; ``session`` (a session tag, or a sid) narrows to one session. Topology
        events have plugin null (match with ``"*"``). Callbacks run one at a time on
        the listener thread; an exception in one is logged and ignored. Returns once
        the stream is subscribed, so no later event is missed.

        :returns: an id for :meth:`unregister_callback`
        :raises BridgeUnavailableError / AuthenticationError: the stream could not be opened
        """
        if not callable(callback):
            raise UsageError(f"callback must be callable, got {callback!r}")
        if self._http.closed:
            raise UsageError("register_callback: this BridgeClient is closed")
        sub = Subscription(endpoint, plugin, topic, callback, session=session)
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

    def unregister_callback(self, cid: str) -> bool:
        """Forget a callback; returns whether it was registered."""
        listener = self._listener
        return listener.remove(cid) if listener is not None else False

    @property
    def listener(self) -> EventListener | None:
        """The event listener (None until the first ``register_callback``)."""
        return self._listener
