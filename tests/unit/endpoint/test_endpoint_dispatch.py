"""dispatch.py: Request frame -> ASGI scope -> plugin app -> Response frame."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from radical.orbit.endpoint.dispatch import (
    Dispatcher,
    HostedPlugin,
    build_scope,
    call_asgi,
    error_response,
)
from radical.orbit.errors import OrbitError
from radical.orbit.models.messages import (
    Request,
    Response,
    decode_body,
    dump_frame,
    dump_response,
    encode_body,
    parse_frame,
)


def frame(method: str, path: str, *, body: bytes = b"", query: str = "", headers: list[tuple[str, str]] | None = None) -> Request:
    text, encoding = encode_body(body)
    return Request(id="rid-1", method=method, path=path, query=query, headers=headers or [], body=text, body_encoding=encoding)


class Recorder:
    """A raw ASGI app that records what it got and answers a fixed binary body."""

    def __init__(self, status: int = 201, body: bytes = b"\x00\x01\xfe\xff", chunks: int = 1, delay: float = 0.0) -> None:
        self.status, self.body, self.chunks, self.delay = status, body, chunks, delay
        self.scope: Scope | None = None
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.received.append(await receive())
        if self.delay:
            await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"x-out", b"1"), (b"content-type", b"application/octet-stream")]})
        step = max(len(self.body) // self.chunks, 1)
        parts = [self.body[i : i + step] for i in range(0, len(self.body), step)] or [b""]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})


def handle(dispatcher: Dispatcher, req: Request) -> Response:
    return asyncio.run(dispatcher.handle(req))


def body_json(resp: Response) -> Any:
    return json.loads(decode_body(resp.body, resp.body_encoding))


class TestDispatch:
    def test_scope_is_rooted_at_the_plugin(self) -> None:
        req = frame("post", "/demo/a/b c", query="x=1&y=%20", headers=[("X-Custom", "v"), ("Content-Type", "text/plain")])
        scope = build_scope(req, "/a/b c")
        assert scope["type"] == "http" and scope["method"] == "POST"
        assert scope["path"] == "/a/b c" and scope["raw_path"] == b"/a/b%20c"
        assert scope["query_string"] == b"x=1&y=%20" and scope["root_path"] == ""
        assert (b"x-custom", b"v") in scope["headers"] and (b"content-type", b"text/plain") in scope["headers"]
        assert scope["asgi"]["version"] == "3.0"

    def test_status_headers_and_binary_body_round_trip(self) -> None:
        app = Recorder(status=201, body=bytes(range(256)) * 10, chunks=7)
        dispatcher = Dispatcher({"demo": HostedPlugin("demo", app)})
        payload = bytes(range(256))
        resp = handle(dispatcher, frame("PUT", "/demo/up", body=payload, query="q=1"))
        assert resp.id == "rid-1" and resp.status == 201
        assert ("x-out", "1") in resp.headers
        assert resp.body_encoding == "base64"
        assert decode_body(resp.body, resp.body_encoding) == bytes(range(256)) * 10
        assert app.scope is not None and app.scope["path"] == "/up"
        assert app.received == [{"type": "http.request", "body": payload, "more_body": False}]

    def test_plugin_root_path(self) -> None:
        app = Recorder()
        handle(Dispatcher({"demo": HostedPlugin("demo", app)}), frame("GET", "/demo"))
        assert app.scope is not None and app.scope["path"] == "/"

    def test_unknown_plugin_is_404_listing_the_plugins(self) -> None:
        dispatcher = Dispatcher({"demo": HostedPlugin("demo", Recorder()), "other": HostedPlugin("other", Recorder())})
        resp = handle(dispatcher, frame("GET", "/nope/x"))
        body = body_json(resp)
        assert resp.status == 404 and body["code"] == "plugin_not_found"
        assert "'nope'" in body["message"] and "demo, other" in body["message"]
        assert body["request_id"] == "rid-1"

    def test_disabled_plugin_is_503_with_reason(self) -> None:
        resp = handle(Dispatcher({"g": HostedPlugin("g", None, "install radical.orbit[globus]")}), frame("GET", "/g/x"))
        assert resp.status == 503 and body_json(resp)["code"] == "plugin_disabled"
        assert "install radical.orbit[globus]" in body_json(resp)["message"]

    def test_failing_app_is_a_500_not_a_crash(self) -> None:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            raise KeyError("boom")

        async def silent(scope: Scope, receive: Receive, send: Send) -> None:
            return None

        dispatcher = Dispatcher({"b": HostedPlugin("b", broken), "s": HostedPlugin("s", silent)})
        for path in ("/b/x", "/s/x"):
            resp = handle(dispatcher, frame("GET", path))
            assert resp.status == 500 and body_json(resp)["code"] == "internal_error"

    def test_receive_reports_disconnect_after_the_response(self) -> None:
        seen: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(await receive())
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            seen.append(await asyncio.wait_for(receive(), 1))

        status, _, body = asyncio.run(call_asgi(app, build_scope(frame("GET", "/p/x"), "/x"), b"abc"))
        assert status == 200 and body == b"ok"
        assert seen[1] == {"type": "http.disconnect"}

    def test_requests_run_concurrently(self) -> None:
        dispatcher = Dispatcher({"slow": HostedPlugin("slow", Recorder(delay=0.5)), "fast": HostedPlugin("fast", Recorder())})

        async def main() -> list[float]:
            t0 = time.monotonic()
            done: list[float] = []

            async def one(path: str) -> None:
                await dispatcher.handle(frame("GET", path))
                done.append(time.monotonic() - t0)

            await asyncio.gather(one("/slow/x"), *(one("/fast/x") for _ in range(5)))
            return done

        done = asyncio.run(main())
        assert max(done[:5]) < 0.3 and done[-1] >= 0.5

    def test_non_latin1_header_values_do_not_break_dispatch(self) -> None:
        app = Recorder()
        resp = handle(Dispatcher({"demo": HostedPlugin("demo", app)}), frame("GET", "/demo/x", headers=[("x-name", "café ☃")], query="q=☃"))
        assert resp.status == 201
        assert app.scope is not None and (b"x-name", "café ☃".encode()) in app.scope["headers"]


@pytest.mark.parametrize(
    "response",
    [
        Response(id="r1", status=200, headers=[("content-type", "application/json")], body='{"pong":true}'),
        Response(id="r2", status=204),
        Response(id="r3", status=201, headers=[("x-naïve", "café"), ("x-ctl", "a\tb")], body="ünïcode \u2028 \"quoted\" \\ \n\x01"),
        Response(id="r4", status=200, headers=[], body="AAEC/w==", body_encoding="base64"),
        error_response("r5", OrbitError("boom")),
    ],
)
def test_response_frame_text_matches_the_model(response: Response) -> None:
    """The endpoint's hand-serialised response frame is the model's own JSON, byte for byte."""
    text = dump_response(response)
    assert text == dump_frame(response)
    assert parse_frame(text) == response
