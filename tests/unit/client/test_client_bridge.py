"""BridgeClient / EndpointClient against an ``httpx.MockTransport`` (no processes)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from radical.orbit import errors
from radical.orbit.client import discovery
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.client.endpoint import EndpointClient
from radical.orbit.client.plugin import PluginClient
from radical.orbit.config import write_private_file

Handler = Callable[[httpx.Request], httpx.Response]
TOKEN = "s3cr3t-token-value"


def make_client(handler: Handler, **kwargs: Any) -> BridgeClient:
    kwargs.setdefault("url", "http://bridge.test:8000")
    kwargs.setdefault("token", TOKEN)
    return BridgeClient(transport=httpx.MockTransport(handler), **kwargs)


def ep_info(name: str = "ep1", plugins: list[dict[str, Any]] | None = None, alive: bool = True) -> dict[str, Any]:
    if plugins is None:
        plugins = [{"name": "sysinfo", "version": "1", "description": "", "enabled": True, "reason": None}]
    return {"name": name, "version": "0", "host": {}, "plugins": plugins, "alive": alive, "inflight": 0}


def all_error_classes() -> list[type[errors.OrbitError]]:
    out: list[type[errors.OrbitError]] = []
    todo: list[type[errors.OrbitError]] = [errors.OrbitError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(out, key=lambda c: c.__name__)


class TestResolution:
    """url / token / cert: argument > environment > ~/.radical/orbit file > default."""

    def test_defaults(self) -> None:
        bc = BridgeClient()
        assert bc.url == "http://127.0.0.1:8000"
        assert bc.token_source is None and bc.cert is None
        bc.close()

    def test_file_then_env_then_arg(self, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        write_private_file("bridge.url", "http://from-file:1/\n")
        write_private_file("bridge.token", "file-token\n")
        cert = home / "ca.pem"
        cert.write_text("x")
        write_private_file("bridge.cert", "x")
        bc = BridgeClient()
        assert (bc.url, bc._token) == ("http://from-file:1", "file-token")
        assert bc.token_source == str(home / ".radical" / "orbit" / "bridge.token")
        assert bc.cert == str(home / ".radical" / "orbit" / "bridge.cert")

        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", "http://from-env:2")
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_TOKEN", "env-token")
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_CERT", str(cert))
        bc = BridgeClient()
        assert (bc.url, bc._token, bc.cert) == ("http://from-env:2", "env-token", str(cert))
        assert bc.token_source == "$RADICAL_ORBIT_BRIDGE_TOKEN"

        bc = BridgeClient("http://from-arg:3", token="arg-token", cert=str(cert))
        assert (bc.url, bc._token, bc.cert) == ("http://from-arg:3", "arg-token", str(cert))
        assert bc.token_source == "the argument"

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("ws://x:1", "must start with http://, https://"),
            ("http://127.0.0.1:notaport", "cannot be read"),
            ("http://127.0.0.1:99999", "Port out of range"),
            ("http://[::1", "Invalid IPv6 URL"),
            ("http://exa mple.org", "spaces or control characters"),
            ("http://:8000", "has no host"),
            ("http://127.0.0.1:8000?x=1", "must not have a query or fragment"),
        ],
    )
    def test_bad_url(self, url: str, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each is a UsageError naming the URL and its source (was httpx.InvalidURL or ValueError)."""
        with pytest.raises(errors.UsageError, match=re.escape(says)) as info:
            BridgeClient(url)
        assert f"bridge URL {url!r} (from the argument)" in info.value.message
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", url)
        with pytest.raises(errors.UsageError, match=r"\$RADICAL_ORBIT_BRIDGE_URL"):
            BridgeClient()

    def test_bad_cert(self, home: Path) -> None:
        with pytest.raises(errors.UsageError, match="not a readable file"):
            BridgeClient("https://x:1", cert=str(home / "missing.pem"))
        junk = home / "junk.pem"
        junk.write_text("not a certificate")
        with pytest.raises(errors.UsageError, match="cannot be loaded"):
            BridgeClient("https://x:1", cert=str(junk))
        assert BridgeClient("https://x:1", cert=certifi.where()).cert == certifi.where()

    @pytest.mark.parametrize("token", ["tök-en", "line\nbreak", "tab\there"])
    def test_token_an_http_header_cannot_carry(self, token: str) -> None:
        with pytest.raises(errors.UsageError, match="printable ASCII") as info:
            BridgeClient("http://127.0.0.1:9", token=token)
        assert token not in info.value.message

    def test_token_sent_and_hidden(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"endpoints": []})

        bc = make_client(handler)
        assert bc.list_endpoints() == []
        assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in repr(bc)
        bc.close()
        assert TOKEN not in repr(bc)


