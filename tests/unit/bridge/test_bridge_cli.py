"""``radical-orbit bridge``: token resolution, files, warnings (the server itself is stubbed)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from radical.orbit.bridge.settings import BridgeSettings
from radical.orbit.cli import bridge as cli_bridge
from radical.orbit.testing import free_port


def with_port(args: list[str]) -> list[str]:
    """``args`` plus a free ``--port`` unless they name one: the default 8000 may be taken
    on the machine running the tests (the bridge refuses a port in use)."""
    return args if "--port" in args else [*args, "--port", str(free_port())]


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli_bridge.bridge, with_port(list(args)), env=env, catch_exceptions=False)


class TestBridgeCli:
    def test_generates_token_file_and_url_file(self, served: list[BridgeSettings], home: Path) -> None:
        result = run("--port", "8123")
        assert result.exit_code == 0, result.output
        token_file = home / ".radical" / "orbit" / "bridge.token"
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token not in result.output and str(token_file) in result.output
        assert (home / ".radical" / "orbit" / "bridge.url").read_text().strip() == "http://127.0.0.1:8123"
        settings = served[0]
        assert settings.auth and settings.token is not None and settings.token.get_secret_value() == token
        assert token not in repr(settings) and token not in str(settings.redacted())
        # the next start reuses the same token
        assert run("--port", "8123").exit_code == 0
        assert served[1].token is not None and served[1].token.get_secret_value() == token

    def test_precedence_flag_env_file(self, served: list[BridgeSettings], home: Path) -> None:
        (home / ".radical" / "orbit").mkdir(parents=True)
        (home / ".radical" / "orbit" / "bridge.token").write_text("from-file\n")
        (home / ".radical" / "orbit" / "bridge.token").chmod(0o600)
        run()
        run(env={"RADICAL_ORBIT_BRIDGE_TOKEN": "from-env"})
        result = run("--token", "from-flag", env={"RADICAL_ORBIT_BRIDGE_TOKEN": "from-env"})
        assert [s.token.get_secret_value() for s in served if s.token] == ["from-file", "from-env", "from-flag"]
        assert "from-flag" not in result.output and "--token" in result.output

    def test_no_auth_is_loud(self, served: list[BridgeSettings], home: Path) -> None:
        result = run("--no-auth", "--heartbeat", "2", "--max-body", "100", "--request-timeout", "5")
        assert result.exit_code == 0
        assert "WARNING" in result.output and "authentication is OFF" in result.output
        s = served[0]
        assert not s.auth and s.heartbeat_interval == 2 and s.max_body == 100 and s.request_timeout == 5
        assert not (home / ".radical" / "orbit" / "bridge.token").exists()

    def test_write_coalescing_flag_and_environment(self, served: list[BridgeSettings], home: Path) -> None:
        assert run().exit_code == 0
        assert run("--no-coalesce-writes").exit_code == 0
        assert run(env={"RADICAL_ORBIT_BRIDGE_COALESCE_WRITES": "false"}).exit_code == 0
        assert run("--coalesce-writes", env={"RADICAL_ORBIT_BRIDGE_COALESCE_WRITES": "false"}).exit_code == 0  # the flag wins
        assert [s.coalesce_writes for s in served] == [True, False, False, True]

    def test_limit_flags_and_environment(self, served: list[BridgeSettings], home: Path) -> None:
        assert run().exit_code == 0
        flags = ("--max-inflight-per-identity", "7", "--max-inflight-per-endpoint", "8", "--max-held-answer-bytes", "9000000",
                 "--event-buffer-bytes", "3000000", "--max-notification-bytes", "1000", "--max-subscribers-per-identity", "3")
        assert run(*flags).exit_code == 0
        env = {"RADICAL_ORBIT_BRIDGE_MAX_INFLIGHT_PER_IDENTITY": "5", "RADICAL_ORBIT_BRIDGE_SUBSCRIBER_QUEUE": "10"}
        assert run(env=env).exit_code == 0
        assert run("--max-inflight-per-identity", "6", env=env).exit_code == 0  # the flag wins
        default, given, from_env, both = served
        assert (default.max_inflight_per_identity, default.max_subscribers_per_identity, default.event_buffer_bytes) == (256, 64, 64 * 2**20)
        assert (given.max_inflight_per_identity, given.max_inflight_per_endpoint, given.max_held_answer_bytes) == (7, 8, 9_000_000)
        assert (given.event_buffer_bytes, given.max_notification_bytes, given.max_subscribers_per_identity) == (3_000_000, 1000, 3)
        assert (from_env.max_inflight_per_identity, from_env.subscriber_queue) == (5, 10)
        assert both.max_inflight_per_identity == 6

    def test_limits_that_disagree_are_a_usage_error(self, served: list[BridgeSettings], home: Path) -> None:
        result = CliRunner().invoke(cli_bridge.bridge, with_port(["--event-buffer-bytes", "1000", "--max-notification-bytes", "2000"]))
        assert result.exit_code == 2 and served == []
        assert "event_buffer_bytes (1000) must be at least max_notification_bytes (2000)" in result.output
        assert "Traceback" not in result.output
        result = CliRunner().invoke(cli_bridge.bridge, with_port(["--max-inflight-per-identity", "0"]))
        assert result.exit_code == 2 and "--max-inflight-per-identity" in result.output

    def test_a_bad_setting_in_the_environment_is_a_usage_error(self, served: list[BridgeSettings], home: Path) -> None:
        result = CliRunner().invoke(
            cli_bridge.bridge, with_port([]), env={"RADICAL_ORBIT_BRIDGE_COALESCE_WRITES": "maybe"}
        )
        assert result.exit_code == 2 and served == []
        assert "RADICAL_ORBIT_BRIDGE_COALESCE_WRITES" in result.output and "valid boolean" in result.output
        assert "Traceback" not in result.output

    @pytest.mark.parametrize("bad", ["a\nb", "é", "two words", " edge", "tab\there"])
    def test_token_no_client_could_send_is_refused_unseen(self, served: list[BridgeSettings], home: Path, bad: str) -> None:
        """Clients only send printable ASCII tokens: such a bridge turned every client away."""
        orbit = home / ".radical" / "orbit"
        for args, env, source in (
            (["--token", bad], None, "--token"),
            ([], {"RADICAL_ORBIT_BRIDGE_TOKEN": bad}, "$RADICAL_ORBIT_BRIDGE_TOKEN"),
        ):
            result = CliRunner().invoke(cli_bridge.bridge, with_port(args), env=env)
            assert result.exit_code == 2, result.output
            assert f"token from {source} must be printable ASCII without spaces" in result.output
            assert bad.strip() not in result.output and "Traceback" not in result.output
        if bad.strip() == bad:  # the token file is read stripped
            orbit.mkdir(parents=True, exist_ok=True)
            (orbit / "bridge.token").write_text(bad + "\n")
            (orbit / "bridge.token").chmod(0o600)
            result = CliRunner().invoke(cli_bridge.bridge, with_port([]))
            assert result.exit_code == 2 and "bridge.token must be printable ASCII" in result.output
            assert bad not in result.output
        assert served == [] and not (orbit / "bridge.url").exists()

    def test_usage_errors(self, served: list[BridgeSettings], tmp_path: Path) -> None:
        assert run("--no-auth", "--token", "x").exit_code == 2
        cert = tmp_path / "c.pem"
        cert.write_text("x")
        assert run("--cert", str(cert)).exit_code == 2
        assert served == []

    def test_unusable_address_or_tls_files_refused_before_any_file_is_written(
        self, served: list[BridgeSettings], home: Path, tmp_path: Path
    ) -> None:
        """Each was a traceback or a bind error after bridge.url pointed at the bad address."""
        junk = tmp_path / "junk.pem"
        junk.write_text("not PEM")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = str(busy.getsockname()[1])
            cases = [
                (["--host", "bad host"], "cannot be resolved"),
                (["--host", "10.99.99.99"], "use an address of this machine"),
                (["--port", taken], "another process (another bridge?) listens there"),
                (["--cert", str(junk), "--key", str(junk)], "give a PEM certificate and the PEM private key"),
            ]
            for args, says in cases:
                result = CliRunner().invoke(cli_bridge.bridge, with_port(args))
                assert result.exit_code == 2 and says in result.output, (args, result.output)
        assert served == []
        assert not (home / ".radical" / "orbit" / "bridge.url").exists()
        assert not (home / ".radical" / "orbit" / "bridge.token").exists()

    def test_tls_and_wide_bind(self, served: list[BridgeSettings], home: Path, self_signed: tuple[Path, Path]) -> None:
        cert, key = self_signed
        port = free_port()
        result = run("--host", "0.0.0.0", "--port", str(port), "--cert", str(cert), "--key", str(key), "--token", "t")
        assert result.exit_code == 0, result.output
        assert "reachable from other machines" in result.output
        assert served[0].cert_file == str(cert) and served[0].url == f"https://127.0.0.1:{port}"
        assert (home / ".radical" / "orbit" / "bridge.url").read_text().strip() == f"https://127.0.0.1:{port}"


class TestBridgeFiles:
    @pytest.mark.parametrize("name", ["bridge.token", "endpoint.key"])
    def test_a_secret_file_others_may_read_is_refused(self, served: list[BridgeSettings], home: Path, name: str) -> None:
        """A token or key file that kept mode 0644 (copied, restored from a backup) stops
        the bridge with the command that fixes it, instead of being trusted."""
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        path = orbit / name
        path.write_text("orbit_ek_" + "k" * 43 + "\n")
        path.chmod(0o644)
        result = run()
        assert result.exit_code == 2 and served == []
        assert f"chmod 600 {path}" in result.output and "open to other users" in result.output
        assert "k" * 43 not in result.output
        path.chmod(0o600)
        assert run().exit_code == 0 and len(served) == 1

    @pytest.mark.parametrize("name", ["bridge.token", "endpoint.key"])
    def test_a_secret_file_that_is_not_utf8_is_refused(self, served: list[BridgeSettings], home: Path, name: str) -> None:
        """Was a UnicodeDecodeError traceback; the secret's bytes are never shown."""
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        path = orbit / name
        path.write_bytes(b"orbit_ek_" + b"k" * 43 + b"\xff\n")
        path.chmod(0o600)
        result = run()
        assert result.exit_code == 2 and served == []
        assert f"{path} is not UTF-8 text" in result.output and "k" * 43 not in result.output

    def test_start_writes_the_local_endpoint_key(self, served: list[BridgeSettings], home: Path) -> None:
        """Zero-config: an endpoint in this HOME finds the key; its hash is in the store first."""
        import json

        from radical.orbit.bridge.identities import digest

        result = run()
        assert result.exit_code == 0, result.output
        orbit = home / ".radical" / "orbit"
        key = (orbit / "endpoint.key").read_text().strip()
        assert key.startswith("orbit_ek_") and key not in result.output and "endpoint.key" in result.output
        for name in ("endpoint.key", "bridge-identities.json"):
            assert stat.S_IMODE((orbit / name).stat().st_mode) == 0o600
        assert stat.S_IMODE(orbit.stat().st_mode) == 0o700
        stored = json.loads((orbit / "bridge-identities.json").read_text())
        assert [(k["name"], k["sha256"]) for k in stored["endpoint_keys"]] == [("local", digest(key))]
        assert key not in (orbit / "bridge-identities.json").read_text()
        assert run().exit_code == 0  # the next start keeps the same key
        assert (orbit / "endpoint.key").read_text().strip() == key


