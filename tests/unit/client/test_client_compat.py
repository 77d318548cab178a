"""The original Orbit's client API beside ours: callback styles, errors, settings, waits.

Against an ``httpx.MockTransport`` bridge (no processes); tests/compat runs the
original's scripts against real ones.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from radical.orbit import errors
from radical.orbit.client import BridgeClient, EndpointClient, PluginClient
from radical.orbit.client.compat import (
    TopologyFeed,
    choose_style,
    original_info,
    plugins_by_name,
    positional_range,
)
from radical.orbit.config import write_private_file
from radical.orbit.models.messages import session_tag

TOKEN = "compat-test-token"


def ep_info(name: str, plugins: tuple[str, ...] = ("sysinfo",)) -> dict[str, Any]:
    return {
        "name": name,
        "version": "0",
        "host": {},
        "plugins": [{"name": p, "version": "1", "enabled": True, "reason": None} for p in plugins],
        "alive": True,
    }


# -- callback styles ---------------------------------------------------------------------
def one(event: Any) -> None: ...
def two(topic: Any, payload: Any) -> None: ...
def four(endpoint: Any, plugin: Any, topic: Any, data: Any) -> None: ...
def star(*args: Any) -> None: ...
def defaults(a: Any, b: Any = None, c: Any = None, d: Any = None) -> None: ...
def three(a: Any, b: Any, c: Any) -> None: ...
def keyword_only(event: Any, *, flag: Any) -> None: ...


class Four:
    def __call__(self, endpoint: Any, plugin: Any, topic: Any, data: Any) -> None: ...

    def method(self, endpoint: Any, plugin: Any, topic: Any, data: Any) -> None: ...


class TestChooseStyle:
    BRIDGE = ("event", "original")
    PLUGIN = ("topic", "original")

    def test_one_style_fits(self) -> None:
        for fn, style in ((one, "event"), (four, "original"), (Four(), "original"), (Four().method, "original"),
                          ([].append, "event"), (functools.partial(four, "ep", "pl", "tp"), "event")):
            assert choose_style(fn, self.BRIDGE, "event", None, "t") == style, fn
            assert choose_style(fn, self.BRIDGE, "original", None, "t") == style, fn
        assert choose_style(two, self.PLUGIN, "topic", None, "t") == "topic"
        assert choose_style(four, self.PLUGIN, "topic", None, "t") == "original"

    def test_either_fits_the_call_shape_decides(self) -> None:
        """*args, defaults and unreadable signatures never guess: the call's shape says."""
        for fn in (star, defaults, print, max):  # max: inspect cannot read it
            assert choose_style(fn, self.BRIDGE, "event", None, "t") == "event"
            assert choose_style(fn, self.BRIDGE, "original", None, "t") == "original"
            assert choose_style(fn, self.PLUGIN, "topic", None, "t") == "topic"
        assert positional_range(star) == (0, float("inf")) and positional_range(max) is None

    def test_style_argument_overrides(self) -> None:
        assert choose_style(star, self.PLUGIN, "topic", "original", "t") == "original"
        assert choose_style(max, self.BRIDGE, "event", "event", "t") == "event"
        with pytest.raises(errors.UsageError, match=r"t: style must be one of 'event', 'original', got 'topic'"):
            choose_style(one, self.BRIDGE, "event", "topic", "t")

    def test_fits_none_is_refused_at_registration(self) -> None:
        for fn in (three, keyword_only):
            with pytest.raises(errors.UsageError, match=r"cannot be called as callback\(event\) .* or callback\(endpoint, plugin, topic, data\)"):
                choose_style(fn, self.BRIDGE, "event", None, "register_callback")
        with pytest.raises(errors.UsageError, match="callback must be callable"):
            choose_style(5, self.BRIDGE, "event", None, "t")


def test_plugin_maps() -> None:
    listed = plugins_by_name("ep1", ep_info("ep1", ("sysinfo", "globus"))["plugins"])
    assert list(listed) == ["sysinfo", "globus"] and listed["globus"]["namespace"] == "/ep1/globus"
    info = original_info(ep_info("ep2"))
    assert info["name"] == "ep2" and info["plugins"]["sysinfo"]["enabled"] is True


