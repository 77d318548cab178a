"""Several bridge URLs: how a list is read (config.bridge_url_list) and how the SDK's one
HTTP seam moves from a bridge that cannot be reached to the next one.

Each URL gets its own ``httpx.MockTransport`` handler (routed by host), so a bridge
that is "down" raises what httpx raises for a dead host, and a live one answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from radical.orbit import errors
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.client.transport import may_move_on
from radical.orbit.config import MAX_BRIDGE_URLS, bridge_url_list

A = "http://bridge-a.test:8000"
B = "http://bridge-b.test:8000"
C = "http://bridge-c.test:8000"
TOKEN = "failover-secret-token"

Handler = Callable[[httpx.Request], httpx.Response]


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def answers(body: dict[str, object] | None = None, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body if body is not None else {"ok": True, "host": request.url.host})

    return handler


class Bridges:
    """One handler per bridge host, swappable while a client uses them; records who was asked."""

    def __init__(self, **handlers: Handler) -> None:
        self.handlers = {f"bridge-{name}.test": handler for name, handler in handlers.items()}
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def set(self, name: str, handler: Handler) -> None:
        self.handlers[f"bridge-{name}.test"] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.asked.append(request.url.host.split(".")[0].removeprefix("bridge-"))
        return self.handlers[request.url.host](request)

    def client(self, urls: str | list[str] = f"{A},{B}") -> BridgeClient:
        return BridgeClient(urls, token=TOKEN, transport=httpx.MockTransport(self))


class TestUrlList:
    def test_forms(self) -> None:
        assert bridge_url_list("http://a:1") == ["http://a:1"]
        assert bridge_url_list("http://a:1,https://b:2/orbit/") == ["http://a:1", "https://b:2/orbit"]
        assert bridge_url_list(" http://a:1/ , http://b:2 ,") == ["http://a:1", "http://b:2"]  # spaces, a trailing comma
        assert bridge_url_list(["http://a:1", "http://b:2"]) == ["http://a:1", "http://b:2"]
        assert bridge_url_list("http://a:1,http://a:1/,http://b:2") == ["http://a:1", "http://b:2"]  # once each
        assert bridge_url_list("ws://a:1/ws/endpoint,http://b:2", websocket=True) == ["ws://a:1/ws/endpoint", "http://b:2"]

    @pytest.mark.parametrize(
        ("value", "says"),
        [
            ("", "no bridge URL given (from $X)"),
            ([], "no bridge URL given (from $X)"),
            ("http://a:1,,http://b:2", "bridge URL number 2 (from $X) is empty; separate URLs with single commas"),
            ("http://a:1,ftp://b:2", "bridge URL 'ftp://b:2' (from $X) must start with http://, https://"),
            ("http://a:1,http://b:0", "bridge URL 'http://b:0' (from $X) has port 0"),
            ("http://a:1,ws://b:2", "bridge URL 'ws://b:2' (from $X) must start with http://, https://"),
            ("http://a:1,http://b c:2", "bridge URL 'http://b c:2' (from $X) contains spaces"),
            (["http://a:1", 5], "bridge URL number 2 (from $X) must be a string, got int"),
            (",".join(f"http://h{n}:1" for n in range(MAX_BRIDGE_URLS + 1)), f"give at most {MAX_BRIDGE_URLS}"),
        ],
    )
    def test_refused(self, value: str | list[object], says: str) -> None:
        with pytest.raises(errors.UsageError) as info:
            bridge_url_list(value, "$X")  # type: ignore[arg-type]
        assert says in info.value.message

    def test_client_reads_lists_everywhere(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The argument (list or comma string), the environment and bridge.url take the same lists."""
        with BridgeClient([A, B]) as bc:
            assert (bc.urls, bc.url, bc.url_source) == ([A, B], A, "the argument")
        with BridgeClient(f"{A},{B}") as bc:
            assert bc.urls == [A, B]
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", f"{B}, {A}")
        with BridgeClient() as bc:
            assert (bc.urls, bc.url_source) == ([B, A], "$RADICAL_ORBIT_BRIDGE_URL")
        monkeypatch.delenv("RADICAL_ORBIT_BRIDGE_URL")
        (home / ".radical" / "orbit").mkdir(parents=True)
        (home / ".radical" / "orbit" / "bridge.url").write_text(f"{A},{C}\n")
        with BridgeClient() as bc:
            assert bc.urls == [A, C]
        with pytest.raises(errors.UsageError, match=r"bridge URL number 2 \(from the argument\) is empty"):
            BridgeClient(f"{A},,{B}")


