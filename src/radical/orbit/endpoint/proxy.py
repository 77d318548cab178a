"""Reaching the bridge through an HTTP proxy: which proxy, and the CONNECT tunnel.

An endpoint on an HPC login node often has no route out except an HTTP proxy named
in the environment. The endpoint picks the proxy the way websockets' own client does
(its "Proxies" guide), so an environment that works for websockets works here:

* a bridge host in ``NO_PROXY`` (``urllib.request.proxy_bypass``): dial directly;
* ``wss://`` bridge: ``wss_proxy``, else ``socks_proxy``, else ``https_proxy``;
* ``ws://`` bridge: ``ws_proxy``, else ``socks_proxy``, else ``https_proxy``, else
  ``http_proxy`` (so ``https_proxy`` wins for ``ws://`` too);
* then ``all_proxy``, as httpx and curl do (websockets ignores it);
* either case of each name (``urllib.request.getproxies``: lower case wins).

The tunnel: a TCP connection to the proxy, ``CONNECT host:port`` (with
``Proxy-Authorization: Basic`` when the proxy URL carries ``user:password``), a 2xx
answer (parsed with h11); the caller then starts TLS (``wss://``) and the WebSocket
handshake over it. Only ``http://`` proxies are spoken to: a SOCKS or ``https://``
proxy is refused up front with a :class:`UsageError` that says how to get around it.

A proxy that cannot be reached or refuses the tunnel raises :class:`ProxyError`
(retrying may help; the endpoint backs off and dials again). Proxy credentials stay
in memory: they appear in no message, log line or repr.
"""

from __future__ import annotations

import asyncio
import base64
import os
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import h11
from pydantic import SecretStr
from websockets.uri import parse_uri

from ..config import shown_url
from ..errors import UsageError

__all__ = ["HttpProxy", "ProxyError", "open_tunnel", "parse_proxy_url", "select_proxy"]

#: getproxies() keys to try, in order (websockets' order, then all_proxy)
_ORDER_SECURE = ("wss", "socks", "https", "all")
_ORDER_PLAIN = ("ws", "socks", "https", "http", "all")
#: how to get around a proxy the endpoint cannot use (appended to messages)
_BYPASS = "set NO_PROXY to the bridge's host or start the endpoint with --no-proxy to dial it directly"


class ProxyError(Exception):
    """The proxy did not open a tunnel to the bridge (retrying may help).

    :param status: the proxy's HTTP answer to CONNECT, when it gave one
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class HttpProxy:
    """An ``http://`` proxy that opens CONNECT tunnels.

    :param source: where it was configured (``HTTPS_PROXY``...), for messages
    :param credentials: ``user:password`` for Basic auth (never shown)
    """

    host: str
    port: int
    source: str = "the proxy settings"
    credentials: SecretStr | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``http://host:port``: safe to show (no credentials)."""
        return f"http://{_hostport(self.host, self.port)}"

    def __str__(self) -> str:
        return f"{self.address} (from {self.source})"

    def connect_request(self, host: str, port: int, user_agent: str | None = None) -> h11.Request:
        """The ``CONNECT host:port`` request for this proxy (with its credentials, if any)."""
        target = _hostport(host, port)
        headers = [("Host", target)]
        if user_agent:
            headers.append(("User-Agent", user_agent))
        if self.credentials is not None:
            token = base64.b64encode(self.credentials.get_secret_value().encode("utf-8")).decode("ascii")
            headers.append(("Proxy-Authorization", f"Basic {token}"))
        return h11.Request(method="CONNECT", target=target, headers=headers)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_proxy_url(value: str, source: str) -> HttpProxy:
    """The proxy in ``value`` (a URL; ``host:port`` means ``http://host:port``, as in httpx).

    :param source: where ``value`` came from (named in errors)
    :raises UsageError: not an ``http://`` proxy URL the endpoint can use
    """
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}"
    shown = shown_url(text)
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed "[" of an IPv6 address
        raise UsageError(f"{source} is not a proxy URL ({shown}): write http://host:port or http://[ipv6]:port") from None
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise UsageError(
            f"{source} names a SOCKS proxy ({shown}); the endpoint speaks to HTTP proxies (CONNECT) only: "
            f"set wss_proxy / ws_proxy to an http:// proxy, or {_BYPASS}"
        )
    if scheme != "http":
        raise UsageError(
            f"{source} names a {scheme}:// proxy ({shown}); the endpoint connects to proxies over plain "
            f"http:// (the tunnel to a wss:// bridge is still TLS end to end): write http://host:port, or {_BYPASS}"
        )
    try:
        host, port = parts.hostname, parts.port or 80
    except ValueError:  # a port that is not a number in 1-65535
        host = None
    if not host:
        raise UsageError(f"{source} is not a proxy URL ({shown}): write http://host:port or http://user:password@host:port")
    credentials = None
    if parts.username is not None or parts.password is not None:
        if parts.password is None:
            raise UsageError(
                f"the proxy URL in {source} ({shown}) has a user name but no password: write http://user:password@host:port"
            )
        credentials = SecretStr(f"{unquote(parts.username or '')}:{unquote(parts.password)}")
    return HttpProxy(host=host, port=port, source=source, credentials=credentials)


