"""The built-in sysinfo plugin (served in-process) and its client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from radical.orbit.endpoint.dispatch import build_scope, call_asgi
from radical.orbit.errors import UsageError
from radical.orbit.models.messages import Request
from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.sysinfo.client import SysinfoClient
from radical.orbit.plugins.sysinfo.plugin import PluginSysinfo, host_facts


async def call(
    plugin: PluginSysinfo,
    method: str,
    route: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hdrs = headers if headers is not None else ([("content-type", "application/json")] if body is not None else [])
    frame = Request(id="r", method=method, path=f"/sysinfo{route}", query=query, headers=hdrs)
    status, out_headers, out = await call_asgi(plugin.app, build_scope(frame, route), data)
    return status, dict(out_headers), out


class Collected:
    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str, dict[str, Any]]] = []
        self.owners: list[str | None] = []

    def __call__(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None) -> None:
        self.items.append((plugin, sid, topic, payload))
        self.owners.append(owner)


def make(*, test_routes: bool = False) -> tuple[PluginSysinfo, Collected]:
    notes = Collected()
    settings = {"test_routes": True} if test_routes else {}
    return PluginSysinfo(PluginContext(endpoint="ep", notify=notes, settings=settings)), notes


async def session(plugin: PluginSysinfo) -> str:
    status, _, body = await call(plugin, "POST", "/register_session", {})
    assert status == 200
    return str(json.loads(body)["sid"])


class TestSysinfoPlugin:
    def test_enabled_everywhere(self) -> None:
        assert PluginSysinfo.check_enabled() is None

    def test_ping_needs_no_session(self) -> None:
        plugin, _ = make()
        status, headers, body = asyncio.run(call(plugin, "GET", "/ping"))
        assert status == 200 and json.loads(body) == {"pong": True}
        assert headers["content-type"] == "application/json"
        status, _, _ = asyncio.run(call(plugin, "POST", "/ping", {}))
        assert status == 405  # GET only

    def test_info(self) -> None:
        async def main() -> dict[str, Any]:
            plugin, _ = make()
            status, _, body = await call(plugin, "POST", "/info", {"sid": await session(plugin)})
            assert status == 200
            return dict(json.loads(body))

        info = asyncio.run(main())
        for key in ("hostname", "cpu_count", "memory_total", "memory_available", "python_version", "load_average", "platform"):
            assert key in info
        assert info["cpu_count"] >= 1 and info["python_version"] == ".".join(map(str, sys.version_info[:3]))
        assert set(host_facts()) == set(info)

    def test_info_without_session_is_404(self) -> None:
        plugin, _ = make()
        status, _, body = asyncio.run(call(plugin, "POST", "/info", {"sid": "unknown-session"}))
        assert status == 404 and json.loads(body)["code"] == "session_not_found"

    def test_unencodable_sid_is_a_clean_422_not_a_500(self) -> None:
        """A lone surrogate (JSON escape \\ud800) is refused, and quoting it must not break the error body."""
        plugin, _ = make()
        status, _, body = asyncio.run(call(plugin, "POST", "/info", raw=b'{"sid": "\\ud800"}', headers=[("content-type", "application/json")]))
        answer = json.loads(body)
        assert status == 422 and answer["details"]["fields"][0]["field"] == "sid"
        assert "not valid Unicode" in answer["message"]

    def test_watch_emits_and_stops_with_the_session(self) -> None:
        async def main() -> None:
            plugin, notes = make()
            await plugin.start()
            sid = await session(plugin)
            status, _, body = await call(plugin, "POST", "/watch", {"sid": sid, "interval": 0.01, "count": 3})
            assert status == 200 and json.loads(body)["topic"] == "load"
            await asyncio.sleep(0.15)
            assert [(n[0], n[1], n[2]) for n in notes.items] == [("sysinfo", sid, "load")] * 3
            assert [n[3]["seq"] for n in notes.items] == [1, 2, 3] and notes.items[-1][3]["last"] is True
            # an open-ended watch stops when the session closes
            notes.items.clear()
            await call(plugin, "POST", "/watch", {"sid": sid, "interval": 0.01})
            await asyncio.sleep(0.05)
            await call(plugin, "POST", "/unregister_session", {"sid": sid})
            count = len(notes.items)
            assert count >= 1
            await asyncio.sleep(0.05)
            assert len(notes.items) == count
            await plugin.stop()

        asyncio.run(main())

    def test_unwatch(self) -> None:
        async def main() -> None:
            plugin, notes = make()
            sid = await session(plugin)
            _, _, body = await call(plugin, "POST", "/watch", {"sid": sid, "interval": 0.01})
            watch = json.loads(body)["watch"]
            assert (await call(plugin, "POST", "/unwatch", {"sid": sid, "watch": watch}))[0] == 200
            assert (await call(plugin, "POST", "/unwatch", {"sid": sid, "watch": watch}))[0] == 404
            await asyncio.sleep(0.03)
            assert notes.items == []
            await plugin.stop()

        asyncio.run(main())

    def test_watch_validates_its_arguments(self) -> None:
        async def main() -> None:
            plugin, _ = make()
            sid = await session(plugin)
            status, _, body = await call(plugin, "POST", "/watch", {"sid": sid, "interval": 0})
            assert status == 422 and "interval" in json.loads(body)["message"]

        asyncio.run(main())

    def test_test_routes_are_off_by_default_and_say_how_to_turn_them_on(self) -> None:
        async def main() -> None:
            plugin, _ = make()
            sid = await session(plugin)
            asks = [
                ("GET", "/echo", None, ""), ("POST", "/echo/a/b", {"x": 1}, ""), ("PUT", "/echo", None, ""),
                ("GET", "/echo/bytes", None, "n=1000"), ("POST", "/sleep", {"sid": sid, "seconds": 0.01}, ""),
                ("POST", "/sleep", {"not": "valid"}, ""),  # refused before the body is looked at
            ]
            for method, route, body, query in asks:
                status, _, out = await call(plugin, method, route, body, query=query)
                answer = json.loads(out)
                assert status == 404 and answer["code"] == "not_found", (method, route, answer)
                assert "-o sysinfo.test_routes=true" in answer["message"] and "'ep'" in answer["message"]
            assert (await call(plugin, "GET", "/ping"))[0] == 200  # what the relay benchmark calls stays on
            assert (await call(plugin, "POST", "/info", {"sid": sid}))[0] == 200

        asyncio.run(main())

    def test_the_option_turns_them_on_and_is_checked(self) -> None:
        assert make(test_routes=True)[0].test_routes and not make()[0].test_routes
        for bad in ({"test_routes": "yes"}, {"test_routes": 1}, {"echo": True}):
            with pytest.raises(UsageError, match="sysinfo.KEY=VALUE"):
                PluginSysinfo.validate_options(bad)

    def test_echo_any_method(self) -> None:
        plugin, _ = make(test_routes=True)
        payload = bytes(range(256))
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            status, headers, body = asyncio.run(
                call(plugin, method, "/echo/a/b", raw=payload, query="x=1&x=2&y=%20z", headers=[("X-Custom", "v"), ("X-Custom", "w")])
            )
            echo = json.loads(body)
            assert status == 200 and headers["x-echo-method"] == method
            assert echo["method"] == method and echo["path"] == "/echo/a/b"
            assert echo["query"] == "x=1&x=2&y=%20z" and echo["params"] == [["x", "1"], ["x", "2"], ["y", " z"]]
            assert echo["headers"]["x-custom"] == "v, w"
            assert base64.b64decode(echo["body"]) == payload and echo["body_size"] == 256
        status, _, body = asyncio.run(call(plugin, "GET", "/echo", headers=[("x-echo-status", "418")]))
        assert status == 418 and json.loads(body)["path"] == "/echo"
        for odd in ("\u00b2\u00b2\u00b2", "2" * 5000, "199", "600", "x", "", " 201"):  # not a status: 200
            header = [("x-echo-status", odd)]
            assert asyncio.run(call(plugin, "GET", "/echo", headers=header))[0] == 200, odd

    def test_echo_bytes(self) -> None:
        plugin, _ = make(test_routes=True)
        status, headers, body = asyncio.run(call(plugin, "GET", "/echo/bytes", query="n=5000&seed=7"))
        assert status == 200 and len(body) == 5000 and headers["content-type"] == "application/octet-stream"
        assert headers["x-sha256"] == hashlib.sha256(body).hexdigest()
        again = asyncio.run(call(plugin, "GET", "/echo/bytes", query="n=5000&seed=7"))[2]
        assert again == body
        assert asyncio.run(call(plugin, "GET", "/echo/bytes", query="n=0"))[2] == b""
        assert asyncio.run(call(plugin, "GET", "/echo/bytes", query="n=-1"))[0] == 422

    def test_sleep_is_concurrent(self) -> None:
        async def main() -> None:
            plugin, _ = make(test_routes=True)
            sid = await session(plugin)
            t0 = time.monotonic()
            results = await asyncio.gather(*(call(plugin, "POST", "/sleep", {"sid": sid, "seconds": 0.2}) for _ in range(5)))
            assert all(r[0] == 200 for r in results)
            assert time.monotonic() - t0 < 0.6
            assert json.loads(results[0][2])["slept"] >= 0.2

        asyncio.run(main())


class FakeEndpointClient:
    """Records EndpointClient.request calls and answers them from the plugin in-process."""

    def __init__(self, plugin: PluginSysinfo) -> None:
        self.name = "ep"
        self.plugin = plugin
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, plugin: str, route: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((method, route, kwargs))
        body = kwargs.get("json")
        raw = kwargs.get("content")
        query = str(httpx.QueryParams(kwargs.get("params") or {}))
        headers = list((kwargs.get("headers") or {}).items())
        if body is not None:
            headers.append(("content-type", "application/json"))
        data = raw.encode() if isinstance(raw, str) else (raw if raw is not None else (json.dumps(body).encode() if body is not None else None))
        status, out_headers, out = asyncio.run(call(self.plugin, method, f"/{route}", raw=data, query=query, headers=headers))
        return httpx.Response(status, headers=out_headers, content=out)

    def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
        return self.request("POST", plugin, route, json=body, timeout=timeout).json()


class TestSysinfoClient:
    def test_methods_map_to_routes(self) -> None:
        plugin, _ = make(test_routes=True)
        ec = FakeEndpointClient(plugin)
        client = SysinfoClient(ec)  # type: ignore[arg-type]
        assert client.name == "sysinfo" and client.requires_credentials is False
        assert client.ping() is True
        assert client.sid is None
        assert client.info()["cpu_count"] >= 1
        assert client.sid is not None  # lazily registered
        assert client.sleep(0.01) >= 0.01
        assert ec.calls[-1][2]["timeout"] >= 30
        echo = client.echo("PUT", "a/b", params={"q": "1"}, headers={"X-H": "v"}, content=b"\x00\x01")
        assert echo["method"] == "PUT" and echo["path"] == "/echo/a/b" and echo["headers"]["x-h"] == "v"
        assert base64.b64decode(echo["body"]) == b"\x00\x01"
        assert len(client.echo_bytes(100)) == 100
        watch = client.watch(interval=5.0)
        client.unwatch(watch)
        routes = [c[1] for c in ec.calls]
        assert routes == ["ping", "register_session", "info", "sleep", "echo/a/b", "echo/bytes", "watch", "unwatch"]

    def test_client_imports_nothing_server_side(self) -> None:
        code = (
            "import sys; import radical.orbit.plugins.sysinfo.client as c; "
            "from radical.orbit.client.discovery import find_client_class; "
            "assert find_client_class('sysinfo') is c.SysinfoClient; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn', 'globus_sdk') "
            "or m.startswith(('radical.orbit.plugins.sysinfo.plugin', 'radical.orbit.plugins.base', 'radical.orbit.endpoint'))]; "
            "assert not bad, bad"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("name", "settings"), [("sysinfo", {}), ("sysinfo", {"test_routes": True}), ("globus", {})]
)
def test_bundled_plugins_publish_a_consistent_openapi_schema(name: str, settings: dict[str, Any]) -> None:
    """Schema-driven clients and fuzzers read it: unique operation ids (FastAPI warns
    otherwise) and every ``{param}`` in a path declared as a path parameter."""
    import re
    import warnings

    from radical.orbit.plugins.registry import discover_plugins

    (entry,) = [e for e in discover_plugins() if e.name == name]
    assert entry.cls is not None
    plugin = entry.cls(PluginContext(endpoint="ep", notify=lambda *a: None, settings=settings))
    app: Any = plugin.app if hasattr(plugin.app, "openapi") else plugin.app.app  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = app.openapi()
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for path, ops in spec["paths"].items():
        wanted = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (method, path)