# -- errors ---------------------------------------------------------------------------------
class TestErrors:
    def test_every_error_is_a_runtime_error(self) -> None:
        todo: list[type[errors.OrbitError]] = [errors.OrbitError]
        while todo:
            cls = todo.pop()
            assert issubclass(cls, RuntimeError), cls
            todo.extend(cls.__subclasses__())
        assert issubclass(errors.UsageError, ValueError) and issubclass(errors.ValidationError, ValueError)
        assert issubclass(errors.EndpointWaitTimeoutError, TimeoutError)
        assert issubclass(errors.EndpointWaitTimeoutError, errors.EndpointNotFoundError)

    def test_an_answer_reads_http_status_first(self) -> None:
        exc = errors.error_from_payload(404, {"code": "not_found", "message": "no task 'x'"}, context="ep1/globus/get_task")
        assert str(exc) == "HTTP 404 \u2014 ep1/globus/get_task: no task 'x'"
        assert exc.message == "ep1/globus/get_task: no task 'x'"  # what the CLI prints: ours alone
        assert str(errors.UsageError("bad value")) == "bad value"  # raised here, no answer behind it
        # the wait error's own code never shadows the one on the wire
        assert type(errors.error_from_payload(404, {"code": "endpoint_not_found", "message": "m"})) is errors.EndpointNotFoundError

    def test_except_runtime_error_catches_an_answer(self) -> None:
        bc = BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(
            lambda r: httpx.Response(404, json={"code": "session_not_found", "message": "no session"})))
        with bc:
            try:
                bc.call("ep1", "sysinfo", "info", {"sid": "x"})
            except RuntimeError as exc:  # how the original's scripts catch
                assert str(exc).startswith("HTTP 404 \u2014 ep1/sysinfo/info: ")
            else:
                pytest.fail("no error")

    def test_refused_token_reads_http_401(self) -> None:
        bc = BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(
            lambda r: httpx.Response(401, json={"code": "unauthorized", "message": "no"})))
        with bc, pytest.raises(RuntimeError, match=r"^HTTP 401 \u2014 bridge /endpoints: .*refused the token"):
            bc.endpoints()


# -- settings -------------------------------------------------------------------------------
class TestSettings:
    def test_cert_is_second_and_token_keyword_only(self, home: Path) -> None:
        """The original's BridgeClient(url, cert): the path must not become the token."""
        with BridgeClient("https://b.test:1", certifi.where()) as bc:
            assert bc.cert == certifi.where() and bc.cert_source == "the argument" and bc.token_source is None
        with pytest.raises(TypeError):
            BridgeClient("https://b.test:1", certifi.where(), TOKEN)  # type: ignore[misc]
        with BridgeClient("http://b.test:1", "/no/such/bridge_cert.pem", token=TOKEN) as bc:  # http: a CA is not needed
            assert bc.cert == "/no/such/bridge_cert.pem" and "token from the argument" in repr(bc)

    def test_original_variables_after_ours(self, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        monkeypatch.setenv("RADICAL_BRIDGE_URL", "http://original:1/")
        monkeypatch.setenv("RADICAL_BRIDGE_CERT", "~/certs/ca.pem")
        with BridgeClient() as bc:
            assert (bc.url, bc.url_source) == ("http://original:1", "$RADICAL_BRIDGE_URL")
            assert (bc.cert, bc.cert_source) == (str(home / "certs" / "ca.pem"), "$RADICAL_BRIDGE_CERT")
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", "http://ours:2")
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_CERT", "/ours.pem")
        with BridgeClient() as bc:
            assert (bc.url, bc.url_source, bc.cert) == ("http://ours:2", "$RADICAL_ORBIT_BRIDGE_URL", "/ours.pem")

    def test_original_cert_file_after_ours(self, home: Path) -> None:
        original = write_private_file("bridge_cert.pem", "pem")
        with BridgeClient() as bc:
            assert (bc.cert, bc.cert_source) == (str(original), str(original))
        ours = write_private_file("bridge.cert", "pem")
        with BridgeClient() as bc:
            assert bc.cert == str(ours)


def test_client_package_exports() -> None:
    import radical.orbit
    import radical.orbit.client

    assert radical.orbit.client.__all__ == ["BridgeClient", "EndpointClient", "PluginClient"]
    assert radical.orbit.BridgeClient is BridgeClient and radical.orbit.EndpointClient is EndpointClient
    assert radical.orbit.PluginClient is PluginClient


# -- a bridge with an event stream ------------------------------------------------------------
def sse(event: dict[str, Any]) -> bytes:
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n".encode()


class FakeBridge:
    """``GET /events`` (hello, then held open), ``/endpoints`` and plugin calls."""

    def __init__(self) -> None:
        self.endpoints: list[dict[str, Any]] = [ep_info("ep1", ("sysinfo", "globus"))]
        self.calls: list[tuple[str, Any]] = []
        self.release = threading.Event()

    def events(self) -> Iterator[bytes]:
        yield sse({"id": "b-0", "kind": "hello"})
        self.release.wait(10)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/events":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=self.events())
        if path == "/endpoints":
            return httpx.Response(200, json={"endpoints": self.endpoints})
        if path.startswith("/endpoints/"):
            name = path.rsplit("/", 1)[1]
            info = next((e for e in self.endpoints if e["name"] == name), None)
            if info is None:
                return httpx.Response(404, json={"code": "endpoint_not_found", "message": f"no endpoint {name}"})
            return httpx.Response(200, json=info)
        body = json.loads(request.content) if request.content else None
        self.calls.append((path, body))
        if path.endswith("/register_session"):
            return httpx.Response(200, json={"sid": "sid-1"})
        if path.endswith("/unregister_session"):
            return httpx.Response(404, json={"code": "session_not_found", "message": "gone"})
        return httpx.Response(200, json={})


@pytest.fixture
def fake() -> Iterator[FakeBridge]:
    bridge = FakeBridge()
    yield bridge
    bridge.release.set()


@pytest.fixture
def bc(fake: FakeBridge) -> Iterator[BridgeClient]:
    client = BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(fake))
    yield client
    fake.release.set()  # end the held stream first: there is no socket for close() to shut
    client.close()


