"""settings.py: URL derivation, name checks and key/URL resolution."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from radical.orbit.cli.main import cli
from radical.orbit.config import write_private_path
from radical.orbit.endpoint.settings import (
    EndpointSettings,
    check_endpoint_name,
    websocket_url,
)
from radical.orbit.errors import UsageError


class TestEndpointSettings:
    @pytest.mark.parametrize(
        ("url", "ws"),
        [
            ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/endpoint"),
            ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws/endpoint"),
            ("https://bridge.example.org", "wss://bridge.example.org/ws/endpoint"),
            ("https://h/prefix/", "wss://h/prefix/ws/endpoint"),
            ("ws://h:1", "ws://h:1/ws/endpoint"),
            ("wss://h:1/custom/path", "wss://h:1/custom/path"),
        ],
    )
    def test_websocket_url(self, url: str, ws: str) -> None:
        assert websocket_url(url) == ws

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("ftp://h", "must start with http://, https://, ws://, wss://"),
            ("h:8000", "must start with"),
            ("http://", "has no host"),
            ("http://:8000", "has no host"),
            ("http://127.0.0.1:notaport", "cannot be read"),
            ("http://127.0.0.1:99999", "Port out of range"),
            ("http://127.0.0.1:0", "has port 0"),
            ("http://[::1", "Invalid IPv6 URL"),
            ("http://exa mple.org", "spaces or control characters"),
            ("http://h:1/#frag", "must not have a query or fragment"),
        ],
    )
    def test_bad_url(self, url: str, says: str) -> None:
        """A URL no connection could use is refused before anything dials it."""
        with pytest.raises(UsageError, match=re.escape(says)) as info:
            websocket_url(url)
        assert url in info.value.message and "--url" in info.value.message

    def test_names(self) -> None:
        assert check_endpoint_name("ep-1.a_b") == "ep-1.a_b"
        for bad in ("", "-x", "a/b", "x" * 65, "events", "health"):
            with pytest.raises(UsageError):
                check_endpoint_name(bad)

    def test_resolve_from_environment_and_files(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        (orbit / "bridge.url").write_text("http://127.0.0.1:9999\n")
        settings = EndpointSettings.resolve(name="ep", plugins="sysinfo, globus,,sysinfo")
        assert settings.url == "http://127.0.0.1:9999"
        assert settings.plugins == ["sysinfo", "globus"]
        assert settings.load_key() is None and settings.key_hint == str(orbit / "endpoint.key")  # none yet: wait for it
        write_private_path(orbit / "endpoint.key", "orbit_ek_file-key\n")
        assert settings.load_key() == ("orbit_ek_file-key", str(orbit / "endpoint.key"))
        monkeypatch.setenv("RADICAL_ORBIT_ENDPOINT_KEY", "orbit_ek_env-key")
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_URL", "https://b:1")
        settings = EndpointSettings.resolve(name="ep", key_file=str(orbit / "endpoint.key"))
        assert settings.load_key() == ("orbit_ek_env-key", "$RADICAL_ORBIT_ENDPOINT_KEY")  # the environment wins
        assert "env-key" not in repr(settings) and "env-key" not in str(settings.model_dump())
        assert settings.ws_url == "wss://b:1/ws/endpoint"
        monkeypatch.delenv("RADICAL_ORBIT_ENDPOINT_KEY")
        other = home / "elsewhere.key"
        write_private_path(other, "orbit_ek_other\n")
        settings = EndpointSettings.resolve(name="ep", url="http://x:2", key_file=str(other))
        assert settings.load_key() == ("orbit_ek_other", str(other))
        assert settings.url == "http://x:2" and settings.plugins is None

    def test_key_files_that_are_not_text_are_usage_errors(self, home: Path) -> None:
        """A key file that is not UTF-8 was a UnicodeDecodeError traceback, and --key-file
        /dev/zero read until MemoryError; both are one line naming the file."""
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        key = orbit / "endpoint.key"
        key.write_bytes(b"orbit_ek_" + b"k" * 43 + b"\xff\n")
        key.chmod(0o600)
        settings = EndpointSettings.resolve(name="ep", url="http://127.0.0.1:9")
        with pytest.raises(UsageError, match=f"^{re.escape(str(key))} is not UTF-8 text") as info:
            settings.load_key()
        assert "k" * 43 not in info.value.message
        runner = CliRunner()
        result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9"])
        assert result.exit_code == 2 and f"{key} is not UTF-8 text" in result.output
        result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--key-file", "/dev/zero"])
        assert result.exit_code == 2 and "/dev/zero is larger than 64 KiB" in result.output

    def test_a_client_token_is_never_sent(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A client token cannot register an endpoint: the settings keep only where one was
        configured (for the message that says so), never the token."""
        monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_TOKEN", "env-token")
        settings = EndpointSettings.resolve(name="ep", url="http://x:2")
        assert settings.client_token_source == "$RADICAL_ORBIT_BRIDGE_TOKEN"
        assert "env-token" not in repr(settings) and "env-token" not in str(settings.model_dump())
        settings = EndpointSettings.resolve(name="ep", url="http://x:2", token="arg-token")
        assert settings.client_token_source == "--token" and "arg-token" not in str(settings.model_dump())
        assert settings.load_key() is None

    def test_cli_help_and_usage_errors(self) -> None:
        runner = CliRunner()
        result = runner.invoke(cli, ["endpoint", "--help"])
        assert result.exit_code == 0
        for option in ("--name", "--url", "--key-file", "--plugins", "--heartbeat", "RADICAL_ORBIT_ENDPOINT_KEY"):
            assert option in result.output
        result = runner.invoke(cli, ["endpoint", "--name", "events"])
        assert result.exit_code == 2 and "reserved" in result.output
        result = runner.invoke(cli, ["endpoint", "--name", "ep", "--plugins", "nosuchplugin"])
        assert result.exit_code == 2 and "nosuchplugin" in result.output and "sysinfo" in result.output
        for empty in ("", " , ,"):  # used to load every plugin, the opposite of what was asked
            result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", empty])
            assert result.exit_code == 2 and "--plugins names no plugin" in result.output
            assert "Traceback" not in result.output
        with pytest.raises(ValueError, match="names no plugin"):
            EndpointSettings.resolve(name="ep", url="http://127.0.0.1:9", plugins=[])
        result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", "ftp://x"])
        assert result.exit_code == 2 and "ftp://x" in result.output
        for url in ("http://127.0.0.1:notaport", "http://[::1"):  # were a retry loop and a traceback
            result = runner.invoke(cli, ["endpoint", "--name", "ep", "--url", url])
            assert result.exit_code == 2 and "cannot be read" in result.output


