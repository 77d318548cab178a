"""The client SDK's one seam to HTTP: every request a :class:`BridgeClient` makes passes here.

Why one seam: the SDK talks to one bridge (or, given several URLs, to whichever
replica answers: :meth:`BridgeHTTP._each_url` moves on), so the headers, TLS, timeouts and pool
limits are set once (:class:`BridgeHTTP`), a call's body is turned into JSON once
(:func:`encode_json`, which names the field JSON cannot carry), and a failed
exchange becomes an Orbit error once: :meth:`BridgeHTTP.failures` for a request
that got no answer, :meth:`BridgeHTTP.answer_error` for a non-2xx answer. Plain
requests and the event stream (:mod:`.events`) both go through them, so each error
path has one mapping and one message.

It is plain public httpx: one thread-safe ``httpx.Client`` per ``BridgeClient``,
which also honours ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the environment by itself.
It imports nothing server-side.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json as jsonlib
import logging
import math
import os
import re
import ssl
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx

from ..__about__ import __version__
from ..config import (
    BRIDGE_TOKEN_FILE,
    BRIDGE_URL_FILE,
    ENV_BRIDGE_TOKEN,
    ENV_BRIDGE_URL,
    orbit_home,
)
from ..errors import (
    AuthenticationError,
    BridgeUnavailableError,
    OrbitError,
    UsageError,
    error_from_payload,
    quoted,
)
from ..text import find_lone_surrogate, lone_surrogate

__all__ = [
    "CLIENT_MARGIN",
    "CONNECT_TIMEOUT",
    "IDEMPOTENT",
    "LIMITS",
    "NO_JSON",
    "BridgeHTTP",
    "encode_json",
    "exposes_token",
    "may_move_on",
    "tls_context",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: extra seconds the client waits beyond the bridge's own deadline, so the bridge's 504 wins
CLIENT_MARGIN = 5.0
#: the longest wait for a TCP (and TLS) connection to the bridge
CONNECT_TIMEOUT = 10.0
#: httpx's own defaults, named here because plugin calls from many threads share one pool
LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
#: what HTTP/1.1 allows in a header name (a token) and value (visible ASCII, space, tab)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_HEADER_BYTES = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")  # bytes may carry obs-text, as h11 allows
#: ``json=`` not given: ``None`` is a JSON value for :meth:`BridgeClient.call`, "no body" for ``relay``
NO_JSON: Final[Any] = object()


# -- JSON bodies -------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """What JSON cannot hold but a caller naturally passes: paths and UUIDs, as strings."""
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(type(value).__name__)


def _unencodable(value: Any, where: str) -> tuple[str, str] | None:
    """``(where, what)`` of the first value in ``value`` that JSON cannot carry."""
    if value is None or isinstance(value, (bool, os.PathLike, uuid.UUID)):
        return None
    if isinstance(value, int):  # beyond Python's int-to-text limit (4300 digits by default), json.dumps fails
        limit = sys.get_int_max_str_digits()
        too_long = limit and int(value.bit_length() * _LOG10_2) + 1 > limit
        return (where or "the body", f"an integer of more than {limit} digits") if too_long else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"the number {value!r}")
    if isinstance(value, str):
        found = lone_surrogate(value)
        return (where, f"a string with {found}") if found else None
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                return f"{where}[{key!r}]", f"a key of type {type(key).__name__}"
            if isinstance(key, str) and lone_surrogate(key):
                return f"{where}[{key!r}]", f"a key with {lone_surrogate(key)}"
            found_in = _unencodable(item, f"{where}.{key}" if where else str(key))
            if found_in:
                return found_in
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found_in = _unencodable(item, f"{where}[{index}]")
            if found_in:
                return found_in
        return None
    return where or "the body", f"a value of type {type(value).__name__}"


#: decimal digits per bit, to size an integer without writing it out
_LOG10_2 = math.log10(2)


def encode_json(body: Any, context: str = "") -> bytes:
    """``body`` as compact UTF-8 JSON (the bytes httpx sends for ``json=``), paths and UUIDs as strings.

    :raises UsageError: naming the field that JSON cannot carry (a set, NaN, a lone
        surrogate, an object ...), before anything is sent
    """
    try:
        text = jsonlib.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_plain)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        where, what = _unencodable(body, "") or ("the body", f"a value JSON cannot carry ({type(exc).__name__})")
        prefix = f"{context}: " if context else ""
        raise UsageError(
            f"{prefix}{where} is {what}, which cannot be sent as JSON: "
            "pass str, int, finite float, bool, None, list or dict (paths and UUIDs are turned into strings)"
        ) from None


def check_request(headers: Mapping[str, str | bytes] | None, params: Any, context: str) -> None:
    """A :class:`UsageError` naming the header or parameter that cannot go out on HTTP.

    Without it a caller's typo surfaced as a ``UnicodeEncodeError``/``TypeError`` from
    inside httpx, or as "cannot reach the bridge" when h11 refused a header.
    """
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UsageError(f"{context}: header name {quoted(name)} is not an HTTP token (letters, digits, '-' ...)")
        if isinstance(value, bytes) and _HEADER_BYTES.fullmatch(value):
            continue
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise UsageError(
                f"{context}: header {name} is {quoted(value)}; a header value must be a string of "
                "printable ASCII (encode other text, e.g. as percent-escapes or base64)"
            )
    found = find_lone_surrogate(params) if params is not None else None
    if found:
        raise UsageError(f"{context}: params hold a string with {found}, which a URL cannot carry")


# -- TLS -----------------------------------------------------------------------------
def tls_context(url: str, cert: str | None, cert_source: str | None) -> ssl.SSLContext | bool:
    """What ``httpx.Client(verify=...)`` gets: httpx's default (``True``), or a context trusting ``cert``.

    Loaded here, at construction, so a missing or broken file is a :class:`UsageError`
    naming it and where it came from, not a TLS failure at the first request.
    """
    if not url.startswith("https://") or not cert:
        return True
    if not Path(cert).is_file():
        raise UsageError(f"bridge CA certificate {cert!r} (from {cert_source}) is not a readable file")
    try:
        return ssl.create_default_context(cafile=cert)
    except ssl.SSLError as exc:
        raise UsageError(f"bridge CA certificate {cert!r} (from {cert_source}) cannot be loaded: {exc.reason or exc}") from None


def exposes_token(url: str) -> bool:
    """True when a token sent to ``url`` crosses a network in clear text: plain
    ``http://`` to anything but this machine's loopback."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return True


