"""Plugin calls (a JSON POST, a JSON answer) on the standard library's ``http.client``.

Why: a plugin call is one POST of a JSON body to a fixed origin with fixed headers,
and the client's own CPU is a large share of it on a small machine. Measured per
call against a local server: ``httpx.Client.request`` ~1.0 ms (request and response
models, URL merging, cookies, hooks), httpcore alone ~0.5 ms (h11's pure-Python
parser, the pool's bookkeeping), ``http.client`` ~0.2 ms. So plugin calls go out
on ``http.client`` connections in a small pool that keeps httpx's behaviour:
its limits and keep-alive expiry, a check that an idle connection was not closed
by the bridge before it is reused, the same TLS context, connect and read
timeouts, and failures raised as :class:`CallError` subclasses named like httpx's
(``ReadTimeout``, ``ConnectError``, ...), so error messages read the same.

:class:`~radical.orbit.client.bridge.BridgeClient` takes this path only where httpx
would connect directly too: a custom transport (tests) or a proxy configured in the
environment keeps every call on httpx. ``tests/unit/client/test_client_fastcall.py``
runs each case on both paths and requires the same request bytes and exceptions.
"""

from __future__ import annotations

import collections
import http.client
import json
import math
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError

__all__ = ["CALL_ERRORS", "JsonCaller", "encode_json", "proxy_configured"]

# httpx.Client's defaults, so both paths pool alike
_MAX_CONNECTIONS = 100
_MAX_KEEPALIVE = 20
_KEEPALIVE_EXPIRY = 5.0


def _plain(value: Any) -> Any:
    """What JSON cannot hold but a caller naturally passes: paths and UUIDs, as strings."""
    if isinstance(value, (os.PathLike, uuid.UUID)):
        return str(os.fspath(value) if isinstance(value, os.PathLike) else value)
    raise TypeError(type(value).__name__)


def _unencodable(value: Any, where: str) -> tuple[str, str] | None:
    """``(where, what)`` of the first value in ``value`` that JSON cannot carry."""
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"the number {value!r}")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, "a string with a lone surrogate"
        return None
    if isinstance(value, (os.PathLike, uuid.UUID)):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                return f"{where}[{key!r}]", f"a key of type {type(key).__name__}"
            found = _unencodable(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _unencodable(item, f"{where}[{index}]")
            if found:
                return found
        return None
    return where or "the body", f"a value of type {type(value).__name__}"


def encode_json(body: Any, context: str = "") -> bytes:
    """``body`` as compact UTF-8 JSON (what httpx sends for ``json=``), paths and UUIDs as strings.

    :raises UsageError: naming the field that JSON cannot carry (a set, NaN, an object ...)
    """
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_plain).encode("utf-8")
    except (TypeError, ValueError) as exc:
        where, what = _unencodable(body, "") or ("the body", str(exc))
        prefix = f"{context}: " if context else ""
        raise UsageError(
            f"{prefix}{where} is {what}, which cannot be sent as JSON: "
            "pass str, int, finite float, bool, None, list or dict (paths and UUIDs are turned into strings)"
        ) from None


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy, which httpx would honour."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class CallError(Exception):
    """A plugin call that got no complete answer; the message says what failed."""


class CallTimeout(CallError):
    """Nothing (more) arrived in time; the class name says in which phase."""


class ConnectError(CallError):
    pass


class ConnectTimeout(CallTimeout):
    pass


class PoolTimeout(CallTimeout):
    pass


class WriteError(CallError):
    pass


class WriteTimeout(CallTimeout):
    pass


class ReadError(CallError):
    pass


class ReadTimeout(CallTimeout):
    pass


class RemoteProtocolError(CallError):
    pass


#: what :meth:`JsonCaller.post` raises for a request that never got an answer
CALL_ERRORS: tuple[type[Exception], ...] = (CallError,)


_poll = getattr(select, "poll", None)  # None on Windows: select() then


def _dropped(sock: socket.socket) -> bool:
    """True when an idle keep-alive socket has something to read: the peer closed it
    (or sent garbage), so it must not carry a request (as httpcore and urllib3 check)."""
    try:
        if _poll is not None:
            poller = _poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class JsonCaller:
    """POST JSON to ``base_url`` + path on pooled keep-alive connections; thread-safe.

    Built on the standard library's ``http.client``, which costs about a third of
    httpcore's CPU per call (h11's pure-Python parser and the pool's bookkeeping are
    the difference). The pool follows ``httpx.Client``'s defaults: at most 100
    connections in use, 20 kept idle, an idle one dropped after 5 s or when the peer
    has closed it.

    :param base_url: the bridge URL (``http(s)://host:port[/prefix]``)
    :param headers: sent with every call (user agent, authorization)
    :param ssl_context: for ``https://`` URLs; ``None`` for plain HTTP
    """

    def __init__(self, base_url: str, headers: Mapping[str, str], ssl_context: ssl.SSLContext | None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl_context if self._https else None
        if self._https and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self._headers = dict(headers)
        self._headers["Content-Type"] = "application/json"
        self._idle: collections.deque[tuple[http.client.HTTPConnection, float]] = collections.deque()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(_MAX_CONNECTIONS)
        self._closed = False

    def post(
        self, path: str, body: bytes, *, timeout: float, connect_timeout: float, extra: Mapping[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, content)``; raises a :class:`CallError` without an answer."""
        if not self._slots.acquire(timeout=timeout):
            raise PoolTimeout(f"all {_MAX_CONNECTIONS} connections stayed busy for {timeout:g} s")
        try:
            conn = self._checkout() or self._connect(connect_timeout)
            try:
                return self._exchange(conn, path, body, timeout, extra)
            except BaseException:
                conn.close()
                raise
        finally:
            self._slots.release()

    def _exchange(
        self, conn: http.client.HTTPConnection, path: str, body: bytes, timeout: float, extra: Mapping[str, str] | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        sock = conn.sock
        assert sock is not None
        if sock.gettimeout() != timeout:  # settimeout is a system call; most calls share one
            sock.settimeout(timeout)
        headers = self._headers if not extra else {**self._headers, **extra}
        try:
            conn.request("POST", self._prefix + path, body=body, headers=headers)
        except TimeoutError as exc:
            raise WriteTimeout(str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise WriteError(str(exc) or type(exc).__name__) from exc
        try:
            response = conn.getresponse()
            content = response.read()
        except TimeoutError as exc:
            raise ReadTimeout(str(exc)) from exc
        except http.client.RemoteDisconnected as exc:
            raise RemoteProtocolError("Server disconnected without sending a response.") from exc
        except (http.client.HTTPException, ValueError) as exc:
            raise RemoteProtocolError(str(exc) or type(exc).__name__) from exc
        except OSError as exc:
            raise ReadError(str(exc) or type(exc).__name__) from exc
        if response.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return response.status, response.getheaders(), content

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectTimeout(str(exc)) from exc
        except OSError as exc:  # refused, unreachable, name resolution, TLS
            conn.close()
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    def _checkout(self) -> http.client.HTTPConnection | None:
        """The most recently used idle connection that is still good, if any."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, since = self._idle.pop()
            if now - since < _KEEPALIVE_EXPIRY and conn.sock is not None and not _dropped(conn.sock):
                return conn
            conn.close()

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_KEEPALIVE:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections now and those in use when their call ends."""
        with self._lock:
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()
        for conn, _ in idle:
            conn.close()
