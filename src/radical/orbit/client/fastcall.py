"""Plugin calls (a JSON POST, a JSON answer) straight on httpcore, past ``httpx.Client``.

Why: on a small machine ``httpx.Client.request`` spends about 1 ms of CPU per call
building its request and response models, merging URLs, extracting cookies and
running hooks. That is more than the bridge and the endpoint together spend relaying
the call. A plugin call needs none of it: one POST of a JSON body to a fixed origin
with fixed headers. httpcore is the connection layer httpx itself runs on (the same
pool, keep-alive checks, TLS and timeouts), so calling it directly for this one shape
keeps the behaviour and halves the client's cost (``bench/globus.py``).

:class:`~radical.orbit.client.bridge.BridgeClient` takes this path only where httpx
would connect directly too: a custom transport (tests) or a proxy configured in the
environment keeps every call on httpx.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

import httpcore

from ..errors import UsageError

__all__ = ["CALL_ERRORS", "JsonCaller", "encode_json", "proxy_configured"]

#: what httpcore raises for a request that never got an answer (httpx wraps the same
#: ones into ``httpx.TransportError``)
CALL_ERRORS: tuple[type[Exception], ...] = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    httpcore.ProxyError,
)

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


class JsonCaller:
    """POST JSON to ``base_url`` + path on a pooled httpcore connection; thread-safe.

    :param base_url: the bridge URL (``http(s)://host:port[/prefix]``)
    :param headers: sent with every call (user agent, authorization)
    :param ssl_context: for ``https://`` URLs; ``None`` for plain HTTP
    """

    def __init__(self, base_url: str, headers: Mapping[str, str], ssl_context: ssl.SSLContext | None) -> None:
        self._base = base_url.rstrip("/")
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._headers.append((b"Content-Type", b"application/json"))
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=_MAX_CONNECTIONS,
            max_keepalive_connections=_MAX_KEEPALIVE,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
        )

    def post(
        self, path: str, body: bytes, *, timeout: float, connect_timeout: float, extra: Mapping[str, str] | None = None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``(status, headers, content)``; raises one of :data:`CALL_ERRORS` without an answer."""
        headers = self._headers + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
        response = self._pool.request(
            "POST",
            self._base + path,
            headers=headers,
            content=body,
            extensions={"timeout": {"connect": connect_timeout, "read": timeout, "write": timeout, "pool": timeout}},
        )
        return response.status, response.headers, response.content

    def close(self) -> None:
        self._pool.close()
