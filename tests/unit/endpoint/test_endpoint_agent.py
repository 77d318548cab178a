"""EndpointAgent against a fake bridge on 127.0.0.1: register, relay, heartbeat, reconnect."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from endpoint_fakes import KEY, FakeBridge
from pydantic import SecretStr

from radical.orbit.config import write_private_path
from radical.orbit.endpoint.agent import Backoff, EndpointAgent
from radical.orbit.errors import (
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    UsageError,
)
from radical.orbit.models.messages import (
    CLOSE_BAD_VERSION,
    CLOSE_NAME_RESERVED,
    CLOSE_NAME_TAKEN,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    PluginInfo,
    decode_body,
)
from radical.orbit.models.messages import Response as ResponseFrame
from radical.orbit.plugins.registry import PluginEntry, discover_plugins


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    async def _with_timeout() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(_with_timeout())


def body_of(resp: ResponseFrame) -> Any:
    return json.loads(decode_body(resp.body, resp.body_encoding))


async def started(agent: EndpointAgent) -> asyncio.Task[None]:
    task = asyncio.create_task(agent.run())
    await agent.wait_registered(5)
    return task


async def stopped(agent: EndpointAgent, task: asyncio.Task[None]) -> None:
    agent.stop()
    await asyncio.wait_for(task, 10)


async def open_session(bridge: FakeBridge) -> str:
    resp = await bridge.request("POST", "/sysinfo/register_session", body=b"{}")
    assert resp.status == 200
    return str(body_of(resp)["sid"])


def post(bridge: FakeBridge, route: str, **body: Any) -> Awaitable[ResponseFrame]:
    return bridge.request("POST", f"/sysinfo/{route}", body=json.dumps(body).encode())


class TestEndpointAgent:
    def test_register_lists_enabled_and_disabled_plugins(self) -> None:
        entries = discover_plugins(["sysinfo"]) + [
            PluginEntry("broken", None, PluginInfo(name="broken", enabled=False, reason="needs a GPU"))
        ]

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(), entries)
                task = await started(agent)
                register = bridge.registers[0]
                assert register.name == "ep1"
                assert register.host["hostname"]
                assert register.version
                by_name = {p.name: p for p in register.plugins}
                assert by_name["sysinfo"].enabled and by_name["sysinfo"].reason is None
                assert not by_name["broken"].enabled and by_name["broken"].reason == "needs a GPU"
                resp = await bridge.request("GET", "/broken/anything")
                assert resp.status == 503 and body_of(resp)["code"] == "plugin_disabled"
                assert "needs a GPU" in body_of(resp)["message"]
                await stopped(agent, task)

        run(main())

    def test_plugin_failing_to_start_is_reported_disabled(self) -> None:
        from fastapi import APIRouter

        from radical.orbit.plugins.base import Plugin

        class PluginBroken(Plugin):
            name = "broken"

            async def start(self) -> None:
                await super().start()
                raise OSError("port in use")

            def add_routes(self, router: APIRouter) -> None:
                pass

        entries = discover_plugins(["sysinfo"]) + [PluginEntry("broken", PluginBroken, PluginInfo(name="broken"))]

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(), entries)
                task = await started(agent)
                info = {p.name: p for p in bridge.registers[0].plugins}["broken"]
                assert not info.enabled and info.reason == "failed to start: OSError: port in use"
                assert "broken" not in agent.plugins
                assert (await bridge.request("GET", "/broken/")).status == 503
                await stopped(agent, task)

        run(main())

    def test_stop_before_run_returns_at_once(self) -> None:
        agent = EndpointAgent(FakeBridge(port=1).settings())
        agent.stop()
        run(agent.run(), timeout=5)
        assert agent.registrations == 0

    def test_relay_json_binary_and_unknown_plugin(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                resp = await bridge.request("GET", "/sysinfo/ping")
                assert resp.status == 200 and body_of(resp) == {"pong": True}
                resp = await bridge.request("GET", "/sysinfo/echo/bytes", query="n=1000&seed=3")
                data = decode_body(resp.body, resp.body_encoding)
                assert resp.status == 200 and len(data) == 1000 and resp.body_encoding == "base64"
                assert ("content-type", "application/octet-stream") in resp.headers
                resp = await bridge.request(
                    "PATCH", "/sysinfo/echo/x/y", query="a=1&a=2", headers=[("X-Thing", "v")], body=b"\x00\xff\x10"
                )
                echo = body_of(resp)
                assert echo["method"] == "PATCH" and echo["path"] == "/echo/x/y"
                assert echo["params"] == [["a", "1"], ["a", "2"]] and echo["headers"]["x-thing"] == "v"
                assert echo["body"] == "AP8Q"
                resp = await bridge.request("GET", "/nope/route")
                assert resp.status == 404
                assert body_of(resp)["code"] == "plugin_not_found" and "sysinfo" in body_of(resp)["message"]
                await stopped(agent, task)

        run(main())

    def test_answer_over_the_bridges_frame_limit_is_a_502_not_a_lost_socket(self, caplog: pytest.LogCaptureFixture) -> None:
        """A frame over the announced limit would make the bridge close the socket
        (1009) and fail every request in flight; the endpoint answers 502 instead."""

        async def main() -> None:
            async with FakeBridge(max_frame=2**16) as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                assert bridge.registers[-1].max_frame == agent.settings.max_message  # its own limit, announced
                assert agent.bridge_max_frame == 2**16
                ok = await bridge.request("GET", "/sysinfo/echo/bytes", query="n=40000")  # 53 KB as base64
                assert ok.status == 200 and len(decode_body(ok.body, ok.body_encoding)) == 40000
                slow = bridge.request_nowait("POST", "/sysinfo/sleep", body=json.dumps({"sid": await open_session(bridge), "seconds": 0.3}).encode())
                big = await bridge.request("GET", "/sysinfo/echo/bytes", query="n=60000")  # 80 KB as base64
                error = body_of(big)
                assert big.status == 502 and error["code"] == "response_too_large", error
                message = error["message"]
                assert "GET /sysinfo/echo/bytes" in message and "endpoint 'ep1'" in message and "65536" in message, message
                assert "--max-body" in message and error["details"]["limit"] == 2**16 and error["details"]["size"] > 80000
                assert (await asyncio.wait_for(slow, 5)).status == 200  # the request in flight was not lost
                assert agent.registrations == 1 and len(bridge.connections) == 1
                await stopped(agent, task)

        with caplog.at_level(logging.WARNING, logger="radical.orbit.endpoint.connection"):
            run(main())
        assert any("over the bridge's 65536" in r.getMessage() for r in caplog.records)

    def test_a_bridge_that_announces_no_limit_means_64_mib(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                assert agent.bridge_max_frame == 64 * 2**20
                await stopped(agent, task)

        run(main())

    def test_slow_request_does_not_block_a_fast_one(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                sid = await open_session(bridge)
                slow = bridge.request_nowait(
                    "POST", "/sysinfo/sleep", body=json.dumps({"sid": sid, "seconds": 1.0}).encode()
                )
                t0 = time.monotonic()
                fast = await post(bridge, "info", sid=sid)
                assert fast.status == 200 and time.monotonic() - t0 < 0.8
                assert not slow.done()
                assert (await asyncio.wait_for(slow, 5)).status == 200
                await stopped(agent, task)

        run(main())

    def test_pings_are_answered_and_sent(self) -> None:
        async def main() -> None:
            async with FakeBridge(heartbeat=0.1) as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                await asyncio.sleep(0.5)
                assert bridge.pings >= 2  # the agent pings at the bridge's interval
                assert agent.registrations == 1  # the bridge answered: no reconnect
                await stopped(agent, task)

        run(main())

    def test_malformed_frame_gets_an_error_frame_not_a_crash(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                await bridge.send_raw('{"type": "request", "id": 5}')
                await bridge.send_raw("not json")
                resp = await bridge.request("GET", "/sysinfo/ping")
                assert resp.status == 200
                assert len(bridge.errors) == 2 and agent.registrations == 1
                await stopped(agent, task)

        run(main())

    def test_reconnects_and_reregisters_after_bridge_restart(self) -> None:
        async def main() -> None:
            bridge = await FakeBridge().start()
            agent = EndpointAgent(bridge.settings())
            task = await started(agent)
            sid = await open_session(bridge)
            await bridge.stop()
            await asyncio.sleep(0.05)
            assert not agent.connected
            # notifications raised while disconnected are kept
            agent.notify("sysinfo", sid, "offline", {"n": 1})
            bridge2 = await FakeBridge(port=bridge.port).start()
            await asyncio.wait_for(bridge2.registered.wait(), 5)
            await agent.wait_registered(5)
            assert agent.registrations == 2
            assert bridge2.registers[0].name == "ep1"
            notes = await bridge2.wait_notifications(1)
            assert notes[0].topic == "offline" and notes[0].payload == {"n": 1} and notes[0].dropped == 0
            resp = await bridge2.request("GET", "/sysinfo/ping")
            assert resp.status == 200
            await stopped(agent, task)
            await bridge2.stop()

        run(main())

    def test_notifications_the_bridge_did_not_acknowledge_are_sent_again_on_the_next_connection(self) -> None:
        """The bridge (replica) went away after receiving 2 and 3 but before storing them."""

        async def main() -> None:
            bridge = await FakeBridge(acks=True, hold_acks=True).start()
            agent = EndpointAgent(bridge.settings())
            task = await started(agent)
            for i in (1, 2, 3):
                agent.notify("sysinfo", None, "tick", {"i": i})
            first = await bridge.wait_notifications(3)
            assert [n.seq for n in first] == [1, 2, 3]
            await bridge.ack(1)
            await asyncio.sleep(0.1)
            await bridge.stop()
            bridge2 = await FakeBridge(port=bridge.port, acks=True).start()
            again = await bridge2.wait_notifications(2)
            assert [(n.seq, n.payload["i"]) for n in again] == [(2, 2), (3, 3)]
            assert bridge2.registers[0].run == bridge.registers[0].run  # the same run: the bridge can tell a resend
            agent.notify("sysinfo", None, "tick", {"i": 4})
            assert [n.seq for n in await bridge2.wait_notifications(3)] == [2, 3, 4]
            await asyncio.sleep(0.1)  # bridge2 acknowledged them all: nothing is kept for the next one
            await bridge2.stop()
            bridge3 = await FakeBridge(port=bridge.port, acks=True).start()
            await asyncio.wait_for(bridge3.registered.wait(), 5)
            await agent.wait_registered(5)
            await asyncio.sleep(0.2)
            assert bridge3.notifications == []
            await stopped(agent, task)
            await bridge3.stop()

        run(main())

    def test_a_bridge_that_does_not_acknowledge_gets_each_notification_once(self) -> None:
        async def main() -> None:
            bridge = await FakeBridge().start()
            agent = EndpointAgent(bridge.settings())
            task = await started(agent)
            agent.notify("sysinfo", None, "tick", {"i": 1})
            await bridge.wait_notifications(1)
            await bridge.stop()
            bridge2 = await FakeBridge(port=bridge.port).start()
            await asyncio.wait_for(bridge2.registered.wait(), 5)
            await asyncio.sleep(0.2)
            assert bridge2.notifications == []
            await stopped(agent, task)
            await bridge2.stop()

        run(main())

    def test_queue_overflow_while_disconnected_reports_dropped(self) -> None:
        async def main() -> None:
            bridge = await FakeBridge().start()
            agent = EndpointAgent(bridge.settings(notify_queue_size=3))
            task = await started(agent)
            await bridge.stop()
            await asyncio.sleep(0.05)
            for i in range(5):
                agent.notify("sysinfo", None, "tick", {"i": i})
            bridge2 = await FakeBridge(port=bridge.port).start()
            notes = await bridge2.wait_notifications(3)
            assert [n.payload["i"] for n in notes] == [2, 3, 4]
            assert notes[0].dropped == 2 and notes[1].dropped == 0
            await stopped(agent, task)
            await bridge2.stop()

        run(main())

    def test_silent_bridge_is_treated_as_dead(self) -> None:
        async def main() -> None:
            async with FakeBridge(heartbeat=0.1, silent=True) as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                t0 = time.monotonic()
                while len(bridge.registers) < 2:
                    await asyncio.sleep(0.02)
                assert time.monotonic() - t0 < 2.0  # ~3 heartbeats + backoff
                await stopped(agent, task)

        run(main())

    def test_bridge_not_up_yet_is_retried(self, free_port: int) -> None:
        async def main() -> None:
            bridge = FakeBridge(port=free_port)
            agent = EndpointAgent(bridge.settings())
            task = asyncio.create_task(agent.run())
            await asyncio.sleep(0.3)
            assert not task.done()
            await bridge.start()
            await agent.wait_registered(5)
            await stopped(agent, task)
            await bridge.stop()

        run(main())

    def test_wrong_key_is_fatal(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(key=SecretStr("orbit_ek_wrong-key-value")))
                with pytest.raises(AuthenticationError, match="does not accept this endpoint's key") as info:
                    await agent.run()
                message = str(info.value)
                assert "orbit_ek_wrong-key-value" not in message
                assert "radical-orbit bridge endpoints enroll ep1" in message
                assert not bridge.registers and bridge.names == ["ep1"]

        run(main())

    @pytest.mark.parametrize(
        ("status", "exc"), [(403, PermissionDeniedError), (409, ConflictError), (400, UsageError)]
    )
    def test_refused_upgrade_is_fatal(self, status: int, exc: type[Exception]) -> None:
        """The bridge answers the upgrade request with a status: the endpoint stops at once,
        saying what the bridge said (dialing again could not change it)."""

        async def main() -> None:
            async with FakeBridge(deny=(status, f"the bridge's reason {status}")) as bridge:
                agent = EndpointAgent(bridge.settings())
                with pytest.raises(exc, match=f"the bridge's reason {status}"):
                    await agent.run()
                assert len(bridge.names) == 1 and not bridge.registers

        run(main())

    def test_other_upgrade_statuses_are_retried(self) -> None:
        async def main() -> None:
            async with FakeBridge(deny=(503, "busy")) as bridge:
                agent = EndpointAgent(bridge.settings())
                task = asyncio.create_task(agent.run())
                async with asyncio.timeout(10):
                    while len(bridge.names) < 2:
                        await asyncio.sleep(0.02)
                bridge.deny = None
                await agent.wait_registered(5)
                await stopped(agent, task)

        run(main())

    def test_waits_for_the_key_file(self, home: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Started before its bridge wrote the key (README: bridge & then endpoint), the
        endpoint waits for the file instead of giving up, and says once what it waits for."""
        caplog.set_level(logging.INFO)

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(key=None, client_token_source="$RADICAL_ORBIT_BRIDGE_TOKEN"))
                task = asyncio.create_task(agent.run())
                await asyncio.sleep(0.6)
                assert not task.done() and not bridge.names
                orbit = home / ".radical" / "orbit"
                orbit.mkdir(parents=True)
                write_private_path(orbit / "endpoint.key", KEY + "\n")
                await agent.wait_registered(5)
                await stopped(agent, task)

        run(main())
        waiting = [r.getMessage() for r in caplog.records if "no endpoint key yet" in r.getMessage()]
        assert len(waiting) == 1
        assert "endpoint.key" in waiting[0] and "endpoints enroll ep1" in waiting[0]
        assert "a client token cannot register an endpoint" in waiting[0]

    def test_a_key_file_others_may_read_is_fatal(self, home: Path) -> None:
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        (orbit / "endpoint.key").write_text(KEY)
        (orbit / "endpoint.key").chmod(0o640)

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(key=None))
                with pytest.raises(UsageError, match=f"chmod 600 {orbit / 'endpoint.key'}"):
                    await agent.run()
                assert not bridge.names

        run(main())

    def test_replaced_by_another_endpoint_with_the_same_key_is_fatal(self) -> None:
        """Two endpoints with one key and one name would take the name from each other
        forever: the one the bridge replaced (close 4009 "replaced") stops."""

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = asyncio.create_task(agent.run())
                await agent.wait_registered(5)
                await bridge.conn.close(CLOSE_REPLACED, "replaced")
                with pytest.raises(ConflictError, match="another endpoint with the same key and name is running"):
                    await asyncio.wait_for(task, 10)
                assert len(bridge.registers) == 1

        run(main())

    @pytest.mark.parametrize(
        ("code", "close_code", "exc", "match"),
        [
            ("unauthorized", CLOSE_UNAUTHORIZED, AuthenticationError, "does not accept this endpoint's key"),
            ("name_taken", CLOSE_NAME_TAKEN, ConflictError, "already connected"),
            ("name_reserved", CLOSE_NAME_RESERVED, UsageError, "reserved"),
            ("bad_version", CLOSE_BAD_VERSION, UsageError, "protocol"),
        ],
    )
    def test_refused_registration_is_fatal(self, code: str, close_code: int, exc: type[Exception], match: str) -> None:
        async def main() -> None:
            async with FakeBridge(refuse=(code, close_code)) as bridge:
                agent = EndpointAgent(bridge.settings())
                with pytest.raises(exc, match=match):
                    await agent.run()
                assert len(bridge.registers) == 1

        run(main())

    def test_name_taken_after_a_registration_is_retried(self) -> None:
        """The bridge may still hold our old connection right after a network blip."""

        async def main() -> None:
            bridge = await FakeBridge().start()
            agent = EndpointAgent(bridge.settings())
            task = await started(agent)
            await bridge.stop()
            taken = await FakeBridge(port=bridge.port, refuse=("name_taken", CLOSE_NAME_TAKEN)).start()
            while len(taken.registers) < 2:
                await asyncio.sleep(0.02)
            assert not task.done()
            await taken.stop()
            bridge2 = await FakeBridge(port=bridge.port).start()
            await agent.wait_registered(5)
            await stopped(agent, task)
            await bridge2.stop()

        run(main())

    def test_stop_answers_inflight_and_refuses_late_ones(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(shutdown_grace=5.0))
                task = await started(agent)
                sid = await open_session(bridge)
                slow = bridge.request_nowait("POST", "/sysinfo/sleep", body=json.dumps({"sid": sid, "seconds": 0.3}).encode())
                await asyncio.sleep(0.05)
                agent.stop()
                late = await bridge.request("GET", "/sysinfo/ping")
                assert late.status == 503 and "shutting down" in body_of(late)["message"]
                assert (await asyncio.wait_for(slow, 5)).status == 200
                await asyncio.wait_for(task, 5)
                assert not agent.plugins["sysinfo"].sessions  # sessions closed

        run(main())

    def test_stop_fails_requests_that_outlive_the_grace(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(shutdown_grace=0.2))
                task = await started(agent)
                sid = await open_session(bridge)
                slow = bridge.request_nowait("POST", "/sysinfo/sleep", body=json.dumps({"sid": sid, "seconds": 30}).encode())
                await asyncio.sleep(0.05)
                agent.stop()
                resp = await asyncio.wait_for(slow, 5)
                assert resp.status == 503 and body_of(resp)["code"] == "endpoint_unavailable"
                await asyncio.wait_for(task, 5)

        run(main())

    def test_second_stop_from_another_thread_cuts_the_grace_short(self) -> None:
        import threading

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings(shutdown_grace=30.0))
                task = await started(agent)
                sid = await open_session(bridge)
                slow = bridge.request_nowait("POST", "/sysinfo/sleep", body=json.dumps({"sid": sid, "seconds": 30}).encode())
                await asyncio.sleep(0.05)
                t0 = time.monotonic()
                threading.Thread(target=agent.stop).start()
                await asyncio.sleep(0.1)
                threading.Thread(target=agent.stop).start()
                resp = await asyncio.wait_for(slow, 5)
                assert resp.status == 503 and time.monotonic() - t0 < 3
                await asyncio.wait_for(task, 5)

        run(main())

    def test_watch_notifications_stop_with_the_session(self) -> None:
        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                sid = await open_session(bridge)
                assert (await post(bridge, "watch", sid=sid, interval=0.02)).status == 200
                notes = await bridge.wait_notifications(2)
                assert notes[0].sid == sid and notes[0].plugin == "sysinfo" and notes[0].topic == "load"
                assert (await post(bridge, "unregister_session", sid=sid)).status == 200
                await asyncio.sleep(0.05)
                seen = len(bridge.notifications)
                await asyncio.sleep(0.1)
                assert len(bridge.notifications) == seen
                await stopped(agent, task)

        run(main())

    def test_token_never_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)

        async def main() -> None:
            async with FakeBridge() as bridge:
                agent = EndpointAgent(bridge.settings())
                task = await started(agent)
                await post(bridge, "register_session", note="secret-body-text")
                await stopped(agent, task)

        run(main())
        ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]  # the fake bridge's own logs
        text = "\n".join(r.getMessage() for r in ours)
        assert "registered with the bridge" in text
        assert KEY not in text and "secret-body-text" not in text
        assert KEY not in repr(EndpointAgent(FakeBridge().settings()).settings)