class TestHygiene:
    def test_a_token_file_others_may_read_is_refused(self, home: Path) -> None:
        """The fix is in the message; the token is not."""
        path = write_private_file("bridge.token", "file-token-value\n")
        path.chmod(0o644)
        with pytest.raises(errors.UsageError, match=re.escape(f"chmod 600 {path}")) as info:
            BridgeClient("http://127.0.0.1:9")
        assert "file-token-value" not in info.value.message
        path.chmod(0o600)
        assert BridgeClient("http://127.0.0.1:9")._token == "file-token-value"

    @pytest.mark.parametrize(
        ("url", "warned"),
        [
            ("http://bridge.example.org:8000", True),
            ("http://10.1.2.3:8000", True),
            ("http://127.0.0.1:8000", False),
            ("http://127.8.9.10:8000", False),
            ("http://localhost:8000", False),
            ("http://[::1]:8000", False),
            ("https://bridge.example.org:8000", False),
        ],
    )
    def test_plain_http_to_another_host_warns_once(self, url: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level("WARNING")
        bc = make_client(lambda r: httpx.Response(200, json={"endpoints": []}), url=url)
        bc.endpoints()
        bc.endpoints()
        lines = [r.getMessage() for r in caplog.records if "over plain HTTP" in r.getMessage()]
        assert len(lines) == (1 if warned else 0)
        if warned:
            assert url in lines[0] and "--cert/--key" in lines[0] and TOKEN not in lines[0]
        caplog.clear()
        make_client(lambda r: httpx.Response(200), url=url, token=None)  # no token, nothing to leak
        assert not [r for r in caplog.records if "over plain HTTP" in r.getMessage()]

    def test_an_endpoint_key_is_not_a_client_token(self) -> None:
        with pytest.raises(errors.UsageError, match="is an endpoint key") as info:
            BridgeClient("http://127.0.0.1:9", token="orbit_ek_abc")
        assert "orbit_ek_abc" not in info.value.message


class TestErrors:
    @pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
    def test_round_trip(self, cls: type[errors.OrbitError]) -> None:
        """Every class the server renders comes back as the same class, with context."""
        server_exc = cls("it broke", job="42")
        payload = server_exc.to_payload("req-1")

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(cls.status_code, json=payload)

        ec = EndpointClient(make_client(handler), "ep1")
        with pytest.raises(errors.OrbitError) as info:
            ec.request("POST", "globus", "submit_transfer", json={"sid": "x"})
        exc = info.value
        assert type(exc) is cls
        assert exc.status_code == cls.status_code
        assert exc.message.startswith("ep1/globus/submit_transfer: ")
        assert exc.request_id == "req-1"
        if cls is not errors.AuthenticationError:  # the bridge's 401 is rewritten, see below
            assert exc.message.endswith("it broke")
            assert exc.details == {"job": "42"}

    def test_unauthorized_names_token_sources(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"code": "unauthorized", "message": "bad token", "details": {}})

        bc = make_client(handler)
        with pytest.raises(errors.AuthenticationError) as info:
            bc.list_endpoints()
        msg = info.value.message
        assert "refused the token (taken from the argument)" in msg
        assert "RADICAL_ORBIT_BRIDGE_TOKEN" in msg and "bridge.token" in msg
        assert TOKEN not in msg and TOKEN not in repr(info.value) and TOKEN not in str(info.value.details)

        with pytest.raises(errors.AuthenticationError, match="requires a token and none was found"):
            BridgeClient("http://b:1", transport=httpx.MockTransport(handler)).endpoints()

    def test_plugin_auth_errors_kept(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json=errors.ConsentRequiredError("need data_access").to_payload())

        with pytest.raises(errors.ConsentRequiredError, match="ep/globus/ls: need data_access"):
            make_client(handler).relay("POST", "ep", "globus", "ls")

    def test_non_json_error_body(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(502, text="<html>bad gateway</html>")

        with pytest.raises(errors.UpstreamError, match=r"ep/p/r: HTTP 502: <html>bad gateway"):
            make_client(handler).relay("GET", "ep", "p", "r")

    @pytest.mark.parametrize(
        "exc", [httpx.ConnectError("Connection refused"), httpx.ConnectTimeout("t"), httpx.ReadTimeout("t"), httpx.RemoteProtocolError("x")]
    )
    def test_unreachable(self, exc: Exception) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        with pytest.raises(errors.BridgeUnavailableError) as info:
            make_client(handler).relay("GET", "ep", "sysinfo", "info")
        msg = info.value.message
        assert msg.startswith("ep/sysinfo/info: cannot reach the Orbit bridge at http://bridge.test:8000")
        assert "radical-orbit bridge" in msg and TOKEN not in msg

    def test_closed(self) -> None:
        bc = make_client(lambda r: httpx.Response(200, json={}))
        bc.close()
        bc.close()
        with pytest.raises(errors.UsageError, match="closed"):
            bc.endpoints()


class TestRelay:
    def test_request_shape(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=b"\x00\xff", headers={"x-answer": "1"})

        bc = make_client(handler, timeout=30)
        ec = EndpointClient(bc, "ep1")
        resp = ec.request("put", "sysinfo", "/a/b c", params={"q": "1"}, content=b"\x00\x01", headers={"X-Mine": "v"})
        assert resp.content == b"\x00\xff" and resp.headers["x-answer"] == "1"
        req = seen[0]
        assert req.method == "PUT"
        assert req.url.raw_path == b"/ep1/sysinfo/a/b%20c?q=1"
        assert req.headers["x-mine"] == "v"
        assert req.headers["x-orbit-timeout"] == "30"
        assert req.content == b"\x00\x01"
        ec.request("GET", "sysinfo", timeout=2.5)
        assert seen[1].url.raw_path == b"/ep1/sysinfo"
        assert seen[1].headers["x-orbit-timeout"] == "2.5"
        with pytest.raises(errors.UsageError):
            ec.request("GET", "sysinfo", timeout=0)


class TestDiscovery:
    def handler(self, endpoints: list[dict[str, Any]]) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/endpoints":
                return httpx.Response(200, json={"endpoints": endpoints})
            name = request.url.path.rsplit("/", 1)[-1]
            for info in endpoints:
                if info["name"] == name:
                    return httpx.Response(200, json=info)
            return httpx.Response(404, json=errors.EndpointNotFoundError(f"no endpoint {name}").to_payload())

        return handle

    def test_list_and_get(self) -> None:
        bc = make_client(self.handler([ep_info("a"), ep_info("b", alive=False)]))
        assert bc.list_endpoints() == ["a"]
        assert [e["name"] for e in bc.endpoints()] == ["a", "b"]
        ec = bc.get_endpoint_client({"name": "a"})
        assert (ec.name, ec.bridge) == ("a", bc)
        assert "EndpointClient('a'" in repr(ec)
        with pytest.raises(errors.EndpointNotFoundError, match=r"no endpoint named 'zz' .*\(connected: a\)"):
            bc.get_endpoint_client("zz")
        with pytest.raises(errors.UsageError):
            bc.get_endpoint_client("")

    def test_wait_for_endpoint(self) -> None:
        endpoints: list[dict[str, Any]] = []
        calls = 0
        inner = self.handler(endpoints)

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise httpx.ConnectError("refused")  # bridge still starting
            if calls == 3:
                endpoints.append(ep_info("late"))
            return inner(request)

        bc = make_client(handler)
        assert bc.wait_for_endpoint("late", timeout=5, interval=0.01)["name"] == "late"
        with pytest.raises(errors.EndpointNotFoundError, match="'nope' .*after waiting 0.05 s"):
            bc.wait_for_endpoint("nope", timeout=0.05, interval=0.01)

    def test_get_plugin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        plugins = [
            {"name": "sysinfo", "version": "1", "enabled": True, "reason": None},
            {"name": "globus", "version": "1", "enabled": True, "reason": None},
            {"name": "gpu", "version": "1", "enabled": False, "reason": "no nvidia-smi on this host"},
        ]
        bc = make_client(self.handler([ep_info("ep1", plugins)]))
        ec = bc.get_endpoint_client("ep1")
        listed = ec.list_plugins()  # by name, as the original Orbit gave it
        assert list(listed) == ["sysinfo", "globus", "gpu"] and "globus" in listed
        assert listed["gpu"]["enabled"] is False and listed["gpu"]["namespace"] == "/ep1/gpu"
        assert [p["name"] for p in listed.values()] == ["sysinfo", "globus", "gpu"]

        class NeedsCredentials(PluginClient):
            plugin_name = "globus"
            requires_credentials = True

        monkeypatch.setattr(discovery, "find_client_class", lambda name: NeedsCredentials if name == "globus" else None)
        g = ec.get_plugin("globus")  # no credentials yet: fine until the first call
        assert isinstance(g, NeedsCredentials) and g.sid is None
        with pytest.raises(errors.UsageError, match="register_session"):
            g._call("ls")
        assert type(ec.get_plugin("sysinfo")) is PluginClient
        with pytest.raises(errors.PluginNotFoundError, match="endpoint 'ep1' has no plugin 'nope' \\(it has: globus, gpu, sysinfo\\)"):
            ec.get_plugin("nope")
        with pytest.raises(errors.PluginDisabledError, match="'gpu' on endpoint 'ep1' is disabled: no nvidia-smi"):
            ec.get_plugin("gpu")
        for bad in (None, "", b"globus"):  # None was "no plugin 'None'"
            with pytest.raises(errors.UsageError, match="plugin name must be a non-empty string"):
                ec.get_plugin(bad)  # type: ignore[arg-type]

    def test_unknown_client_class_is_generic(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(discovery, "find_client_class", lambda name: None)
        bc = make_client(self.handler([ep_info("ep1")]))
        assert type(bc.get_endpoint_client("ep1").get_plugin("sysinfo")) is PluginClient


def test_sdk_imports_nothing_server_side() -> None:
    """A laptop with only the SDK must not need FastAPI, uvicorn or globus-sdk."""
    code = (
        "import radical.orbit, sys\n"
        "from radical.orbit import BridgeClient, EndpointClient, PluginClient\n"
        "import radical.orbit.client.events\n"
        "bad = [m for m in ('fastapi', 'uvicorn', 'starlette', 'globus_sdk', 'websockets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr



def test_public_names_resolve() -> None:
    import radical.orbit

    for name in radical.orbit.__all__:
        assert getattr(radical.orbit, name) is not None, name
    assert radical.orbit.BridgeClient is BridgeClient and radical.orbit.EndpointClient is EndpointClient


class TestArgumentShapes:
    """Wrong types and impossible numbers are UsageErrors naming the argument (were
    TypeError/ValueError/OverflowError, an endless wait, or a callback listener that
    stopped serving every other subscription)."""

    @pytest.mark.parametrize(
        ("kwargs", "says"),
        [
            ({"url": 5}, "BridgeClient url must be a string, a list of strings or None, got int"),
            ({"token": 5}, "BridgeClient token must be a string or None, got int"),
            ({"cert": 5}, "BridgeClient cert must be a file path or None, got int"),
            ({"timeout": "5"}, "BridgeClient: timeout must be a number of seconds, got '5'"),
            ({"timeout": None}, "BridgeClient: timeout must be a number of seconds, got None"),
            ({"timeout": float("nan")}, "BridgeClient: timeout must be a finite number of seconds"),
            ({"timeout": float("inf")}, "BridgeClient: timeout must be a finite number of seconds"),
            ({"timeout": 0}, "BridgeClient: timeout must be positive"),
        ],
    )
    def test_constructor(self, kwargs: dict[str, Any], says: str) -> None:
        with pytest.raises(errors.UsageError) as info:
            BridgeClient(**kwargs)
        assert says in info.value.message

    def test_calls(self) -> None:
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json={})

        with make_client(handler) as bc:
            for bad, says in ((float("nan"), "finite"), (float("inf"), "finite"), (-1, "positive"), ("1", "number of seconds")):
                with pytest.raises(errors.UsageError, match=says):
                    bc.call("ep", "sysinfo", "info", {}, timeout=bad)
                with pytest.raises(errors.UsageError, match=says):
                    bc.relay("GET", "ep", "sysinfo", "info", timeout=bad)
            for method in ("BO GUS", "", 5, "GET\r\n"):
                with pytest.raises(errors.UsageError, match="HTTP method name"):
                    bc.relay(method, "ep", "sysinfo")  # type: ignore[arg-type]
            with pytest.raises(errors.UsageError, match="route must be a string"):
                bc.call("ep", "sysinfo", 5, {})  # type: ignore[arg-type]
            with pytest.raises(errors.UsageError, match="plugin must be a non-empty string"):
                bc.call("ep", "", "info", {})
            with pytest.raises(errors.UsageError, match=r"wait_for_endpoint\('x'\): timeout must be a finite"):
                bc.wait_for_endpoint("x", timeout=float("nan"))
            with pytest.raises(errors.UsageError, match=r"interval must be positive"):
                bc.wait_for_endpoint("x", timeout=1, interval=-1)
        assert sent == []

    def test_callback_subscriptions(self) -> None:
        with make_client(lambda r: httpx.Response(200, json={})) as bc:
            for args, says in (  # (None is a wildcard: the original Orbit's register_callback)
                (("", "globus", "*"), "endpoint must be a name, '*' or a pattern"),
                (("ep", 5, "*"), "plugin must be a name"),
                (("ep", "globus", ""), "topic must be a name"),
            ):
                with pytest.raises(errors.UsageError, match=re.escape(says)):
                    bc.register_callback(*args, lambda event: None)  # type: ignore[arg-type]
            assert bc._listener is None  # nothing was subscribed, no stream opened
            plugin = PluginClient.__new__(PluginClient)  # only the argument checks run
            with pytest.raises(errors.UsageError, match="callback must be callable"):
                PluginClient.register_notification_callback(plugin, 5)  # type: ignore[arg-type]
            with pytest.raises(errors.UsageError, match="topic must be a topic name"):
                PluginClient.register_notification_callback(plugin, lambda t, p: None, topic=5)  # type: ignore[arg-type]

    def test_impossible_endpoint_names(self) -> None:
        """'../x' used to come back as the bridge's confusing 'no route GET /endpoints/../x'."""
        sent: list[httpx.Request] = []
        with make_client(lambda r: sent.append(r) or httpx.Response(404, json={})) as bc:  # type: ignore[func-returns-value]
            for name in ("../x", "", "a b", "-lead", "x" * 65, 5):
                with pytest.raises(errors.UsageError, match="is not an endpoint name"):
                    bc.get_endpoint_client(name) if isinstance(name, str) and name else bc.endpoint_info(name)  # type: ignore[arg-type]
                with pytest.raises(errors.UsageError):
                    bc.wait_for_endpoint(name, timeout=0.1)  # type: ignore[arg-type]
        assert sent == []
