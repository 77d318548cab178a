"""The SDK's HTTP seam (``client/transport.py``): request bytes, timeouts, and how failures read.

Most cases talk to a small HTTP/1.1 server in a thread that stands in for the bridge
and records what arrives, so they exercise httpx's real transport (keep-alive, a
connection the bridge closed, a chunked answer, a disconnect); the failure table is
checked against ``httpx.MockTransport`` raising each of httpx's exceptions.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any

import httpx
import pytest

from radical.orbit import __version__, errors
from radical.orbit.client import transport as transport_mod
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.client.transport import encode_json

TOKEN = "transport-secret-token"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class FakeBridge:
    """What to answer (status, body, delay) and what came in."""

    url: str = ""
    status: int = 200
    body: bytes = b'{"ok":true,"n":1}'
    content_type: str = "application/json"
    delay: float = 0.0
    chunked: bool = False  # answer in chunked transfer encoding
    close: str = ""  # "silently": close after answering without saying so; "header": say so; "no-answer": close instead
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def fake(free_port: int) -> Iterator[FakeBridge]:
    state = FakeBridge()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.seen.append(Seen(self.command, self.path, headers, body, self.client_address))
            if state.delay:
                time.sleep(state.delay)
            if state.close == "no-answer":
                self.close_connection = True
                return
            self.send_response(state.status)
            self.send_header("content-type", state.content_type)
            if state.close == "header":
                self.send_header("connection", "close")
            if state.close:
                self.close_connection = True
            if state.chunked:
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                half = len(state.body) // 2
                for part in (state.body[:half], state.body[half:], b""):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                return
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_PUT = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{free_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _peers(fake: FakeBridge) -> int:
    return len({s.peer for s in fake.seen})


class TestRequests:
    def test_call_and_relay_send_the_same_bytes(self, fake: FakeBridge) -> None:
        body = {"sid": "s1", "task_id": "été ✓", "n": 1.5, "items": [{"a": None}]}
        with BridgeClient(fake.url, token=TOKEN, timeout=7) as bc:
            assert bc.call("ep 1", "globus", "/get_task", body) == {"ok": True, "n": 1}
            assert bc.relay("POST", "ep 1", "globus", "get_task", json=body).json() == {"ok": True, "n": 1}
            bc.call("ep 1", "globus", "task_wait", body, timeout=2.5)
        call, relay, waited = fake.seen
        assert call.path == relay.path == "/ep%201/globus/get_task"
        assert call.body == relay.body == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        for name in ("authorization", "user-agent", "content-type", "content-length", "x-orbit-timeout", "host"):
            assert call.headers[name] == relay.headers[name], name
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert call.headers["user-agent"] == f"radical.orbit/{__version__}"
        assert call.headers["content-type"] == "application/json"
        assert call.headers["x-orbit-timeout"] == "7" and waited.headers["x-orbit-timeout"] == "2.5"

    def test_connection_kept_alive(self, fake: FakeBridge) -> None:
        with BridgeClient(fake.url, token=TOKEN) as bc:
            for _ in range(5):
                bc.call("ep", "p", "r", {})
        assert _peers(fake) == 1

    def test_connection_closed_by_the_bridge_is_not_reused(self, fake: FakeBridge) -> None:
        """An idle connection the bridge closed (its keep-alive timeout) costs no failed call."""
        fake.close = "silently"
        with BridgeClient(fake.url, token=TOKEN) as bc:
            for _ in range(3):
                assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
                time.sleep(0.05)  # the FIN arrives
        assert _peers(fake) == 3

    def test_connection_close_header_is_honoured(self, fake: FakeBridge) -> None:
        fake.close = "header"
        with BridgeClient(fake.url, token=TOKEN) as bc:
            for _ in range(3):
                assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
        assert _peers(fake) == 3

    def test_chunked_answer(self, fake: FakeBridge) -> None:
        fake.chunked = True
        fake.body = json.dumps({"items": list(range(500))}).encode()
        with BridgeClient(fake.url, token=TOKEN) as bc:
            assert bc.call("ep", "globus", "ls", {"sid": "s"}) == {"items": list(range(500))}

    def test_url_with_a_path_prefix(self, fake: FakeBridge) -> None:
        """A bridge behind a reverse proxy at ``https://host/orbit``: the prefix is kept."""
        with BridgeClient(fake.url + "/orbit/", token=TOKEN) as bc:
            bc.call("ep", "globus", "get_task", {"sid": "s"})
            bc.relay("GET", "ep", "globus", "ls")
        assert [s.path for s in fake.seen] == ["/orbit/ep/globus/get_task", "/orbit/ep/globus/ls"]

    def test_paths_and_uuids_travel_as_strings(self, fake: FakeBridge) -> None:
        body = {"path": PurePosixPath("/data/run 1"), "collection": uuid.UUID(int=7), "items": [{"source": PurePosixPath("/a")}]}
        with BridgeClient(fake.url, token=TOKEN) as bc:
            bc.call("ep", "globus", "ls", body)
            bc.relay("POST", "ep", "globus", "ls", json=body)
        expected = {"path": "/data/run 1", "collection": "00000000-0000-0000-0000-000000000007", "items": [{"source": "/a"}]}
        assert [json.loads(s.body) for s in fake.seen] == [expected, expected]

    def test_proxy_from_the_environment(self, fake: FakeBridge, free_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
        """HTTP_PROXY / NO_PROXY are httpx's to honour: the request goes to the proxy, in absolute form."""
        monkeypatch.setenv("HTTP_PROXY", fake.url)
        with BridgeClient("http://bridge.invalid:8000", token=TOKEN) as bc:
            assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
        assert fake.seen[-1].path == "http://bridge.invalid:8000/ep/p/r"
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port}")  # nothing listens there
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with BridgeClient(fake.url, token=TOKEN) as bc:
            assert bc.call("ep", "p", "r", {}) == {"ok": True, "n": 1}
        assert fake.seen[-1].path == "/ep/p/r"

    def test_timeouts(self) -> None:
        """The bridge's deadline plus a margin to read, the shorter of it and 10 s to connect."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"endpoints": []})

        with BridgeClient("http://b.test:1", timeout=30, transport=httpx.MockTransport(handler)) as bc:
            bc.call("ep", "p", "r", {}, timeout=2.5)
            bc.relay("GET", "ep", "p", "r")
            bc.endpoints()
        margin = transport_mod.CLIENT_MARGIN
        short, relayed, discovery = (r.extensions["timeout"] for r in seen)
        assert short == {"connect": 2.5, "read": 2.5 + margin, "write": 2.5 + margin, "pool": 2.5 + margin}
        assert relayed["connect"] == 10 and relayed["read"] == 30 + margin
        assert discovery["connect"] == 10 and discovery["read"] == 30 + margin

    def test_own_content_type_wins(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={})

        with BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc:
            bc.relay("POST", "ep", "p", "r", json={"a": 1}, headers={"content-type": "application/x.mine+json"})
            with pytest.raises(errors.UsageError, match="ep/p/r: pass json= or content=, not both"):
                bc.relay("POST", "ep", "p", "r", json={"a": 1}, content=b"{}")
        assert len(seen) == 1
        assert seen[0].headers.get_list("content-type") == ["application/x.mine+json"]

    def test_debug_log_names_the_call_not_the_token(self, fake: FakeBridge, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="httpx")  # httpx writes the line; a CLI may have quieted it
        with BridgeClient(fake.url, token=TOKEN) as bc:
            bc.call("ep", "globus", "get_task", {"sid": "s"})
        lines = [r.getMessage() for r in caplog.records]
        assert any(f"POST {fake.url}/ep/globus/get_task" in line and "200" in line for line in lines)
        assert not any(TOKEN in line for line in lines)


class TestBadInput:
    def test_clear_before_sending(self, fake: FakeBridge) -> None:
        with BridgeClient(fake.url, token=TOKEN) as bc:
            with pytest.raises(errors.UsageError, match="timeout must be positive"):
                bc.call("ep", "p", "r", {}, timeout=0)
            with pytest.raises(errors.UsageError, match="x is the number nan"):
                bc.call("ep", "p", "r", {"x": float("nan")})
            with pytest.raises(errors.UsageError, match="x is a value of type object"):
                bc.relay("POST", "ep", "p", "r", json={"x": object()})
        assert fake.seen == []

    @pytest.mark.parametrize(
        ("body", "named"),
        [
            ({"items": [{"source": "/a", "destination": {"/b"}}]}, "items[0].destination is a value of type set"),
            ({"timeout": float("nan")}, "timeout is the number nan"),
            ({"label": "bad \ud800"}, "label is a string with a lone surrogate U+D800 at character 4"),
            ({"bad \udfff": 1}, "['bad \\udfff'] is a key with a lone surrogate U+DFFF at character 4"),
            ({"filter": {(1, 2): "x"}}, "filter[(1, 2)] is a key of type tuple"),
            ({1, 2}, "the body is a value of type set"),
            # was "the body is Exceeds the limit (4300 digits) for integer string conversion; ..."
            ({"items": [1, {"n": -(10**5000)}]}, "items[1].n is an integer of more than 4300 digits"),
        ],
    )
    def test_unencodable_body_names_the_field(self, fake: FakeBridge, body: Any, named: str) -> None:
        with BridgeClient(fake.url, token=TOKEN) as bc:
            for send in (
                lambda: bc.call("ep", "globus", "submit_transfer", body),
                lambda: bc.relay("POST", "ep", "globus", "submit_transfer", json=body),
            ):
                with pytest.raises(errors.UsageError) as info:
                    send()
                assert info.value.message.startswith(f"ep/globus/submit_transfer: {named}, which cannot be sent as JSON")
        assert fake.seen == []

    @pytest.mark.parametrize(
        ("kwargs", "says"),
        [
            ({"headers": {"X-Name": "é"}}, "ep/p/r: header X-Name is 'é'; a header value must be a string of printable ASCII"),
            ({"headers": {"X-Name": "a\r\nX-Evil: 1"}}, "ep/p/r: header X-Name is 'a\\r\\nX-Evil: 1'"),
            ({"headers": {"X-Name": 5}}, "ep/p/r: header X-Name is 5"),
            ({"headers": {"X Name": "v"}}, "ep/p/r: header name 'X Name' is not an HTTP token"),
            ({"params": {"q": "bad \udc80"}}, "ep/p/r: params hold a string with a lone surrogate U+DC80 at character 4"),
        ],
    )
    def test_headers_and_params_http_cannot_carry(self, kwargs: dict[str, Any], says: str) -> None:
        """Were a UnicodeEncodeError or TypeError from inside httpx, or "cannot reach the bridge"."""
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json={})

        with BridgeClient("http://b.test:1", transport=httpx.MockTransport(handler)) as bc:
            with pytest.raises(errors.UsageError) as info:
                bc.relay("GET", "ep", "p", "r", **kwargs)
            assert info.value.message.startswith(says), info.value.message
            bc.relay("GET", "ep", "p", "r", headers={"X-Ok": "tab\tand spaces", "X-Raw": b"caf\xe9"}, params={"q": "é"})
        assert len(sent) == 1 and sent[0].headers["x-raw"] == "café"

    @pytest.mark.parametrize("route", ["../../endpoints", "x/../../../events", "./info", "a/./b", ".."])
    def test_a_route_cannot_climb_out_of_its_plugin(self, fake: FakeBridge, route: str) -> None:
        """'../../endpoints' reached the bridge's own /endpoints (httpx resolves dot segments)."""
        with BridgeClient(fake.url, token=TOKEN) as bc:
            with pytest.raises(errors.UsageError, match="route must not have '.' or '..' segments"):
                bc.relay("GET", "ep", "sysinfo", route)
            with pytest.raises(errors.UsageError, match="route must not have '.' or '..' segments"):
                bc.call("ep", "sysinfo", route, {})
        assert fake.seen == []

    def test_encode_json_is_what_httpx_sends(self) -> None:
        body = {"a": [1, 2.5, None, True], "é": "✓"}
        assert encode_json(body) == httpx.Request("POST", "http://x", json=body).content

    def test_closed(self, fake: FakeBridge) -> None:
        bc = BridgeClient(fake.url, token=TOKEN)
        bc.close()
        with pytest.raises(errors.UsageError, match="ep/p/r: this BridgeClient is closed"):
            bc.call("ep", "p", "r", {})
        assert "closed" in repr(bc)