class TestBackoff:
    def test_grows_is_capped_and_jittered(self) -> None:
        backoff = Backoff(0.5, 30.0)
        rng = random.Random(1)
        for attempt, (lo, hi) in {0: (0.25, 0.5), 1: (0.5, 1.0), 3: (2.0, 4.0), 10: (15.0, 30.0), 1000: (15.0, 30.0)}.items():
            delays = {backoff.delay(attempt, rng) for _ in range(50)}
            assert all(lo <= d <= hi for d in delays)
            assert len(delays) > 1  # jitter


class TestEndpointCommand:
    """``radical-orbit endpoint`` exits non-zero with a clear message when refused."""

    def test_wrong_key_exits_non_zero(self) -> None:
        from click.testing import CliRunner
        from endpoint_fakes import ThreadedBridge

        from radical.orbit.cli.main import cli

        with ThreadedBridge() as bridge:
            result = CliRunner().invoke(
                cli, ["endpoint", "--name", "ep", "--url", bridge.url, "--plugins", "sysinfo"],
                env={"RADICAL_ORBIT_ENDPOINT_KEY": "orbit_ek_not-the-key"},
            )
        assert result.exit_code == 1, result.output
        assert "does not accept this endpoint's key (from $RADICAL_ORBIT_ENDPOINT_KEY)" in result.output
        assert "not-the-key" not in result.output

    def test_key_file_option(self, tmp_path: Path) -> None:
        """--key-file: the key from a 0600 file (never from argv); a file others may read is
        a usage error naming the fix, before anything dials."""
        from click.testing import CliRunner
        from endpoint_fakes import ThreadedBridge

        from radical.orbit.cli.main import cli

        key_file = tmp_path / "ep.key"
        key_file.write_text(KEY + "\n")
        key_file.chmod(0o644)
        with ThreadedBridge(refuse=("name_taken", CLOSE_NAME_TAKEN)) as bridge:  # ends the CLI once it got through
            args = ["endpoint", "--name", "ep", "--url", bridge.url, "--key-file", str(key_file), "--plugins", "sysinfo"]
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 2 and f"chmod 600 {key_file}" in result.output and KEY not in result.output
            assert not bridge.names
            key_file.chmod(0o600)
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 1 and "already connected" in result.output
            assert bridge.names == ["ep"] and len(bridge.registers) == 1

    @pytest.mark.parametrize(
        ("env", "says"),
        [
            ({"RADICAL_ORBIT_ENDPOINT_KEY": "orbit_ct_a-client-token"}, "is a client token, and a client token cannot register"),
            ({"RADICAL_ORBIT_BRIDGE_TOKEN": "orbit_ek_misplaced"}, "holds an endpoint key"),
        ],
    )
    def test_misplaced_secrets_are_named(self, env: dict[str, str], says: str) -> None:
        from click.testing import CliRunner

        from radical.orbit.cli.main import cli

        result = CliRunner().invoke(cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", "sysinfo"], env=env)
        assert result.exit_code == 2 and says in result.output
        assert "a-client-token" not in result.output and "misplaced" not in result.output

    def test_name_taken_exits_non_zero(self) -> None:
        from click.testing import CliRunner
        from endpoint_fakes import ThreadedBridge

        from radical.orbit.cli.main import cli

        with ThreadedBridge(refuse=("name_taken", CLOSE_NAME_TAKEN)) as bridge:
            result = CliRunner().invoke(
                cli, ["endpoint", "--name", "ep", "--url", bridge.url, "--plugins", "sysinfo"], env={"RADICAL_ORBIT_ENDPOINT_KEY": KEY},
            )
        assert result.exit_code == 1 and "already connected" in result.output


class TestStopWhileConnecting:
    def test_stop_while_the_bridge_never_answers_register(self) -> None:
        """A bridge that accepts the socket but never registers must not delay a stop."""

        async def main() -> None:
            async def mute(ws: Any) -> None:
                await ws.wait_closed()  # reads nothing, answers nothing

            from websockets.asyncio.server import serve

            async with serve(mute, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                bridge = FakeBridge(port=port)
                agent = EndpointAgent(bridge.settings(connect_timeout=20.0))
                task = asyncio.create_task(agent.run())
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                agent.stop()
                await asyncio.wait_for(task, 5)
                assert time.monotonic() - t0 < 1.0

        run(main())