def _variable(key: str) -> str:
    """The environment variable ``getproxies()`` took ``key`` from (lower case wins, as there)."""
    lower = f"{key}_proxy"
    if os.environ.get(lower):
        return lower
    if os.environ.get(lower.upper()):
        return lower.upper()
    return "the system proxy settings"


def select_proxy(ws_url: str) -> HttpProxy | None:
    """The proxy to reach ``ws_url`` through, from the environment; None: dial directly.

    :raises UsageError: the selected proxy is not one the endpoint can use
    """
    uri = parse_uri(ws_url)
    if urllib.request.proxy_bypass(f"{uri.host}:{uri.port}"):
        return None
    proxies = urllib.request.getproxies()
    for key in _ORDER_SECURE if uri.secure else _ORDER_PLAIN:
        value = proxies.get(key)
        if value:
            return parse_proxy_url(value, _variable(key))
    return None


class _Tunnel(asyncio.Protocol):
    """The CONNECT exchange; the caller swaps in its own protocol once it succeeded."""

    def __init__(self, proxy: HttpProxy, host: str, port: int, user_agent: str | None) -> None:
        self.proxy = proxy
        self.target = _hostport(host, port)
        self.request = proxy.connect_request(host, port, user_agent)
        self.http = h11.Connection(h11.CLIENT)
        #: the proxy's final answer, or the ProxyError saying why there is none
        self.answer: asyncio.Future[h11.Response] = asyncio.get_running_loop().create_future()
        #: bytes that came after a 2xx answer, before the caller took over
        self.extra = b""
        #: the first bytes of the answer, to show when it is not HTTP
        self.start = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        data = self.http.send(self.request) or b""
        data += self.http.send(h11.EndOfMessage()) or b""
        transport.write(data)  # type: ignore[attr-defined]  # a stream transport

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            self.extra += data
            return
        if len(self.start) < 60:
            self.start += data[: 60 - len(self.start)]
        self.http.receive_data(data)
        self._parse()

    def eof_received(self) -> bool | None:
        # a whole answer is parsed as it comes: at EOF there is none
        if self.start:
            self._fail(f"did not answer with HTTP (it sent {bytes(self.start)!r} and closed the connection)")
        self._fail("closed the connection before answering")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed the connection before answering")

    def _fail(self, what: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyError(f"the proxy {self.proxy} {what} (CONNECT {self.target})"))

    def _parse(self) -> None:
        try:
            while not self.answer.done():
                event = self.http.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.Response):
                    self.answer.set_result(event)
                    if 200 <= event.status_code < 300:  # the tunnel is open: h11 hands back what follows
                        self.extra = bytes(self.http.trailing_data[0])
                # else an informational (1xx) answer: the final one follows
        except h11.RemoteProtocolError as exc:
            self._fail(f"did not answer with HTTP ({exc})")


def _refusal(proxy: HttpProxy, target: str, answer: h11.Response) -> ProxyError:
    status = answer.status_code
    said = f"{status} {answer.reason.decode('latin-1', 'replace')}".strip()
    if status == 407:
        wanted = (
            f"it did not accept the credentials in {proxy.source}"
            if proxy.credentials is not None
            else f"put them in {proxy.source}: http://user:password@{_hostport(proxy.host, proxy.port)}"
        )
        message = f"the proxy {proxy} wants credentials ({said}): {wanted}"
    elif status in (502, 503, 504):
        message = f"the proxy {proxy} could not reach the bridge at {target} ({said})"
    elif status == 403:
        message = (f"the proxy {proxy} does not allow a tunnel to {target} ({said}): ask its administrator "
                   f"to allow CONNECT to port {target.rpartition(':')[2]}, or {_BYPASS}")
    else:
        message = f"the proxy {proxy} refused the tunnel to {target} ({said})"
    return ProxyError(message, status=status)


async def open_tunnel(proxy: HttpProxy, host: str, port: int, *, user_agent: str | None = None) -> asyncio.Transport:
    """A transport to the proxy that now carries bytes to and from ``host:port``.

    Install the caller's protocol with ``transport.set_protocol`` (and start TLS over
    it for ``wss://``). Apply a timeout around this call: a proxy that never answers
    is waited for.

    :raises ProxyError: the proxy is unreachable, refused the tunnel, or did not answer HTTP
    """
    loop = asyncio.get_running_loop()
    try:
        transport, tunnel = await loop.create_connection(lambda: _Tunnel(proxy, host, port, user_agent), proxy.host, proxy.port)
    except OSError as exc:
        raise ProxyError(f"cannot reach the proxy {proxy}: {exc.strerror or exc}; check {proxy.source}, or {_BYPASS}") from None
    try:
        answer = await tunnel.answer
        if not 200 <= answer.status_code < 300:
            raise _refusal(proxy, tunnel.target, answer)
        if tunnel.extra:  # the bridge speaks only after our handshake: these bytes are the proxy's
            raise ProxyError(f"the proxy {proxy} sent {len(tunnel.extra)} unexpected bytes after opening the tunnel to {tunnel.target}")
        if transport.is_closing():
            raise ProxyError(f"the proxy {proxy} closed the tunnel to {tunnel.target} as soon as it opened it")
    except BaseException:
        transport.abort()
        raise
    return transport