class TestAnswers:
    @pytest.mark.parametrize(
        ("status", "payload", "cls"),
        [
            (404, errors.EndpointNotFoundError("endpoint 'ep' is not connected", endpoint="ep").to_payload("r1"), errors.EndpointNotFoundError),
            (401, errors.ConsentRequiredError("need data_access").to_payload("r2"), errors.ConsentRequiredError),
            (401, {"code": "unauthorized", "message": "bad token", "details": {}, "request_id": "r3"}, errors.AuthenticationError),
            (422, {"detail": [{"loc": ["body", "task_id"], "msg": "field required", "type": "missing"}]}, errors.ValidationError),
            (502, "<html>bad gateway</html>", errors.UpstreamError),
            (307, {"message": "moved"}, errors.OrbitError),
        ],
    )
    def test_error_answers(self, fake: FakeBridge, status: int, payload: Any, cls: type[errors.OrbitError]) -> None:
        fake.status = status
        fake.body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        fake.content_type = "text/html" if isinstance(payload, str) else "application/json"
        with BridgeClient(fake.url, token=TOKEN) as bc, pytest.raises(errors.OrbitError) as info:
            bc.call("ep", "globus", "ls", {"sid": "s"})
        exc = info.value
        assert type(exc) is cls
        assert exc.message.startswith("ep/globus/ls: ")
        assert exc.request_id == (payload.get("request_id") if isinstance(payload, dict) else None)
        assert TOKEN not in exc.message


