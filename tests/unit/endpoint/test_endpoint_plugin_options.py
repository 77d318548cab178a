"""``radical-orbit endpoint --plugin-option PLUGIN.KEY=VALUE``: parsed, checked, handed over."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from radical.orbit.cli.main import cli
from radical.orbit.endpoint.plugin_host import PluginHost
from radical.orbit.endpoint.settings import EndpointSettings, parse_plugin_options
from radical.orbit.errors import UsageError
from radical.orbit.models.messages import PluginInfo
from radical.orbit.plugins.base import Plugin, PluginContext
from radical.orbit.plugins.registry import PluginEntry, discover_plugins


def test_values_are_json_when_they_parse() -> None:
    assert parse_plugin_options(["globus.min_interval=0.5", "globus.workers=32", "x.flag=true", "x.name=dtn-1", "x.empty="]) == {
        "globus": {"min_interval": 0.5, "workers": 32},
        "x": {"flag": True, "name": "dtn-1", "empty": ""},
    }


@pytest.mark.parametrize("item", ["globus", "globus=1", ".key=1", "globus.=1", "min_interval=1"])
def test_malformed_items_are_usage_errors(item: str) -> None:
    with pytest.raises(UsageError, match="PLUGIN.KEY=VALUE"):
        parse_plugin_options([item])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "globus.bogus=1"], "plugin 'globus' options: unknown option 'bogus'"),
        (["-o", "globus.workers=lots"], "'workers': Input should be a valid integer"),
        (["-o", "globus.min_interval=0"], "'min_interval': Input should be greater than 0"),
        (["-o", "globus.min_interval=5", "-o", "globus.max_interval=1"], "options: max_interval (1.0) is below min_interval (5.0)"),
        (["-o", "sysinfo.anything=1"], "plugin 'sysinfo' options: unknown option 'anything' (known: test_routes"),
        (["-o", "sysinfo.test_routes=yes"], "'test_routes': Input should be a valid boolean"),
        (["-o", "nodot"], "PLUGIN.KEY=VALUE"),
        # a plugin name that is not installed at all is a typo (it only warned, and the endpoint ran)
        (["-o", "globbus.workers=4"], "names 'globbus', but no such plugin is installed (installed: globus, sysinfo"),
    ],
)
def test_bad_options_stop_the_cli_before_it_dials(args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", "globus,sysinfo", *args],
        env={"RADICAL_ORBIT_BRIDGE_TOKEN": "t"},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


class Recorder(Plugin):
    name = "recorder"
    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        Recorder.seen = dict(ctx.settings)

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> None:
        pass

    def add_routes(self, router: Any) -> None:
        pass


def notify(plugin: str, sid: str | None, topic: str, payload: dict[str, Any]) -> None:
    pass


def test_the_host_hands_each_plugin_its_own_options(caplog: pytest.LogCaptureFixture) -> None:
    settings = EndpointSettings(
        name="ep", url="http://127.0.0.1:9",
        plugin_options={"recorder": {"depth": 3}, "globus": {"workers": 4}, "absent": {"x": 1}},
    )
    entries = [PluginEntry("recorder", Recorder, PluginInfo(name="recorder")), *discover_plugins(["globus"])]
    host = PluginHost(settings, notify, entries)

    async def start() -> None:
        await host.start()
        await host.stop()

    asyncio.run(start())
    assert Recorder.seen == {"depth": 3}
    assert host.plugins["globus"].poll_settings.workers == 4  # type: ignore[attr-defined]
    assert "options given for plugins that are not loaded: absent" in caplog.text


def test_bad_options_given_programmatically_disable_the_plugin_with_the_reason() -> None:
    settings = EndpointSettings(name="ep", url="http://127.0.0.1:9", plugin_options={"globus": {"chunk": 0}})
    host = PluginHost(settings, notify, discover_plugins(["globus"]))

    async def start() -> None:
        await host.start()
        await host.stop()

    asyncio.run(start())
    (info,) = host.infos
    assert not info.enabled and info.reason is not None and "'chunk': Input should be greater than or equal to 1" in info.reason


def test_options_for_an_installed_plugin_left_out_of_this_run_are_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared command line may set globus options on a run that serves sysinfo only."""
    from radical.orbit.endpoint import agent

    started: list[list[str]] = []

    class NoRun:
        def __init__(self, settings: Any, entries: Any) -> None:
            started.append([e.name for e in entries])

        async def run(self, handle_signals: bool = False) -> None:
            return None

    monkeypatch.setattr(agent, "EndpointAgent", NoRun)
    result = CliRunner().invoke(
        cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", "sysinfo", "-o", "globus.workers=4"],
        env={"RADICAL_ORBIT_BRIDGE_TOKEN": "t"},
    )
    assert result.exit_code == 0, result.output
    assert started == [["sysinfo"]]
