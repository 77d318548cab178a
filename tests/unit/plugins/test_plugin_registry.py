"""plugins/registry.py and client/discovery.py: entry-point discovery that never crashes."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from radical.orbit.client.discovery import CLIENT_GROUP, find_client_class
from radical.orbit.client.plugin import PluginClient
from radical.orbit.errors import UsageError
from radical.orbit.plugins.registry import (
    PLUGIN_GROUP,
    available_plugins,
    discover_plugins,
)

MODULE = '''
from __future__ import annotations
from fastapi import APIRouter
from radical.orbit.plugins.base import Plugin
from radical.orbit.client.plugin import PluginClient

class Good(Plugin):
    name = "good"
    version = "1.2.3"
    description = "works"
    def add_routes(self, router: APIRouter) -> None:
        pass

class NeedsGPU(Good):
    name = "gpu"
    @classmethod
    def check_enabled(cls) -> str | None:
        return "no GPU on this host"

class CheckRaises(Good):
    name = "raises"
    @classmethod
    def check_enabled(cls) -> str | None:
        raise OSError("probe failed")

class WrongName(Good):
    name = "something-else"

class NotAPlugin:
    name = "notaplugin"

class GoodClient(PluginClient):
    plugin_name = "good"
'''


@pytest.fixture
def fake_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    (tmp_path / "orbit_test_plugins.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "orbit_test_broken.py").write_text("raise RuntimeError('broken at import')\n")
    (tmp_path / "orbit_test_needs_dep.py").write_text("import orbit_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("orbit_test_plugins", "orbit_test_broken", "orbit_test_needs_dep"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    def ep(name: str, value: str) -> EntryPoint:
        return EntryPoint(name=name, value=value, group=PLUGIN_GROUP)

    return [
        ep("good", "orbit_test_plugins:Good"),
        ep("gpu", "orbit_test_plugins:NeedsGPU"),
        ep("raises", "orbit_test_plugins:CheckRaises"),
        ep("wrongname", "orbit_test_plugins:WrongName"),
        ep("notaplugin", "orbit_test_plugins:NotAPlugin"),
        ep("broken", "orbit_test_broken:Anything"),
        ep("needsdep", "orbit_test_needs_dep:Anything"),
        ep("absent", "orbit_test_absent_module:Plugin"),
        ep("good", "orbit_test_plugins:NeedsGPU"),  # a duplicate name: the first one wins
    ]


class TestPluginRegistry:
    def test_every_failure_becomes_a_disabled_plugin_with_a_reason(self, fake_modules: list[EntryPoint]) -> None:
        entries = {e.name: e for e in discover_plugins(eps=fake_modules)}
        assert sorted(entries) == sorted({ep.name for ep in fake_modules})
        good = entries["good"]
        assert good.enabled and good.cls is not None and good.cls.__name__ == "Good"
        assert good.info.version == "1.2.3" and good.info.description == "works" and good.info.reason is None
        expected = {
            "gpu": "no GPU on this host",
            "raises": "check_enabled() failed: OSError: probe failed",
            "wrongname": "is named 'something-else'",
            "notaplugin": "is not a radical.orbit Plugin",
            "broken": "RuntimeError: broken at import",
            "needsdep": "orbit_no_such_dependency",
            "absent": "orbit_test_absent_module is not installed",
        }
        for name, reason in expected.items():
            entry = entries[name]
            assert not entry.enabled and entry.cls is None and not entry.info.enabled, name
            assert entry.info.reason is not None and reason in entry.info.reason, (name, entry.info.reason)
        assert entries["gpu"].info.version == "1.2.3"  # known even when disabled

    def test_selection_only_imports_what_is_selected(self, fake_modules: list[EntryPoint]) -> None:
        entries = discover_plugins("gpu, good", eps=fake_modules)
        assert [e.name for e in entries] == ["gpu", "good"]
        assert "orbit_test_broken" not in sys.modules

    def test_unknown_selection_is_a_usage_error_listing_what_exists(self, fake_modules: list[EntryPoint]) -> None:
        with pytest.raises(UsageError, match=r"'typo'.*available: absent, broken"):
            discover_plugins(["good", "typo"], eps=fake_modules)

    def test_available_plugins_imports_nothing(self, fake_modules: list[EntryPoint]) -> None:
        assert "good" in available_plugins(fake_modules)
        assert "orbit_test_plugins" not in sys.modules

    def test_installed_sysinfo_and_globus(self) -> None:
        entries = {e.name: e for e in discover_plugins()}
        assert entries["sysinfo"].enabled
        # globus may be absent, broken or disabled here; it must be reported either way
        assert "globus" in entries
        if not entries["globus"].enabled:
            assert entries["globus"].info.reason


class TestClientDiscovery:
    def test_finds_registered_client_class(self, fake_modules: list[EntryPoint]) -> None:
        eps = [
            EntryPoint(name="good", value="orbit_test_plugins:GoodClient", group=CLIENT_GROUP),
            EntryPoint(name="bad", value="orbit_test_plugins:NotAPlugin", group=CLIENT_GROUP),
            EntryPoint(name="broken", value="orbit_test_broken:X", group=CLIENT_GROUP),
        ]
        found = find_client_class("good", eps=eps)
        assert found is not None and issubclass(found, PluginClient) and found.plugin_name == "good"
        assert find_client_class("bad", eps=eps) is None
        assert find_client_class("broken", eps=eps) is None
        assert find_client_class("missing", eps=eps) is None

    def test_installed_sysinfo_client(self) -> None:
        found = find_client_class("sysinfo")
        assert found is not None and found.__name__ == "SysinfoClient"
        assert find_client_class("no-such-plugin") is None