class TestLimits:
    def test_defaults(self) -> None:
        settings = EndpointSettings(name="ep", url="http://127.0.0.1:9")
        assert settings.max_sessions_per_identity == 500
        assert settings.max_notification_bytes == 256 * 1024

    def test_flags_reach_the_agent(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import radical.orbit.cli.endpoint as cli_endpoint
        import radical.orbit.endpoint.agent as agent_module

        seen: list[EndpointSettings] = []

        class Agent:
            def __init__(self, settings: EndpointSettings, entries: object) -> None:
                seen.append(settings)

            async def run(self, *, handle_signals: bool = False) -> None:
                return None

        monkeypatch.setattr(agent_module, "EndpointAgent", Agent)
        monkeypatch.setattr(cli_endpoint, "_leave_blocked_workers", lambda: None)
        args = ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", "--plugins", "sysinfo"]
        key = {"RADICAL_ORBIT_ENDPOINT_KEY": "orbit_ek_" + "k" * 43}  # the endpoint's own credential (issue 13)
        result = CliRunner().invoke(cli, [*args, "--max-sessions", "7", "--max-notification-bytes", "2048"], env=key)
        assert result.exit_code == 0, result.output
        assert (seen[0].max_sessions_per_identity, seen[0].max_notification_bytes) == (7, 2048)

    @pytest.mark.parametrize(("flag", "value"), [("--max-sessions", "0"), ("--max-notification-bytes", "100"), ("--max-sessions", "x")])
    def test_bad_values_are_usage_errors(self, flag: str, value: str) -> None:
        result = CliRunner().invoke(cli, ["endpoint", "--name", "ep", "--url", "http://127.0.0.1:9", flag, value])
        assert result.exit_code == 2 and flag in result.output and "Traceback" not in result.output