def notification(endpoint: str = "ep1", plugin: str = "globus", topic: str = "transfer_status", **kw: Any) -> dict[str, Any]:
    base = {"id": "b-1", "kind": "notification", "endpoint": endpoint, "plugin": plugin, "topic": topic,
            "session": None, "payload": {"status": "SUCCEEDED"}}
    return {**base, **kw}


def topology(endpoint: str, topic: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "b-2", "kind": "topology", "endpoint": endpoint, "plugin": None, "topic": topic, "session": None,
            "payload": payload or {}}


class TestRegisterCallback:
    def test_original_form(self, bc: BridgeClient) -> None:
        got: list[tuple[Any, ...]] = []

        def cb(endpoint: str, plugin: str, topic: str, data: dict[str, Any]) -> None:
            got.append((endpoint, plugin, topic, data))

        bc.register_callback(endpoint_id="ep1", plugin_name="globus", topic="transfer_status", callback=cb)
        bc.register_callback(callback=lambda *args: got.append(("any", *args)))  # None everywhere: everything
        assert bc.listener is not None
        bc.listener.dispatch(notification())
        bc.listener.dispatch(notification(endpoint="ep2"))
        bc.listener.dispatch(topology("ep1", "endpoint_connected"))  # not a notification: not for these
        assert got == [
            ("ep1", "globus", "transfer_status", {"status": "SUCCEEDED"}),
            ("any", "ep1", "globus", "transfer_status", {"status": "SUCCEEDED"}),
            ("any", "ep2", "globus", "transfer_status", {"status": "SUCCEEDED"}),
        ]

    def test_our_form_is_unchanged(self, bc: BridgeClient) -> None:
        got: list[Any] = []
        bc.register_callback("*", "*", "*", lambda *args: got.append(args))  # ours: cb(event), topology too
        bc.register_callback("ep1", "globus", "*", got.append)
        assert bc.listener is not None
        bc.listener.dispatch(notification())
        bc.listener.dispatch(topology("ep9", "endpoint_connected"))
        assert [type(g) for g in got] == [tuple, dict, tuple] and got[1]["kind"] == "notification"
        assert got[2][0]["topic"] == "endpoint_connected"

    def test_style_and_conflicts(self, bc: BridgeClient) -> None:
        got: list[Any] = []
        bc.register_callback("ep1", "*", "*", lambda *a: got.append(len(a)), style="original")
        assert bc.listener is not None
        bc.listener.dispatch(notification())
        assert got == [4]
        with pytest.raises(errors.UsageError, match="give endpoint or endpoint_id, not both"):
            bc.register_callback("ep1", endpoint_id="ep1", callback=print)
        with pytest.raises(errors.UsageError, match="callback must be callable"):
            bc.register_callback(endpoint_id="ep1")
        with pytest.raises(ValueError, match=r"register_callback: .*three.* cannot be called"):
            bc.register_callback(callback=three)

    def test_unregister_by_filters_and_callback(self, bc: BridgeClient) -> None:
        got: list[str] = []

        def a(endpoint: str, plugin: str, topic: str, data: Any) -> None:
            got.append("a")

        def b(endpoint: str, plugin: str, topic: str, data: Any) -> None:
            got.append("b")

        bc.register_callback(endpoint_id="ep1", plugin_name="globus", callback=a)
        bc.register_callback(endpoint_id="ep1", plugin_name="globus", callback=b)
        bc.register_callback(endpoint_id="ep1", callback=a)
        # exactly that registration: same filters, same callback
        assert bc.unregister_callback(endpoint_id="ep1", plugin_name="globus", callback=a)
        assert not bc.unregister_callback(endpoint_id="ep1", plugin_name="globus", topic="x", callback=a)
        assert bc.listener is not None
        bc.listener.dispatch(notification())
        assert sorted(got) == ["a", "b"]
        assert bc.unregister_callback("ep1", None, None, a)  # positional, in the original's order
        assert bc.unregister_callback("ep1", "globus", None, b)
        assert len(bc.listener) == 0
        cid = bc.register_callback("ep1", "globus", "*", got.append)
        assert bc.unregister_callback(cid) and not bc.unregister_callback(cid)  # ours, by id
        with pytest.raises(errors.UsageError, match="give the id register_callback returned"):
            bc.unregister_callback()