# -- transport failures ----------------------------------------------------------------
def _timed_out(exc: Exception) -> str:
    return f"no answer in time ({type(exc).__name__})"


def _as_said(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


#: the reason a failed exchange gives after "cannot reach the Orbit bridge at URL: ",
#: looked up along the exception's MRO, so the most specific entry wins. Every one is a
#: BridgeUnavailableError: a read timeout too, since the client waits CLIENT_MARGIN past
#: the bridge's own deadline, and silence beyond it means the bridge itself is stuck
#: (an endpoint that is too slow comes back as the bridge's GatewayTimeoutError).
_REASONS: Final[dict[type[Exception], Callable[[Exception], str]]] = {
    httpx.ConnectTimeout: _as_said,  # no connection at all: like a refused one
    httpx.TimeoutException: _timed_out,  # read, write, pool: sent (or queued) and nothing came back
    httpx.RequestError: _as_said,  # refused, reset, TLS, proxy, protocol, an undecodable body
}


#: methods a request may be repeated with on another bridge although it may have reached a dead one
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: failures that prove the request never reached the bridge (no connection, or the proxy
#: refused the tunnel): any request may go to the next bridge after them
NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)


def may_move_on(method: str, exc: httpx.RequestError) -> bool:
    """Whether a request that failed with ``exc`` may be sent to the next bridge URL.

    Always when nothing was sent; for a request that may have reached the bridge
    (reset, no answer in time) only when repeating it is harmless. A full local pool
    (``PoolTimeout``) or an answer that cannot be decoded is no fault of the bridge.
    """
    if isinstance(exc, NOT_SENT):
        return True
    if isinstance(exc, httpx.PoolTimeout) or not isinstance(exc, httpx.TransportError):
        return False
    return method.upper() in IDEMPOTENT


def _reason(exc: Exception) -> str | None:
    for cls in type(exc).__mro__:
        reason = _REASONS.get(cls)
        if reason is not None:
            return reason(exc)
    return None


class BridgeHTTP:
    """The HTTP side of one :class:`BridgeClient`: one ``httpx.Client``, its settings and its errors.

    Several URLs name replicas of one bridge (or a bridge and its stand-by): a request
    goes to the one that last worked and moves on to the next in order when the
    exchange proves nothing reached the bridge (refused, no connection in time, the
    proxy refused the tunnel). A request that may have reached a dead bridge moves on
    only when repeating it is harmless (GET, HEAD, OPTIONS); any other is raised as
    :class:`BridgeUnavailableError`, as with one URL, for the caller to decide (a
    submission carries its ``submission_id`` for that). Answers, errors included, come
    from a live bridge and are never retried elsewhere.

    :param url: the bridge URL, or several (already checked); ``url_source`` says where they came from
    :param token: bearer token (kept here, in memory only); ``token_source`` likewise
    :param verify: from :func:`tls_context`
    :param timeout: seconds a request without its own timeout may take (plus CLIENT_MARGIN)
    :param transport: an ``httpx`` transport to use instead of the network (tests)
    """

    def __init__(
        self,
        url: str | Sequence[str],
        url_source: str,
        token: str | None,
        token_source: str | None,
        *,
        verify: ssl.SSLContext | bool,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise UsageError("BridgeHTTP needs at least one bridge URL")
        self.url_source = url_source
        self.token_source = token_source
        self._has_token = bool(token)
        #: index in ``urls`` of the bridge requests go to first (the last one that worked)
        self._current = 0
        headers = {"User-Agent": f"radical.orbit/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
            for exposed in filter(exposes_token, self.urls):
                log.warning(
                    "the bridge token goes to %s over plain HTTP: anyone on the network path can read and reuse it; "
                    "serve the bridge over TLS (radical-orbit bridge --cert/--key) and use an https:// URL",
                    exposed,
                )
        self.closed = False
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout + CLIENT_MARGIN, connect=CONNECT_TIMEOUT),
            verify=verify,
            limits=LIMITS,
            transport=transport,
            follow_redirects=False,
        )

    @property
    def url(self) -> str:
        """The bridge URL requests go to first: the one that answered last."""
        return self.urls[self._current]

    def __repr__(self) -> str:
        return f"BridgeHTTP({self.url!r}{', closed' if self.closed else ''})"

    def close(self) -> None:
        """Release the connections; later requests raise :class:`UsageError`. Idempotent."""
        self.closed = True
        self._client.close()

    @staticmethod
    def timeout(seconds: float) -> httpx.Timeout:
        """The client's timeouts for a request the bridge may work on for ``seconds``."""
        return httpx.Timeout(seconds + CLIENT_MARGIN, connect=min(seconds, CONNECT_TIMEOUT))

    # -- requests --------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        context: str,
        json: Any = NO_JSON,
        params: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request to the bridge; returns the 2xx answer, raises an :class:`OrbitError` otherwise.

        :param path: the (already quoted) path under the bridge URL
        :param context: what the request is for, to start every error message
        :param json: a body to send as JSON (:func:`encode_json`), or ``NO_JSON``
        :param timeout: seconds the bridge may take (else the client's default)
        """
        if self.closed:
            raise UsageError(f"{context}: this BridgeClient is closed")
        check_request(headers, params, context)
        if json is not NO_JSON:
            if content is not None:
                raise UsageError(f"{context}: pass json= or content=, not both")
            content = encode_json(json, context)
            hdrs = httpx.Headers(headers)
            hdrs.setdefault("Content-Type", "application/json")
            headers = hdrs
        resp = self._each_url(
            method,
            context,
            lambda url: self._client.request(
                method,
                url + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self.timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            ),
        )
        if resp.status_code >= 300:
            raise self.answer_error(resp, context)
        return resp

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, context: str, headers: Mapping[str, str], timeout: httpx.Timeout
    ) -> Iterator[httpx.Response]:
        """A streamed 2xx answer (the event stream); failures while it is read map like :meth:`send`'s.

        Opening it moves on to the next URL like :meth:`send` does; once it streams, a
        failure ends it (the listener opens it again, resuming with ``Last-Event-ID``).
        """
        if self.closed:
            raise UsageError(f"{context}: this BridgeClient is closed")
        with contextlib.ExitStack() as opened:
            resp = self._each_url(
                method,
                context,
                lambda url: opened.enter_context(self._client.stream(method, url + path, headers=headers, timeout=timeout)),
            )
            with self.failures(context):
                if resp.status_code >= 300:
                    resp.read()
                    raise self.answer_error(resp, context)
                yield resp

    # -- several bridges ---------------------------------------------------------------
    def _each_url(self, method: str, context: str, exchange: Callable[[str], T]) -> T:
        """``exchange(url)`` on the current URL, then on the next ones while :func:`may_move_on` says so.

        The URL that answers becomes the current one. When none does, the error names
        every URL tried and why (for one URL: exactly the message of a lone bridge).
        """
        order = [self.urls[(self._current + step) % len(self.urls)] for step in range(len(self.urls))]
        failed: list[tuple[str, httpx.RequestError]] = []
        for url in order:
            try:
                result = exchange(url)
            except httpx.RequestError as exc:
                failed.append((url, exc))
                if len(failed) < len(order) and may_move_on(method, exc):
                    continue
                raise self._not_reached(failed, context, method) from exc
            if url != self.url:
                tried = "; ".join(f"{u}: {_reason(e) or _as_said(e)}" for u, e in failed)
                log.warning("%s: the Orbit bridge at %s answers (%s did not)", context or "bridge", url, tried or "the previous one")
                self._current = self.urls.index(url)
            return result
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _not_reached(self, failed: list[tuple[str, httpx.RequestError]], context: str, method: str) -> BridgeUnavailableError:
        """The error for a request no bridge answered: the lone bridge's message, or every URL's reason."""
        url, exc = failed[-1]
        reason = _reason(exc) or _as_said(exc)
        if len(self.urls) == 1:
            return self.unavailable(reason, context)
        if len(failed) == 1 and not may_move_on(method, exc):
            others = ", ".join(u for u in self.urls if u != url)
            reason += f" (not sent to {others}: the request may have reached {url}, and {method.upper()} is not safe to repeat)"
            return self.unavailable(reason, context, url=url)
        tried = "; ".join(f"{u}: {_reason(e) or _as_said(e)}" for u, e in failed)
        return self.unavailable(tried, context, url=", ".join(u for u, _ in failed), several=True)

    # -- errors ------------------------------------------------------------------------
    @contextlib.contextmanager
    def failures(self, context: str = "") -> Iterator[None]:
        """Turn an exchange that got no (readable) answer into :class:`BridgeUnavailableError`.

        The one place where httpx's transport exceptions become the SDK's; the
        original stays attached as ``__cause__``.
        """
        try:
            yield
        except httpx.RequestError as exc:
            raise self.unavailable(_reason(exc) or _as_said(exc), context) from exc

    def unavailable(self, reason: str, context: str = "", *, url: str | None = None, several: bool = False) -> BridgeUnavailableError:
        """"cannot reach the bridge at URL: reason", with how to start one (never the token).

        ``several``: ``url`` lists every bridge tried and ``reason`` says why each failed.
        """
        prefix = f"{context}: " if context else ""
        where = f"any of the Orbit bridges at {url} (URLs" if several else f"the Orbit bridge at {url or self.url} (URL"
        details: dict[str, Any] = {"url": url or self.url}
        if len(self.urls) > 1:
            details["urls"] = list(self.urls)
        return BridgeUnavailableError(
            f"{prefix}cannot reach {where} from {self.url_source}): {reason}. "
            f"Start one with `radical-orbit bridge`, or point the client at a running one "
            f"(url=..., ${ENV_BRIDGE_URL} or {orbit_home() / BRIDGE_URL_FILE}).",
            **details,
        )

    def answer_error(self, resp: httpx.Response, context: str) -> OrbitError:
        """The exception for a non-2xx answer: the server's own class, or where the token was looked up."""
        try:
            payload: Any = resp.json()
        except ValueError:
            text = resp.text.strip()
            payload = {"message": f"HTTP {resp.status_code}: {text[:300]}"} if text else None
        code = payload.get("code") if isinstance(payload, dict) else None
        if resp.status_code == 401 and code in (None, "unauthorized"):
            return self._auth_error(payload, context)
        return error_from_payload(resp.status_code, payload, context=context)

    def _auth_error(self, payload: Any, context: str) -> AuthenticationError:
        token_file = orbit_home() / BRIDGE_TOKEN_FILE
        where = f"the token argument, ${ENV_BRIDGE_TOKEN}, then {token_file}"
        if self._has_token:
            what = f"the bridge at {self.url} refused the token (taken from {self.token_source})"
        else:
            what = f"the bridge at {self.url} requires a token and none was found"
        prefix = f"{context}: " if context else ""
        exc = AuthenticationError(
            f"{prefix}{what}; the token is looked up in {where} "
            "(`radical-orbit bridge` writes the last one), and must match the bridge's.",
            url=self.url,
        )
        exc.http_status = 401
        if isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
            exc.request_id = payload["request_id"]
        return exc