class TestFailures:
    """Every exchange that got no answer is one BridgeUnavailableError, mapped in one place."""

    def test_unreachable(self, free_port: int) -> None:
        url = f"http://127.0.0.1:{free_port}"
        with BridgeClient(url, token=TOKEN) as bc:
            for send in (lambda: bc.call("ep", "sysinfo", "info", {}), lambda: bc.relay("GET", "ep", "sysinfo", "info")):
                with pytest.raises(errors.BridgeUnavailableError) as info:
                    send()
                msg = info.value.message
                assert msg.startswith(f"ep/sysinfo/info: cannot reach the Orbit bridge at {url} (URL from the argument): ")
                assert "Start one with `radical-orbit bridge`" in msg and TOKEN not in msg
                assert isinstance(info.value.__cause__, httpx.ConnectError)

    def test_read_timeout(self, fake: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(transport_mod, "CLIENT_MARGIN", 0.0)
        fake.delay = 1.0
        with BridgeClient(fake.url, token=TOKEN) as bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("ep", "sysinfo", "sleep", {}, timeout=0.2)
        assert "no answer in time (ReadTimeout)" in info.value.message

    def test_disconnect_without_answer(self, fake: FakeBridge) -> None:
        fake.close = "no-answer"
        with BridgeClient(fake.url, token=TOKEN) as bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.call("ep", "globus", "ls", {"sid": "s"})
        assert "Server disconnected without sending a response." in info.value.message

    @pytest.mark.parametrize(
        ("exc", "reason"),
        [
            (httpx.ConnectError("[Errno 111] Connection refused"), "[Errno 111] Connection refused"),
            (httpx.ConnectTimeout("timed out"), "timed out"),
            (httpx.ReadTimeout("timed out"), "no answer in time (ReadTimeout)"),
            (httpx.WriteTimeout("timed out"), "no answer in time (WriteTimeout)"),
            (httpx.PoolTimeout("timed out"), "no answer in time (PoolTimeout)"),
            (httpx.ReadError(""), "ReadError"),
            (httpx.RemoteProtocolError("Server disconnected"), "Server disconnected"),
            (httpx.ProxyError("407 Proxy Authentication Required"), "407 Proxy Authentication Required"),
            (httpx.DecodingError("invalid gzip"), "invalid gzip"),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
    )
    def test_one_mapping_for_every_request(self, exc: Exception, reason: str) -> None:
        """relay, call, discovery and the event stream raise the same class with the same reason."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        url = "http://bridge.test:8000"
        expected = f"cannot reach the Orbit bridge at {url} (URL from the argument): {reason}. Start one"
        with BridgeClient(url, token=TOKEN, transport=httpx.MockTransport(handler)) as bc:
            for context, send in (
                ("ep/p/r", lambda: bc.relay("GET", "ep", "p", "r")),
                ("ep/p/r", lambda: bc.call("ep", "p", "r", {})),
                ("bridge /endpoints", bc.endpoints),
                ("bridge /events", lambda: bc.register_callback("*", "*", "*", print)),
            ):
                with pytest.raises(errors.BridgeUnavailableError) as info:
                    send()
                assert info.value.message.startswith(f"{context}: {expected}"), info.value.message
                assert info.value.details == {"url": url}
                assert info.value.__cause__ is exc