class TestPluginCallbacks:
    def test_four_arguments_and_removal_by_callback(self, bc: BridgeClient) -> None:
        ec = bc.get_endpoint_client("ep1")
        plugin = ec.get_plugin("sysinfo")
        plugin.register_session()
        assert plugin.sid == "sid-1"
        got: list[tuple[Any, ...]] = []

        def original(endpoint: str, plugin: str, topic: str, data: dict[str, Any]) -> None:
            got.append((endpoint, plugin, topic, data))

        plugin.register_notification_callback(original, topic="load")
        cid = plugin.register_notification_callback(lambda topic, payload: got.append((topic, payload)))
        plugin.register_notification_callback(lambda *a: got.append(a), style="original")
        mine = notification(plugin="sysinfo", topic="load", session=session_tag("sid-1"), payload={"n": 1})
        assert bc.listener is not None
        bc.listener.dispatch(mine)
        bc.listener.dispatch({**mine, "session": session_tag("another-session")})  # not this client's
        assert sorted(got, key=len) == [("load", {"n": 1}), ("ep1", "sysinfo", "load", {"n": 1}), ("ep1", "sysinfo", "load", {"n": 1})]
        got.clear()
        plugin.unregister_notification_callback(original)  # the original's form: no topic given, none removed
        bc.listener.dispatch(mine)
        assert len(got) == 3
        got.clear()
        plugin.unregister_notification_callback(original, topic="load")
        plugin.unregister_notification_callback(cid)
        bc.listener.dispatch(mine)
        assert got == [("ep1", "sysinfo", "load", {"n": 1})]

    def test_unregister_session(self, bc: BridgeClient, fake: FakeBridge) -> None:
        plugin = bc.get_endpoint_client("ep1").get_plugin("sysinfo")
        plugin.unregister_session()  # none yet: nothing sent
        assert fake.calls == []
        plugin.register_session()
        plugin.unregister_session()  # the endpoint had reaped it already: closed all the same
        assert plugin.sid is None
        assert fake.calls[-1] == ("/ep1/sysinfo/unregister_session", {"sid": "sid-1"})


