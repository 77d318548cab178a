"""Bridge HTTP routes, auth, registration and the relay, through TestClient."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from bridge_helpers import (
    AUTH,
    TOKEN,
    FakeEndpoint,
    TestClient,
    echo,
    endpoint_headers,
    local_key,
    make_settings,
)
from starlette.testclient import WebSocketDenialResponse, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from radical.orbit.bridge import BridgeApp, create_app
from radical.orbit.models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_REPLACED,
    PluginInfo,
    Request,
    Response,
    decode_body,
)


class TestBridge:
    # -- basics and auth -------------------------------------------------------------

    def test_health_needs_no_token(self, client: TestClient) -> None:
        resp = client.get("/health")
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok"}  # nothing else for callers without a token

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
    @pytest.mark.parametrize("path", ["/endpoints", "/events", "/ep1/sysinfo/ping", "/nope"])
    def test_http_refused_without_right_token(self, client: TestClient, headers: dict[str, str], path: str) -> None:
        resp = client.get(path, headers=headers)
        assert resp.status_code == 401
        body = resp.json()
        assert body["code"] == "unauthorized"
        assert TOKEN not in resp.text
        assert resp.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        ("headers", "status", "says"),
        [
            ({}, 401, "no endpoint key"),
            ({"Authorization": "Bearer wrong", "X-Orbit-Endpoint": "ep1"}, 401, "unknown endpoint key"),
            ({**AUTH, "X-Orbit-Endpoint": "ep1"}, 403, "a client token cannot register an endpoint"),
        ],
        ids=["none", "wrong", "client-token"],
    )
    def test_ws_refused_before_the_upgrade(self, client: TestClient, headers: dict[str, str], status: int, says: str) -> None:
        """No WebSocket is accepted without an endpoint key: the upgrade request gets an HTTP status."""
        with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws/endpoint", headers=dict(headers)):
            raise AssertionError("the bridge accepted the WebSocket")
        assert info.value.status_code == status
        assert says in info.value.json()["message"] and TOKEN not in info.value.text
        assert client.get("/endpoints", headers=AUTH).json()["endpoints"] == []

    def test_no_auth_mode(self) -> None:
        """--no-auth opens the client side only: endpoints still prove their key."""
        with TestClient(create_app(make_settings(auth=False, token=None))) as tc:
            assert tc.get("/endpoints").status_code == 200
            with FakeEndpoint(tc) as ep:
                assert ep.registered["name"] == "ep1"
            with pytest.raises(WebSocketDenialResponse) as info, tc.websocket_connect("/ws/endpoint", headers={"X-Orbit-Endpoint": "ep2"}):
                raise AssertionError("the bridge accepted an endpoint without a key")
            assert info.value.status_code == 401

    def test_unknown_admin_route_is_404_json(self, client: TestClient) -> None:
        resp = client.get("/nope", headers=AUTH)
        assert resp.status_code == 404
        assert resp.json()["code"] == "not_found"

    # -- registration ----------------------------------------------------------------

    def test_register_list_and_disconnect(self, client: TestClient) -> None:
        plugins = [PluginInfo(name="sysinfo", version="1.0"), PluginInfo(name="globus", enabled=False, reason="globus-sdk missing")]
        with FakeEndpoint(client, "ep1", plugins) as ep:
            assert ep.registered["heartbeat_interval"] == 30.0
            listing = client.get("/endpoints", headers=AUTH).json()["endpoints"]
            assert [e["name"] for e in listing] == ["ep1"]
            info = listing[0]
            assert info["alive"] is True and info["inflight"] == 0 and info["version"] == "9.9"
            assert info["host"] == {"hostname": "test"}
            assert {p["name"]: p["enabled"] for p in info["plugins"]} == {"sysinfo": True, "globus": False}
            assert info["plugins"][1]["reason"] == "globus-sdk missing"
            assert client.post("/endpoint/list", headers=AUTH).json()["endpoints"] == listing
            assert client.get("/endpoints/ep1", headers=AUTH).json()["name"] == "ep1"
            assert client.get("/endpoints/EP1", headers=AUTH).json()["name"] == "ep1"  # names are case-insensitive
        deadline = time.monotonic() + 5
        while client.get("/endpoints", headers=AUTH).json()["endpoints"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/endpoints", headers=AUTH).json()["endpoints"] == []
        resp = client.get("/endpoints/ep1", headers=AUTH)
        assert resp.status_code == 404 and resp.json()["code"] == "endpoint_not_found"

    def test_same_key_takes_its_name_over(self, client: TestClient) -> None:
        """An endpoint that reconnects before the bridge noticed its old socket died gets
        its name back at once; the old socket is closed with 4009 "replaced"."""
        with FakeEndpoint(client, "ep1") as first:
            assert first.ws is not None
            with FakeEndpoint(client, "EP1") as second:  # the same key, another case: the same name
                assert second.registered["name"] == "ep1"  # the case it was first claimed with
                with pytest.raises(WebSocketDisconnect) as info:
                    while True:
                        first.ws.receive_json()
                assert info.value.code == CLOSE_REPLACED and info.value.reason == "replaced"
                listing = client.get("/endpoints", headers=AUTH).json()["endpoints"]
                assert [e["name"] for e in listing] == ["ep1"]

    @pytest.mark.parametrize(
        ("name", "says"),
        [("events", "reserved"), ("Health", "reserved"), ("bad/name", "invalid endpoint name"), ("", "invalid endpoint name"), (None, "missing X-Orbit-Endpoint")],
    )
    def test_bad_name_refused_before_the_upgrade(self, client: TestClient, name: str | None, says: str) -> None:
        headers = {"Authorization": f"Bearer {local_key()}"} | ({} if name is None else {"X-Orbit-Endpoint": name})
        with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws/endpoint", headers=headers):
            raise AssertionError("the bridge accepted the WebSocket")
        assert info.value.status_code == 400 and says in info.value.json()["message"]

    @pytest.mark.parametrize(
        ("first", "code", "close_code"),
        [
            ({"type": "register", "name": "bad/name"}, "bad_frame", CLOSE_PROTOCOL_ERROR),
            ({"type": "register", "name": "other"}, "name_mismatch", CLOSE_PROTOCOL_ERROR),
            ({"type": "register", "name": "EP"}, "name_mismatch", CLOSE_PROTOCOL_ERROR),
            ({"type": "register", "name": "ep", "v": 99}, "bad_version", CLOSE_BAD_VERSION),
            ({"type": "ping", "ts": 1.0}, "bad_frame", CLOSE_PROTOCOL_ERROR),
            ("not json at all", "bad_frame", CLOSE_PROTOCOL_ERROR),
        ],
    )
    def test_bad_registration_refused(self, client: TestClient, first: object, code: str, close_code: int) -> None:
        with client.websocket_connect("/ws/endpoint", headers=endpoint_headers("ep")) as ws:
            ws.send_text(first if isinstance(first, str) else json.dumps(first))
            frame = ws.receive_json()
            assert frame["type"] == "error" and frame["code"] == code, frame
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
            assert info.value.code == close_code
        assert client.get("/endpoints", headers=AUTH).json()["endpoints"] == []

    def test_malformed_frames_survive(self, client: TestClient) -> None:
        with FakeEndpoint(client) as ep:
            assert ep.ws is not None
            bads = ["{", json.dumps({"type": "bogus"}), json.dumps({"type": "response", "id": 1}), '{"type":"response","id":2}', "[]"]
            for bad in bads:
                ep.ws.send_text(bad)
                frame = ep.ws.receive_json()
                assert frame["type"] == "error" and frame["code"] == "bad_frame", frame
            ep.ws.send_json({"type": "request", "id": "x", "method": "GET", "path": "/"})
            frame = ep.ws.receive_json()
            assert frame["code"] == "unexpected_frame" and frame["ref"] == "x"
            ep.ws.send_json({"type": "ping", "ts": 5.0})
            assert ep.ws.receive_json() == {"type": "pong", "ts": 5.0}
            # a response nobody waits for is dropped quietly
            ep.ws.send_json({"type": "response", "id": "nobody", "status": 200})
            ep.serve(echo)
            resp = client.get("/ep1/sysinfo/ping", headers=AUTH)
            assert resp.status_code == 200

    # -- relay -----------------------------------------------------------------------

    def test_relay_round_trip(self, client: TestClient) -> None:
        with FakeEndpoint(client) as ep:
            ep.serve(echo)
            resp = client.post(
                "/ep1/sysinfo/a/b?x=1&y=two",
                headers={**AUTH, "X-Custom": "v", "Connection": "keep-alive", "X-Request-ID": "client-chosen"},
                content=b"hello",
            )
            assert resp.status_code == 200
            assert resp.headers["x-echo"] == "yes"
            got = resp.json()
            assert got["method"] == "POST" and got["path"] == "/sysinfo/a/b" and got["query"] == "x=1&y=two"
            assert got["body"] == "hello"
            headers = {k: v for k, v in got["headers"]}
            assert headers["x-custom"] == "v"
            assert "authorization" not in headers and "host" not in headers and "connection" not in headers
            assert headers["x-request-id"] == got["id"] and len(got["id"]) == 32
            assert resp.headers["x-request-id"] == got["id"]
            # plugin root, binary body, other methods
            for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"]:
                r = client.request(method, "/ep1/sysinfo", headers=AUTH, content=bytes(range(256)))
                g = r.json()
                assert g["method"] == method and g["path"] == "/sysinfo"
                assert g["body_encoding"] == "base64" and base64.b64decode(g["body"]) == bytes(range(256))

    def test_relay_frame_matches_model(self, client: TestClient) -> None:
        """The relay writes the request frame by hand (speed); it must equal the model's."""
        with FakeEndpoint(client) as ep:
            assert ep.ws is not None
            with ThreadPoolExecutor(1) as pool:
                fut = pool.submit(
                    client.put, "/ep1/sysinfo/h\u00e9/x?q=%C3%A9", headers={**AUTH, "X-Orbit-Timeout": "5"}, content="grüße \"x\"\n".encode()
                )
                raw = ep.ws.receive_text()
                frame = Request.model_validate_json(raw)
                assert raw == frame.model_dump_json()
                assert frame.path == "/sysinfo/h\u00e9/x" and frame.query == "q=%C3%A9" and frame.body == "grüße \"x\"\n"
                assert ("x-orbit-timeout", "5") in frame.headers
                ep.ws.send_text(Response(id=frame.id, status=204).model_dump_json())
                assert fut.result(timeout=5).status_code == 204

    def test_relay_passes_status_headers_and_binary_body(self, client: TestClient) -> None:
        def handler(frame: Request) -> Response:
            return Response(
                id=frame.id,
                status=418,
                headers=[("content-type", "application/octet-stream"), ("x-a", "1"), ("content-length", "999"), ("transfer-encoding", "chunked")],
                body=base64.b64encode(b"\x00\xff\x10").decode(),
                body_encoding="base64",
            )

        with FakeEndpoint(client) as ep:
            ep.serve(handler)
            resp = client.get("/ep1/sysinfo/x", headers=AUTH)
            assert resp.status_code == 418
            assert resp.content == b"\x00\xff\x10"
            assert resp.headers["x-a"] == "1" and resp.headers["content-length"] == "3"
            assert "transfer-encoding" not in resp.headers

    def test_bad_endpoint_answers_are_502(self, client: TestClient) -> None:
        def handler(frame: Request) -> Response:
            if frame.path.endswith("/status"):
                return Response(id=frame.id, status=42)
            return Response(id=frame.id, status=200, headers=[("X-Name", "abc")], body="ok")

        with FakeEndpoint(client) as ep:
            ep.serve(handler)
            resp = client.get("/ep1/sysinfo/status", headers=AUTH)
            assert resp.status_code == 502 and "the status 42 is not a final HTTP status" in resp.json()["message"]
            resp = client.get("/ep1/sysinfo/header", headers=AUTH)
            assert resp.status_code == 200 and resp.headers["x-name"] == "abc"

    def test_unknown_endpoint_and_plugin(self, client: TestClient) -> None:
        resp = client.get("/ghost/sysinfo/x", headers=AUTH)
        assert resp.status_code == 404
        assert resp.json()["code"] == "endpoint_not_found" and "ghost" in resp.json()["message"]
        plugins = [PluginInfo(name="sysinfo"), PluginInfo(name="globus", enabled=False, reason="no globus-sdk")]
        with FakeEndpoint(client, plugins=plugins):
            resp = client.get("/ep1/nope/x", headers=AUTH)
            body = resp.json()
            assert resp.status_code == 404 and body["code"] == "plugin_not_found"
            assert "'nope'" in body["message"] and "globus, sysinfo" in body["message"]
            assert body["details"]["available"] == ["globus", "sysinfo"]
            resp = client.get("/ep1/globus/ls", headers=AUTH)
            assert resp.status_code == 503 and resp.json()["code"] == "plugin_disabled"
            assert "no globus-sdk" in resp.json()["message"]

    def test_body_too_large(self) -> None:
        with TestClient(create_app(make_settings(max_body=10))) as tc, FakeEndpoint(tc) as ep:
            ep.serve(echo)
            assert tc.post("/ep1/sysinfo/x", headers=AUTH, content=b"0123456789").status_code == 200
            resp = tc.post("/ep1/sysinfo/x", headers=AUTH, content=b"0123456789A")
            assert resp.status_code == 413 and resp.json()["code"] == "payload_too_large"

            def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
                yield b"012345"
                yield b"6789AB"

            resp = tc.post("/ep1/sysinfo/x", headers=AUTH, content=chunks())
            assert resp.status_code == 413

    def test_frame_limits_are_exchanged_and_kept(self) -> None:
        """The bridge announces its frame limit; a request whose frame would exceed the
        endpoint's announced limit is a 413, and the endpoint's socket stays up."""
        with TestClient(create_app(make_settings(max_body=40 * 2**20))) as tc, FakeEndpoint(tc, max_frame=2**16) as ep:
            assert ep.registered["max_frame"] == 2 * 40 * 2**20 + 2**20
            ep.serve(echo)
            assert tc.post("/ep1/sysinfo/x", headers=AUTH, content=b"\xff" * 40_000).status_code == 200  # 53 KB as base64
            resp = tc.post("/ep1/sysinfo/x", headers=AUTH, content=b"\xff" * 50_000)  # 67 KB as base64
            error = resp.json()
            assert resp.status_code == 413 and error["code"] == "payload_too_large", error
            assert "POST /ep1/sysinfo/x" in error["message"] and "endpoint 'ep1' accepts (65536)" in error["message"]
            assert error["details"]["limit"] == 2**16 and error["details"]["size"] > 2**16
            assert tc.post("/ep1/sysinfo/x", headers=AUTH, content=b"still here").status_code == 200
        with TestClient(create_app(make_settings())) as tc, FakeEndpoint(tc) as ep:
            assert ep.registered["max_frame"] == 64 * 2**20  # never below the protocol's default

    def test_timeout_is_504(self, client: TestClient) -> None:
        with FakeEndpoint(client) as ep:
            ep.serve(lambda frame: None)
            t0 = time.monotonic()
            resp = client.get("/ep1/sysinfo/slow", headers={**AUTH, "X-Orbit-Timeout": "0.2"})
            assert resp.status_code == 504 and resp.json()["code"] == "timeout"
            assert time.monotonic() - t0 < 5
            assert client.get("/endpoints/ep1", headers=AUTH).json()["inflight"] == 0
            bad = client.get("/ep1/sysinfo/slow", headers={**AUTH, "X-Orbit-Timeout": "soon"})
            assert bad.status_code == 400 and "X-Orbit-Timeout" in bad.json()["message"]

    def test_default_timeout(self) -> None:
        with TestClient(create_app(make_settings(request_timeout=0.1))) as tc, FakeEndpoint(tc) as ep:
            ep.serve(lambda frame: None)
            assert tc.get("/ep1/sysinfo/slow", headers=AUTH).status_code == 504

    def test_endpoint_lost_mid_request_is_503(self, client: TestClient) -> None:
        ep = FakeEndpoint(client)
        ep.register()
        arrived = threading.Event()

        def handler(frame: Request) -> None:
            arrived.set()

        ep.serve(handler)
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(client.get, "/ep1/sysinfo/slow", headers=AUTH)
            assert arrived.wait(5)
            ep.close()
            resp = fut.result(timeout=10)
        assert resp.status_code == 503
        assert resp.json()["code"] == "endpoint_unavailable" and "ep1" in resp.json()["message"]

    def test_error_frame_with_ref_fails_request_502(self, client: TestClient) -> None:
        with FakeEndpoint(client) as ep:
            assert ep.ws is not None

            def handler(frame: Request) -> None:
                assert ep.ws is not None
                ep.ws.send_json({"type": "error", "code": "boom", "message": "cannot", "ref": frame.id})

            ep.serve(handler)
            resp = client.get("/ep1/sysinfo/x", headers=AUTH)
            assert resp.status_code == 502 and "cannot" in resp.json()["message"]

    def test_32_concurrent_requests_correlate(self, client: TestClient) -> None:
        """Regression (original Orbit): concurrent clients received each other's answers."""
        gate = threading.Barrier(32, timeout=10)
        pending: list[Request] = []
        lock = threading.Lock()
        with FakeEndpoint(client) as ep:
            assert ep.ws is not None

            def handler(frame: Request) -> None:
                # hold all 32, then answer in reverse order
                with lock:
                    pending.append(frame)
                    if len(pending) < 32:
                        return
                    batch = list(reversed(pending))
                for f in batch:
                    assert ep.ws is not None
                    ep.ws.send_text(echo(f).model_dump_json())
                return

            ep.serve(handler)

            def call(i: int) -> tuple[int, dict[str, object]]:
                gate.wait()
                r = client.post(f"/ep1/sysinfo/call/{i}?i={i}", headers=AUTH, content=f"payload-{i}".encode())
                return r.status_code, r.json()

            with ThreadPoolExecutor(32) as pool:
                results = list(pool.map(call, range(32)))
        ids = set()
        for i, (status, body) in enumerate(results):
            assert status == 200
            assert body["path"] == f"/sysinfo/call/{i}" and body["query"] == f"i={i}" and body["body"] == f"payload-{i}"
            ids.add(body["id"])
        assert len(ids) == 32

    def test_relay_response_body_decoding(self) -> None:
        assert decode_body("aGk=", "base64") == b"hi"


