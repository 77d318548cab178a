"""endpoint/proxy.py: which proxy the environment selects, the CONNECT exchange, and a
WebSocket (ws:// and wss://) through a real relaying proxy on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from click.testing import CliRunner
from endpoint_fakes import KEY, FakeBridge, FakeProxy
from websockets.asyncio.server import ServerConnection, serve

from radical.orbit.endpoint.agent import EndpointAgent
from radical.orbit.endpoint.link import open_link
from radical.orbit.endpoint.proxy import (
    HttpProxy,
    ProxyError,
    open_tunnel,
    parse_proxy_url,
    select_proxy,
)
from radical.orbit.errors import UsageError
from radical.orbit.models.messages import decode_body

WSS = "wss://bridge.example.org:8443/ws/endpoint"
WS = "ws://bridge.example.org:8000/ws/endpoint"


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    def _run(coro: Awaitable[Any]) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, 20)

        if request.param == "uvloop":
            return uvloop.run(bounded())
        return asyncio.run(bounded())

    return _run


def proxy_at(proxy: FakeProxy, credentials: str | None = None) -> HttpProxy:
    value = f"http://{credentials}@127.0.0.1:{proxy.port}" if credentials else proxy.url
    return parse_proxy_url(value, "HTTPS_PROXY")


class TestSelection:
    """The order websockets' client uses (its "Proxies" guide), then all_proxy."""

    def test_nothing_configured_is_direct(self) -> None:
        assert select_proxy(WSS) is None and select_proxy(WS) is None

    def test_https_proxy_serves_wss_and_ws(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
        for url in (WSS, WS):
            proxy = select_proxy(url)
            assert proxy is not None and (proxy.host, proxy.port, proxy.source) == ("proxy", 3128, "HTTPS_PROXY")

    def test_http_proxy_serves_ws_only(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
        assert select_proxy(WSS) is None
        proxy = select_proxy(WS)
        assert proxy is not None and proxy.host == "plain" and proxy.source == "HTTP_PROXY"

    def test_https_proxy_wins_over_http_proxy_for_ws(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
        monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
        proxy = select_proxy(WS)
        assert proxy is not None and proxy.host == "secure"

    def test_websocket_specific_variables_come_first(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
        monkeypatch.setenv("wss_proxy", "http://wss-only:1")
        monkeypatch.setenv("ws_proxy", "http://ws-only:2")
        wss, ws = select_proxy(WSS), select_proxy(WS)
        assert wss is not None and (wss.host, wss.source) == ("wss-only", "wss_proxy")
        assert ws is not None and (ws.host, ws.source) == ("ws-only", "ws_proxy")

    def test_all_proxy_is_the_last_resort(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALL_PROXY", "http://everything:8080")
        for url in (WSS, WS):
            proxy = select_proxy(url)
            assert proxy is not None and proxy.host == "everything" and proxy.source == "ALL_PROXY"
        monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
        proxy = select_proxy(WSS)
        assert proxy is not None and proxy.host == "secure"

    def test_lower_case_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
        monkeypatch.setenv("https_proxy", "http://lower:2")
        proxy = select_proxy(WSS)
        assert proxy is not None and (proxy.host, proxy.source) == ("lower", "https_proxy")

    @pytest.mark.parametrize("no_proxy", ["bridge.example.org", ".example.org", "example.org", "other,bridge.example.org", "*",
                                          "bridge.example.org:8443"])
    def test_no_proxy_bypasses(self, monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert select_proxy(WSS) is None

    def test_no_proxy_for_another_host_does_not_bypass(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1,bridge.example.com")
        assert select_proxy(WSS) is not None


class TestProxyURL:
    def test_host_port_alone_means_http(self) -> None:
        proxy = parse_proxy_url("proxy.site:3128", "HTTPS_PROXY")
        assert (proxy.host, proxy.port, proxy.credentials) == ("proxy.site", 3128, None)
        assert parse_proxy_url("http://proxy.site/", "X").port == 80

    def test_credentials_are_decoded_and_never_shown(self) -> None:
        proxy = parse_proxy_url("http://al%40ice:p%3Ass-w0rd@proxy:3128", "HTTPS_PROXY")
        assert proxy.credentials is not None and proxy.credentials.get_secret_value() == "al@ice:p:ss-w0rd"
        for text in (repr(proxy), str(proxy), proxy.address):
            assert "w0rd" not in text and "al" not in text.replace("http", "")
        assert str(proxy) == "http://proxy:3128 (from HTTPS_PROXY)"

    def test_ipv6_proxy_and_target(self) -> None:
        proxy = parse_proxy_url("http://[::1]:3128", "X")
        assert proxy.host == "::1" and proxy.address == "http://[::1]:3128"
        assert proxy.connect_request("::1", 8000).target == b"[::1]:8000"

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("socks5h://user:s3cret@proxy:1080", "SOCKS proxy"),
            ("https://user:s3cret@proxy:3128", "https:// proxy"),
            ("http://user@proxy:3128", "user name but no password"),
            ("http://user:s3cret@proxy:99999", "not a proxy URL"),
            ("http://", "not a proxy URL"),
            ("http://user:s3cret@[::1:3128", "not a proxy URL"),  # was urlsplit's ValueError, a traceback
        ],
    )
    def test_unusable_proxies_are_usage_errors_without_secrets(self, value: str, message: str) -> None:
        with pytest.raises(UsageError, match=message) as info:
            parse_proxy_url(value, "HTTPS_PROXY")
        assert "HTTPS_PROXY" in info.value.message and "s3cret" not in info.value.message

    def test_connect_request(self) -> None:
        proxy = parse_proxy_url("http://alice:secret@proxy:3128", "X")
        request = proxy.connect_request("bridge", 8443, "orbit-test/1")
        assert request.method == b"CONNECT" and request.target == b"bridge:8443"
        headers = dict(request.headers)
        assert headers[b"host"] == b"bridge:8443" and headers[b"user-agent"] == b"orbit-test/1"
        assert headers[b"proxy-authorization"] == b"Basic " + base64.b64encode(b"alice:secret")
        assert b"proxy-authorization" not in dict(parse_proxy_url("http://proxy:3128", "X").connect_request("b", 1).headers)


class TestConnectExchange:
    """open_tunnel against a proxy that answers CONNECT with canned bytes."""

    @pytest.mark.parametrize(
        ("answer", "status", "message"),
        [
            (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", 407,
             "wants credentials .*put them in HTTPS_PROXY: http://user:password@127.0.0.1:"),
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", 403, "does not allow a tunnel to bridge:8443 .*CONNECT to port 8443"),
            (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\noops!", 502, "could not reach the bridge at bridge:8443"),
            (b"HTTP/1.0 418 I'm a teapot\r\n\r\n", 418, "refused the tunnel to bridge:8443 .418 I'm a teapot."),
            (b"SSH-2.0-OpenSSH_9.6\r\n", None, "did not answer with HTTP .it sent b'SSH-2.0-OpenSSH_9.6"),
            (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", None, "did not answer with HTTP .illegal status line"),
            (b"HTTP/1.1 200 OK\r\n\r\nsurprise", None, "8 unexpected bytes"),
            (b"", None, "closed the connection before answering"),
        ],
    )
    def test_refusals_are_proxy_errors(
        self, run: Callable[[Awaitable[Any]], Any], answer: bytes, status: int | None, message: str
    ) -> None:
        async def main() -> None:
            async with FakeProxy(answer=answer) as fake:
                with pytest.raises(ProxyError, match=message) as info:
                    await open_tunnel(proxy_at(fake), "bridge", 8443)
                assert info.value.status == status
                assert fake.requests[0].startswith(b"CONNECT bridge:8443 HTTP/1.1\r\n")

        run(main())

    def test_407_with_credentials_says_they_were_refused(self, run: Callable[[Awaitable[Any]], Any]) -> None:
        async def main() -> str:
            async with FakeProxy(credentials="alice:right") as fake:
                with pytest.raises(ProxyError) as info:
                    await open_tunnel(proxy_at(fake, "alice:wrong-pass"), "127.0.0.1", 9)
                assert b"Proxy-Authorization: Basic " + base64.b64encode(b"alice:wrong-pass") in fake.requests[0]
                return info.value.message

        message = run(main())
        assert "did not accept the credentials in HTTPS_PROXY" in message and "wrong-pass" not in message

    def test_informational_answers_are_skipped(self, run: Callable[[Awaitable[Any]], Any]) -> None:
        async def main() -> None:
            async with FakeProxy(answer=b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n") as fake:
                transport = await open_tunnel(proxy_at(fake), "bridge", 443)
                transport.close()

        run(main())

    def test_unreachable_proxy(self, run: Callable[[Awaitable[Any]], Any], free_port: int) -> None:
        async def main() -> None:
            proxy = parse_proxy_url(f"http://127.0.0.1:{free_port}", "HTTPS_PROXY")
            with pytest.raises(ProxyError, match=r"cannot reach the proxy http://127\.0\.0\.1:\d+ \(from HTTPS_PROXY\).*--no-proxy"):
                await open_tunnel(proxy, "bridge", 443)

        run(main())


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


class TestLinkThroughProxy:
    def test_ws_through_the_tunnel(self, run: Callable[[Awaitable[Any]], Any]) -> None:
        seen: dict[str, str] = {}

        def process_request(conn: ServerConnection, request: Any) -> None:
            seen["auth"] = request.headers.get("Authorization", "")

        async def main() -> tuple[str | bytes, list[str]]:
            async with serve(echo, "127.0.0.1", 0, process_request=process_request) as srv, FakeProxy() as fake:
                port = srv.sockets[0].getsockname()[1]
                link = await open_link(f"ws://127.0.0.1:{port}/ws/endpoint", headers={"Authorization": "Bearer t0k"},
                                       proxy=proxy_at(fake))
                link.send("through")
                got = await link.recv()
                await link.close()
                assert link.close_code == 1000
                return got, fake.tunnels

        got, tunnels = run(main())
        assert got == "through" and len(tunnels) == 1 and seen == {"auth": "Bearer t0k"}

    def test_wss_is_tls_end_to_end_inside_the_tunnel(
        self, run: Callable[[Awaitable[Any]], Any], self_signed: tuple[Path, Path]
    ) -> None:
        cert, key = self_signed
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)

        async def main() -> list[str]:
            async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as srv, FakeProxy(credentials="u:p") as fake:
                port = srv.sockets[0].getsockname()[1]
                url = f"wss://127.0.0.1:{port}/ws/endpoint"
                link = await open_link(url, ssl_context=ssl.create_default_context(cafile=str(cert)), proxy=proxy_at(fake, "u:p"))
                link.send("x" * 100_000)
                assert await link.recv() == "x" * 100_000
                await link.close()
                # the certificate is still checked against the bridge, not the proxy
                with pytest.raises(ssl.SSLCertVerificationError):
                    await open_link(url, proxy=proxy_at(fake, "u:p"), timeout=5)
                return fake.tunnels

        assert len(run(main())) == 2

    def test_a_refusing_proxy_is_a_proxy_error_not_a_handshake_error(self, run: Callable[[Awaitable[Any]], Any]) -> None:
        async def main() -> None:
            async with FakeProxy(credentials="u:p") as fake:
                with pytest.raises(ProxyError, match="wants credentials"):
                    await open_link("ws://127.0.0.1:9/ws/endpoint", proxy=proxy_at(fake))

        run(main())


class TestAgentThroughProxy:
    def test_registers_and_answers_through_the_proxy(self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="radical.orbit.endpoint")

        async def main() -> None:
            async with FakeBridge() as bridge, FakeProxy(credentials="agent:pr0xy-secret") as fake:
                monkeypatch.setenv("HTTP_PROXY", f"http://agent:pr0xy-secret@127.0.0.1:{fake.port}")
                agent = EndpointAgent(bridge.settings())
                task = asyncio.create_task(agent.run())
                await agent.wait_registered(5)
                assert fake.tunnels == [f"127.0.0.1:{bridge.port}"]
                resp = await bridge.request("GET", "/sysinfo/ping")
                assert resp.status == 200 and decode_body(resp.body, resp.body_encoding) == b'{"pong":true}'
                agent.stop()
                await asyncio.wait_for(task, 10)

        asyncio.run(main())
        text = caplog.text
        assert "through the proxy http://127.0.0.1:" in text and "(from HTTP_PROXY)" in text
        assert "pr0xy-secret" not in text and KEY not in text

    def test_407_is_a_clear_line_and_the_usual_backoff(self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="radical.orbit.endpoint")

        async def main() -> None:
            async with FakeBridge() as bridge, FakeProxy(credentials="u:p") as fake:
                monkeypatch.setenv("HTTPS_PROXY", fake.url)
                agent = EndpointAgent(bridge.settings())
                task = asyncio.create_task(agent.run())
                while len(fake.requests) < 3:  # it keeps trying, backing off
                    await asyncio.sleep(0.02)
                assert not agent.connected and not task.done() and not bridge.registers
                agent.stop()
                await asyncio.wait_for(task, 10)

        asyncio.run(main())
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("wants credentials" in w and "HTTPS_PROXY" in w for w in warnings), warnings
        assert "reconnecting in" in caplog.text

    def test_use_proxy_false_dials_directly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge, FakeProxy() as fake:
                monkeypatch.setenv("HTTPS_PROXY", fake.url)
                agent = EndpointAgent(bridge.settings(use_proxy=False))
                task = asyncio.create_task(agent.run())
                await agent.wait_registered(5)
                assert agent.proxy is None and not fake.requests
                agent.stop()
                await asyncio.wait_for(task, 10)

        asyncio.run(main())

    def test_a_socks_proxy_ends_run_with_a_usage_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
        agent = EndpointAgent(FakeBridge(port=1).settings())
        with pytest.raises(UsageError, match="SOCKS"):
            asyncio.run(asyncio.wait_for(agent.run(), 10))


class TestEndpointCommand:
    def test_an_unusable_proxy_stops_the_cli_before_it_dials(self) -> None:
        from radical.orbit.cli.main import cli

        result = CliRunner().invoke(
            cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", "sysinfo"],
            env={"RADICAL_ORBIT_BRIDGE_TOKEN": "t", "HTTPS_PROXY": "https://u:s3cret@proxy:3128"},
        )
        assert result.exit_code == 2, result.output
        assert "HTTPS_PROXY names a https:// proxy" in result.output and "s3cret" not in result.output

    def test_no_proxy_flag_ignores_it(self) -> None:
        from endpoint_fakes import ThreadedBridge

        from radical.orbit.cli.main import cli

        with ThreadedBridge(refuse=("name_taken", 4009)) as bridge:  # ends the CLI once it got through
            result = CliRunner().invoke(
                cli, ["endpoint", "--name", "ep", "--url", bridge.url, "--plugins", "sysinfo", "--no-proxy"],
                env={"HTTPS_PROXY": "socks5://127.0.0.1:1", "HTTP_PROXY": "http://127.0.0.1:1", "RADICAL_ORBIT_ENDPOINT_KEY": KEY},
            )
        assert result.exit_code == 1 and "already connected" in result.output, result.output