class TestFailover:
    def test_moves_on_when_refused_and_stays(self) -> None:
        bridges = Bridges(a=refused, b=answers())
        with bridges.client() as bc:
            assert bc.call("ep", "p", "r", {})["host"] == "bridge-b.test"  # a POST: nothing reached A
            assert bc.url == B
            assert bc.endpoints() == []  # the next request goes straight to B
        assert bridges.asked == ["a", "b", "b"]

    def test_goes_round_in_order(self) -> None:
        """From the one in use, then the next ones in order, wrapping around."""
        bridges = Bridges(a=answers(), b=answers(), c=answers())
        with bridges.client(f"{A},{B},{C}") as bc:
            bridges.set("a", refused)
            bc.health()
            assert bc.url == B
            bridges.set("b", refused)
            bridges.set("a", answers())
            bridges.set("c", refused)
            bc.health()  # B, then C, then round to A
            assert bc.url == A
        assert bridges.asked == ["a", "b", "b", "c", "a"]

    @pytest.mark.parametrize(
        "exc",
        [httpx.ConnectTimeout("timed out"), httpx.ProxyError("502 Bad Gateway")],
        ids=lambda e: type(e).__name__,
    )
    def test_nothing_sent_moves_on_for_any_method(self, exc: Exception) -> None:
        def down(request: httpx.Request) -> httpx.Response:
            raise exc

        bridges = Bridges(a=down, b=answers())
        with bridges.client() as bc:
            assert bc.call("ep", "p", "r", {})["host"] == "bridge-b.test"

    @pytest.mark.parametrize(
        "exc",
        [httpx.ReadError("connection reset"), httpx.RemoteProtocolError("Server disconnected"), httpx.ReadTimeout("timed out")],
        ids=lambda e: type(e).__name__,
    )
    def test_a_post_that_may_have_arrived_is_not_repeated(self, exc: Exception) -> None:
        """Reset or silent after sending: a POST is raised (the caller decides), a GET goes on."""

        def lost(request: httpx.Request) -> httpx.Response:
            raise exc

        bridges = Bridges(a=lost, b=answers())
        with bridges.client() as bc:
            with pytest.raises(errors.BridgeUnavailableError) as info:
                bc.call("ep", "globus", "submit_transfer", {"sid": "s"})
            assert bridges.asked == ["a"]
            message = info.value.message
            assert message.startswith(f"ep/globus/submit_transfer: cannot reach the Orbit bridge at {A} (URL from the argument): ")
            assert f"(not sent to {B}: the request may have reached {A}, and POST is not safe to repeat)" in message
            assert TOKEN not in message
            assert info.value.details == {"url": A, "urls": [A, B]}
            assert bc.url == A
            assert bc.relay("GET", "ep", "sysinfo", "info").json()["host"] == "bridge-b.test"
            assert bc.url == B
        assert bridges.asked == ["a", "a", "b"]

    def test_answers_are_never_retried_elsewhere(self) -> None:
        """A live bridge's 503 or 404 is its answer: raised, not sent to the next URL."""
        bridges = Bridges(a=answers({"code": "endpoint_unavailable", "message": "ep went away"}, 503), b=answers())
        with bridges.client() as bc:
            with pytest.raises(errors.EndpointUnavailableError):
                bc.relay("GET", "ep", "p", "r")
            bridges.set("a", answers({"code": "endpoint_not_found", "message": "no ep"}, 404))
            with pytest.raises(errors.EndpointNotFoundError):
                bc.call("ep", "p", "r", {})
        assert bridges.asked == ["a", "a"]

    def test_local_failures_do_not_move(self) -> None:
        request = httpx.Request("GET", A)
        assert not may_move_on("GET", httpx.PoolTimeout("pool full", request=request))
        assert not may_move_on("GET", httpx.DecodingError("bad gzip", request=request))
        assert may_move_on("get", httpx.ReadError("reset", request=request))
        assert not may_move_on("DELETE", httpx.ReadError("reset", request=request))

    def test_none_reachable_names_every_url(self) -> None:
        def timed_out(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectTimeout("timed out", request=request)

        bridges = Bridges(a=refused, b=timed_out)
        with bridges.client() as bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.endpoints()
        message = info.value.message
        assert message.startswith(
            f"bridge /endpoints: cannot reach any of the Orbit bridges at {A}, {B} (URLs from the argument): "
            f"{A}: [Errno 111] Connection refused; {B}: timed out. Start one with `radical-orbit bridge`"
        ), message
        assert info.value.details == {"url": f"{A}, {B}", "urls": [A, B]}

    def test_one_url_reads_as_before(self) -> None:
        bridges = Bridges(a=refused)
        with bridges.client(A) as bc, pytest.raises(errors.BridgeUnavailableError) as info:
            bc.endpoints()
        assert info.value.details == {"url": A}
        assert f"cannot reach the Orbit bridge at {A} (URL from the argument): [Errno 111] Connection refused." in info.value.message


class TestEventStream:
    def test_resumes_on_the_next_bridge_with_last_event_id(self) -> None:
        """A's stream ends after event a-5 and A goes away: the listener reopens on B, resuming after a-5."""
        seen_by_b: list[str | None] = []
        resumed = threading.Event()

        def bridge_a(request: httpx.Request) -> httpx.Response:
            bridges.set("a", refused)  # one stream, then A is gone
            body = (
                b'id: a-1\nevent: hello\ndata: {"kind":"hello"}\n\n'
                b'id: a-5\nevent: notification\ndata: {"kind":"notification","endpoint":"ep","topic":"t"}\n\n'
            )
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        def bridge_b(request: httpx.Request) -> httpx.Response:
            seen_by_b.append(request.headers.get("last-event-id"))
            resumed.set()
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b'id: b-9\nevent: hello\ndata: {}\n\n')

        bridges = Bridges(a=bridge_a, b=bridge_b)
        got: list[str] = []
        with bridges.client() as bc:
            bc.register_callback("ep", "*", "t", lambda event: got.append(str(event.get("topic"))))
            assert resumed.wait(10), bridges.asked
            # B was asked; the listener records B as its bridge and the dispatcher calls
            # back on threads of their own, a moment later
            deadline = time.monotonic() + 10
            while (bc.url != B or not got) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert bc.url == B
        assert seen_by_b[0] == "a-5"
        assert got == ["t"]

    def test_opens_on_the_second_when_the_first_is_down(self) -> None:
        def bridge_b(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b'id: b-1\nevent: hello\ndata: {}\n\n')

        bridges = Bridges(a=refused, b=bridge_b)
        with bridges.client() as bc:
            assert bc.wait_for_listener(10)
            assert bc.url == B and bridges.asked[:2] == ["a", "b"]