def admin(*args: str) -> Any:
    return CliRunner().invoke(cli_bridge.bridge, list(args), catch_exceptions=False)


class TestIdentityCommands:
    def test_secrets_alone_on_stdout_once(self, served: list[BridgeSettings], home: Path) -> None:
        """`TOKEN=$(radical-orbit bridge tokens add alice)` works: the secret is the only thing
        on stdout; what to do with it goes to stderr; the store keeps a hash."""
        from radical.orbit.bridge.identities import digest

        result = admin("tokens", "add", "alice")
        assert result.exit_code == 0, result.output
        token = result.stdout.strip()
        assert token.startswith("orbit_ct_") and "\n" not in token
        assert "shown only now" in result.stderr and token not in result.stderr
        stored = (home / ".radical" / "orbit" / "bridge-identities.json").read_text()
        assert token not in stored and digest(token) in stored
        listing = admin("tokens", "list").stdout
        assert "alice" in listing and "admin" in listing and token not in listing

        result = admin("endpoints", "enroll", "dtn")
        assert result.exit_code == 0, result.output
        export, command = result.stdout.strip().splitlines()
        assert export.startswith("export RADICAL_ORBIT_ENDPOINT_KEY=orbit_ek_")
        assert command == "radical-orbit endpoint --name dtn --url http://127.0.0.1:8000"
        assert "loopback" in result.stderr  # no bridge.url yet: the default, which only this host reaches
        assert "dtn" in admin("endpoints", "list").stdout
        assert served == []  # none of them ran the bridge

    def test_errors_are_one_line(self, served: list[BridgeSettings], home: Path) -> None:
        assert admin("tokens", "add", "alice").exit_code == 0
        for args, says in (
            (["tokens", "add", "alice"], "revoke it first"),
            (["tokens", "add", "admin"], "reserved"),
            (["tokens", "revoke", "admin"], "delete that file and restart the bridge"),
            (["tokens", "revoke", "bob"], "no token named 'bob' (tokens: alice)"),
            (["endpoints", "enroll", "bad/name"], "invalid endpoint name"),
            (["endpoints", "forget", "nope"], "is claimed or enrolled"),
        ):
            result = admin(*args)
            assert result.exit_code == 1 and says in result.output, (args, result.output)
            assert "Traceback" not in result.output
        result = admin("--port", "9000", "tokens", "list")
        assert result.exit_code == 2 and "--port run the bridge" in result.output
        assert served == []

    @pytest.mark.parametrize("content", [b"\xff", b"[" * 100_000 + b"]" * 100_000], ids=["not-utf8", "deep"])
    def test_a_store_that_cannot_be_decoded_is_one_line(self, served: list[BridgeSettings], home: Path, content: bytes) -> None:
        """Every command that reads the store said UnicodeDecodeError or RecursionError in a traceback."""
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        path = orbit / "bridge-identities.json"
        path.write_bytes(content)
        path.chmod(0o600)
        for args in (["tokens", "list"], ["tokens", "add", "bob"], ["endpoints", "list"], ["endpoints", "enroll", "dtn"]):
            result = admin(*args)
            assert result.exit_code == 1 and f"{path} is not a valid identity store" in result.output, (args, result.output)
        result = run()
        assert result.exit_code == 2 and "is not a valid identity store" in result.output and served == []
        assert path.read_bytes() == content

    def test_enroll_with_a_bridge_url_file_that_is_not_utf8_enrols_nothing(self, served: list[BridgeSettings], home: Path) -> None:
        """The URL goes into the lines enroll prints: it is read first, so a bad file leaves no key unshown."""
        orbit = home / ".radical" / "orbit"
        orbit.mkdir(parents=True)
        (orbit / "bridge.url").write_bytes(b"http://h\xff:8000\n")
        result = admin("endpoints", "enroll", "dtn")
        assert result.exit_code == 1 and f"{orbit / 'bridge.url'} is not UTF-8 text" in result.output
        assert "dtn" not in admin("endpoints", "list").stdout