class TestHeartbeatAndEvents:
    def test_silent_endpoint_dropped_with_topology_event(self) -> None:
        app = create_app(make_settings(heartbeat_interval=0.1))
        with TestClient(app) as tc:
            ep = FakeEndpoint(tc)
            assert ep.register()["heartbeat_interval"] == 0.1
            assert ep.ws is not None
            t0 = time.monotonic()
            pings = 0
            with pytest.raises(WebSocketDisconnect) as info:
                while True:  # read pings, never answer
                    frame = ep.ws.receive_json()
                    assert frame["type"] == "ping"
                    pings += 1
            elapsed = time.monotonic() - t0
            from radical.orbit.models.messages import CLOSE_HEARTBEAT_TIMEOUT

            assert info.value.code == CLOSE_HEARTBEAT_TIMEOUT
            assert pings >= 2 and 0.25 <= elapsed < 1.5
            assert tc.get("/endpoints", headers=AUTH).json()["endpoints"] == []
            topics = [(e.topic, e.endpoint) for e in app.hub.buffer]
            assert topics == [("endpoint_connected", "ep1"), ("endpoint_dropped", "ep1")]
            ep.close()

    def test_pongs_keep_endpoint_alive(self) -> None:
        app = create_app(make_settings(heartbeat_interval=0.05))
        with TestClient(app) as tc, FakeEndpoint(tc) as ep:
            assert ep.ws is not None
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:
                frame = ep.ws.receive_json()
                assert frame["type"] == "ping"
                ep.ws.send_json({"type": "pong", "ts": frame["ts"]})
            assert [e["name"] for e in tc.get("/endpoints", headers=AUTH).json()["endpoints"]] == ["ep1"]

    def test_notifications_and_disconnect_become_events(self) -> None:
        from radical.orbit.models.messages import session_tag

        app = create_app(make_settings())
        with TestClient(app) as tc:
            with FakeEndpoint(tc) as ep:
                assert ep.ws is not None
                ep.ws.send_json(
                    {"type": "notification", "plugin": "sysinfo", "topic": "load", "sid": "secret-sid", "payload": {"x": 1}, "ts": 1.5, "dropped": 3}
                )
                ep.ws.send_json({"type": "ping", "ts": 0.0})
                assert ep.ws.receive_json()["type"] == "pong"  # the notification was handled before
            deadline = time.monotonic() + 5
            while len(app.hub.buffer) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            events = list(app.hub.buffer)
            assert [e.topic for e in events] == ["endpoint_connected", "load", "endpoint_disconnected"]
            note = json.loads(events[1].chunk.split("data: ", 1)[1])
            assert note["session"] == session_tag("secret-sid") and "secret-sid" not in events[1].chunk
            assert note["payload"] == {"x": 1} and note["ts"] == 1.5 and note["dropped"] == 3
            assert note["plugin"] == "sysinfo" and note["endpoint"] == "ep1" and note["kind"] == "notification"
            topo = json.loads(events[2].chunk.split("data: ", 1)[1])
            assert topo["kind"] == "topology" and topo["plugin"] is None and topo["payload"]["name"] == "ep1"


    def test_numbered_notifications_are_acknowledged_and_a_resend_is_stored_once(self) -> None:
        """The endpoint lost its connection before it saw the ack: it sends 2 and 3 again."""

        def note(seq: int) -> str:
            return json.dumps({"type": "notification", "plugin": "sysinfo", "topic": "load", "payload": {"n": seq}, "ts": 1.0, "seq": seq})

        def loads(app: BridgeApp) -> list[int]:
            return [json.loads(e.chunk.split("data: ", 1)[1])["payload"]["n"] for e in app.hub.buffer if e.topic == "load"]

        def acked_up_to(ws: WebSocketTestSession, seq: int) -> None:
            acked = 0
            while acked < seq:  # cumulative: one ack may cover several
                frame = ws.receive_json()
                assert frame["type"] == "ack" and frame["seq"] > acked, frame
                acked = frame["seq"]
            assert acked == seq

        app = create_app(make_settings())
        with TestClient(app) as tc:
            with FakeEndpoint(tc, run="run-1") as ep:
                assert ep.ws is not None and ep.registered["acks"] is True
                for seq in (1, 2, 3):
                    ep.ws.send_text(note(seq))
                acked_up_to(ep.ws, 3)
            with FakeEndpoint(tc, run="run-1") as ep:  # the same process, a new connection
                assert ep.ws is not None
                for seq in (2, 3, 4):
                    ep.ws.send_text(note(seq))
                acked_up_to(ep.ws, 4)  # the resent ones are acknowledged too: the endpoint may forget them
            assert loads(app) == [1, 2, 3, 4]
            with FakeEndpoint(tc, run="run-2") as ep:  # a restarted endpoint counts from 1 again
                assert ep.ws is not None
                ep.ws.send_text(note(1))
                acked_up_to(ep.ws, 1)
            assert loads(app) == [1, 2, 3, 4, 1]
            with FakeEndpoint(tc) as ep:  # an endpoint that does not number them is never acknowledged
                assert ep.ws is not None
                ep.ws.send_json({"type": "notification", "plugin": "sysinfo", "topic": "load", "payload": {"n": 9}, "ts": 1.0})
                ep.ws.send_json({"type": "ping", "ts": 0.0})
                assert ep.ws.receive_json()["type"] == "pong"
            assert loads(app) == [1, 2, 3, 4, 1, 9]


def test_a_single_bridge_says_only_ok_on_health(client: TestClient) -> None:
    """No replica id, no Redis state: a lone bridge's /health is what it always was."""
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}
