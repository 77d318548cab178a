"""An endpoint given several bridge URLs: settings, the dialing order, and moving on after a loss."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from endpoint_fakes import KEY, FakeBridge
from pydantic import SecretStr

from radical.orbit.cli.main import cli
from radical.orbit.endpoint.agent import EndpointAgent
from radical.orbit.endpoint.settings import EndpointSettings
from radical.orbit.errors import UsageError


def run(coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    async def _with_timeout() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(_with_timeout())


def settings_for(*urls: str, **kwargs: Any) -> EndpointSettings:
    kwargs.setdefault("key", SecretStr(KEY))
    kwargs.setdefault("plugins", ["sysinfo"])
    kwargs.setdefault("backoff_initial", 0.05)
    kwargs.setdefault("backoff_max", 0.2)
    return EndpointSettings(name="ep1", url=",".join(urls), **kwargs)


class TestSettings:
    def test_url_list(self) -> None:
        s = settings_for("http://a:1/", " wss://b:2/orbit/ws ", "http://a:1")
        assert s.urls == ["http://a:1", "wss://b:2/orbit/ws"]
        assert s.ws_urls == ["ws://a:1/ws/endpoint", "wss://b:2/orbit/ws"]
        assert s.ws_url == "ws://a:1/ws/endpoint"
        one = s.for_bridge("wss://b:2/orbit/ws")
        assert one.urls == ["wss://b:2/orbit/ws"] and one.name == "ep1" and one.key == s.key

    def test_resolved_from_the_environment(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", "http://a:1,http://b:2")
        assert EndpointSettings.resolve(name="ep1").urls == ["http://a:1", "http://b:2"]
        assert EndpointSettings.resolve(name="ep1", url="http://c:3").urls == ["http://c:3"]

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("http://a:1,,http://b:2", "bridge URL number 2"),
            ("http://a:1,ftp://b:2", "'ftp://b:2'"),
            ("http://a:1,http://b:0", "has port 0"),
        ],
    )
    def test_bad_url_in_the_list(self, url: str, says: str) -> None:
        with pytest.raises(UsageError, match=says):
            settings_for(url).ws_urls  # noqa: B018
        # a repr of the agent does not raise for it: run() says what is wrong
        assert "EndpointAgent(name='ep1'" in repr(EndpointAgent(settings_for(url)))

    def test_cli_checks_every_url(self) -> None:
        """A bad URL anywhere in --url is a usage error naming it, before anything is dialed."""
        runner = CliRunner()
        for url, says in (("http://127.0.0.1:9,ftp://x", "'ftp://x'"), ("http://127.0.0.1:9,,http://127.0.0.1:8", "number 2")):
            result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", url, "--plugins", "sysinfo"])
            assert result.exit_code == 2 and says in result.output, result.output
            assert "Traceback" not in result.output
        result = runner.invoke(cli, ["endpoint", "--help"])
        assert "--state-dir" in result.output and "URL[,URL...]" in result.output

    def test_state_dir(self, home: Path) -> None:
        assert settings_for("http://a:1").state_path == home / ".radical" / "orbit" / "endpoints" / "ep1"
        assert EndpointSettings(name="DTN-1", url="http://a:1").state_path.name == "dtn-1"  # names are case-insensitive
        assert settings_for("http://a:1", state_dir="~/elsewhere").state_path == home / "elsewhere"


class TestDialing:
    def test_first_down_second_used(self, free_port: int) -> None:
        """A is not listening: the agent registers with B without waiting a backoff first."""

        async def main() -> None:
            async with FakeBridge() as b:
                agent = EndpointAgent(settings_for(f"http://127.0.0.1:{free_port}", b.url, backoff_initial=5.0, backoff_max=5.0))
                task = asyncio.create_task(agent.run())
                t0 = time.monotonic()
                await agent.wait_registered(10)
                assert time.monotonic() - t0 < 4.0  # no 2.5-5 s backoff between A and B
                assert agent.bridge_url == b.url and agent.ws_url == f"ws://127.0.0.1:{b.port}/ws/endpoint"
                agent.stop()
                await asyncio.wait_for(task, 10)

        run(main())

    def test_loss_moves_to_the_next_at_once_and_back_round(self, caplog: pytest.LogCaptureFixture) -> None:
        """Connected to A, A goes away: registered with B at once; B goes, A is back: round to A."""
        caplog.set_level(logging.INFO, logger="radical.orbit.endpoint")

        async def main() -> None:
            a = await FakeBridge().start()
            b = await FakeBridge().start()
            agent = EndpointAgent(settings_for(a.url, b.url, backoff_initial=5.0, backoff_max=5.0))
            task = asyncio.create_task(agent.run())
            await asyncio.wait_for(a.registered.wait(), 10)
            agent.notify("sysinfo", None, "tick", {"n": 1})
            await a.wait_notifications(1)
            await a.stop()
            t0 = time.monotonic()
            await asyncio.wait_for(b.registered.wait(), 10)
            assert time.monotonic() - t0 < 4.0
            agent.notify("sysinfo", None, "tick", {"n": 2})
            notes = await b.wait_notifications(1)
            assert notes[-1].payload == {"n": 2}
            a2 = await FakeBridge(port=a.port).start()
            await b.stop()
            await asyncio.wait_for(a2.registered.wait(), 10)
            await agent.wait_registered(5)
            while agent.registrations < 3:  # the fake sends "registered" before the agent counts it
                await asyncio.sleep(0.01)
            assert agent.bridge_url == a.url
            agent.stop()
            await asyncio.wait_for(task, 10)
            await a2.stop()

        run(main())
        assert "registered with the bridge at ws://127.0.0.1" in caplog.text

    def test_backoff_only_between_full_rounds(self, free_port: int) -> None:
        """Neither bridge is up: both are dialed, then one backoff, then both again."""
        dialed: list[str] = []

        class Counting(EndpointAgent):
            async def _connection(self, *, quiet: bool = False) -> None:
                dialed.append(self.bridge_url)
                await super()._connection(quiet=quiet)

        async def main() -> None:
            urls = (f"http://127.0.0.1:{free_port}", "http://127.0.0.1:1")
            agent = Counting(settings_for(*urls, backoff_initial=0.6, backoff_max=0.6))
            task = asyncio.create_task(agent.run())
            await asyncio.sleep(0.25)  # the first round is done, the backoff (0.3-0.6 s) is not
            assert dialed == list(urls)
            while len(dialed) < 4:
                await asyncio.sleep(0.02)
            assert dialed[2:4] == list(urls)
            agent.stop()
            await asyncio.wait_for(task, 10)

        run(main())