class TestTopology:
    def test_feed_through_the_client(self, bc: BridgeClient, fake: FakeBridge, caplog: pytest.LogCaptureFixture) -> None:
        seen: list[dict[str, Any]] = []

        def broken(endpoints: dict[str, Any]) -> None:
            raise RuntimeError("callback bug")

        bc.register_topology_callback(broken)
        bc.register_topology_callback(seen.append)
        assert bc.listener is not None
        with caplog.at_level(logging.ERROR, logger="radical.orbit.client.compat"):
            bc.listener.dispatch(topology("ep2", "endpoint_connected", ep_info("ep2", ("globus",))))
        assert "callback bug" in caplog.text
        assert sorted(seen[-1]) == ["ep1", "ep2"]
        assert seen[-1]["ep2"]["plugins"]["globus"]["namespace"] == "/ep2/globus"
        bc.listener.dispatch(topology("ep1", "endpoint_dropped"))
        bc.listener.dispatch(notification())  # not topology: no call
        assert [sorted(s) for s in seen] == [["ep1", "ep2"], ["ep2"]]
        fake.endpoints = [ep_info("ep3")]
        bc.listener.dispatch({"id": "c-0", "kind": "gap", "endpoint": None, "plugin": None, "topic": None, "payload": {}})
        assert sorted(seen[-1]) == ["ep3"]  # events were missed: the map is read again
        assert bc.unregister_topology_callback(seen.append) and bc.unregister_topology_callback(broken)
        assert not bc.unregister_topology_callback(broken)
        assert len(bc.listener) == 0  # the last one gone: unsubscribed

    def test_seed_failure_unsubscribes(self) -> None:
        subscribed: list[str] = []

        def fetch() -> list[dict[str, Any]]:
            raise errors.BridgeUnavailableError("down")

        feed = TopologyFeed(fetch, lambda handler: subscribed.append("cid-1") or "cid-1", subscribed.remove)
        with pytest.raises(errors.BridgeUnavailableError):
            feed.add(print)
        assert subscribed == [] and len(feed) == 0
        with pytest.raises(errors.UsageError, match=r"callable as callback\(endpoints\)"):
            feed.add(5)  # type: ignore[arg-type]


class TestWaits:
    def test_wait_for_endpoint_with_names(self, bc: BridgeClient, fake: FakeBridge) -> None:
        assert bc.wait_for_endpoint(["nope", "ep1"], 5, 0.01) == "ep1"
        assert bc.wait_for_endpoint("ep1", 5)["name"] == "ep1"  # ours: one name, its info
        beats: list[float] = []
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"none of 'x1', 'x2' is connected .* after waiting 0.3 s \(connected: ep1\)"):
            bc.wait_for_endpoint(("x1", "x2"), 0.3, 0.02, on_heartbeat=lambda: beats.append(time.monotonic()), heartbeat_interval=0.1)
        assert 1 <= len(beats) <= 3 and beats[0] - start >= 0.1
        with pytest.raises(errors.EndpointNotFoundError, match="no endpoint named 'x' .*after waiting 0.1 s"):
            bc.wait_for_endpoint("x", 0.1)
        for bad, says in (([], "no endpoint names given"), ([5], "5 is not an endpoint name"), ({"ep1": 1}, "names must be")):
            with pytest.raises(ValueError, match=says):
                bc.wait_for_endpoint(bad)  # type: ignore[call-overload]
        with pytest.raises(errors.UsageError, match="poll must be positive"):
            bc.wait_for_endpoint(["ep1"], 1, -1)

    def test_wait_for_endpoint_default_is_the_originals(self) -> None:
        import inspect

        assert inspect.signature(BridgeClient.wait_for_endpoint).parameters["timeout"].default == 1800.0

    def test_wait_for_listener(self, bc: BridgeClient) -> None:
        assert bc.wait_for_listener(10) is True
        assert bc.listener is not None and bc.listener.running

    def test_wait_for_listener_times_out_while_the_bridge_is_down(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

        with BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(refuse)) as bc:
            assert bc.wait_for_listener(0.3) is False

    def test_wait_for_listener_raises_a_refused_token(self) -> None:
        deny: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(401, json={"code": "unauthorized"})
        with BridgeClient("http://b.test:1", token=TOKEN, transport=httpx.MockTransport(deny)) as bc, \
                pytest.raises(errors.AuthenticationError):
            bc.wait_for_listener(5)


def test_environment_is_clean() -> None:
    assert not any(k.startswith(("RADICAL_BRIDGE_", "RADICAL_ORBIT_")) for k in os.environ)
