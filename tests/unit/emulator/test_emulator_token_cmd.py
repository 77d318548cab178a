"""``radical-orbit emulator token`` against an in-process emulator (click's CliRunner)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from radical.orbit.cli.emulator import emulator
from radical.orbit.emulators.globus import RunningEmulator


class TestEmulatorCli:
    def test_help_lists_the_options(self) -> None:
        out = CliRunner().invoke(emulator, ["--help"]).output
        for opt in ("--host", "--port", "--root", "--config", "--token-lifetime", "--state-dir", "token"):
            assert opt in out

    def test_token_plain_refresh_and_client_credentials(self, emu: RunningEmulator) -> None:
        runner = CliRunner()
        res = runner.invoke(emulator, ["token", "--url", emu.url])
        assert res.exit_code == 0, res.output
        body = json.loads(res.output)
        assert body["access_token"] and "refresh_token" not in body and body["resource_server"] == "transfer.api.globus.org"
        body = json.loads(runner.invoke(emulator, ["token", "--url", emu.url, "--refresh"]).output)
        assert body["refresh_token"] and body["client_id"] == emu.emulator.settings.native_client_id
        fresh = json.loads(runner.invoke(emulator, ["token", "--url", emu.url, "--new-client"]).output)
        assert fresh["client_secret"] and fresh["access_token"]
        again = runner.invoke(emulator, ["token", "--url", emu.url, "--client-id", fresh["client_id"], "--client-secret", fresh["client_secret"]])
        assert again.exit_code == 0 and json.loads(again.output)["client_id"] == fresh["client_id"]
        bad = runner.invoke(emulator, ["token", "--url", emu.url, "--client-id", fresh["client_id"], "--client-secret", "nope"])
        assert bad.exit_code != 0 and "401" in bad.output

    @pytest.mark.parametrize(
        "args",
        [
            ["token", "--client-id", "my-client", "--client-secret", "s"],
            ["token", "--consent", "tutorial-1"],
            ["--client-id", "my-client", "--client-secret", "s", "--port", "0"],
        ],
    )
    def test_globus_ids_must_be_uuids(self, args: list[str]) -> None:
        """A client or collection id that is not a UUID was taken (and the grant or
        consent then silently named nothing Globus could have)."""
        res = CliRunner().invoke(emulator, args)
        assert res.exit_code == 2 and "is not a UUID" in res.output, res.output

    def test_a_token_lifetime_past_ten_years_is_a_usage_error(self) -> None:
        """It was a pydantic traceback."""
        res = CliRunner().invoke(emulator, ["--port", "0", "--token-lifetime", "999999999999"])
        assert res.exit_code == 2 and "--token-lifetime" in res.output and "315360000" in res.output, res.output
        assert "Traceback" not in res.output

    def test_consent_and_client_id_are_written_as_globus_writes_them(self, emu: RunningEmulator) -> None:
        upper = "6C54CADE-BDE5-45C1-BDEA-F4BD71DBA2CC"
        res = CliRunner().invoke(emulator, ["token", "--url", emu.url, "--consent", upper, "--refresh"])
        assert res.exit_code == 0, res.output

    def test_unreachable_emulator(self) -> None:
        res = CliRunner().invoke(emulator, ["token", "--url", "http://127.0.0.1:9"])
        assert res.exit_code == 1 and "cannot reach the emulator" in res.output

    def test_unusable_url_is_a_usage_error(self) -> None:
        res = CliRunner().invoke(emulator, ["token", "--url", "http://127.0.0.1:notaport"])
        assert res.exit_code == 2 and "is not a usable URL" in res.output and "notaport" in res.output

    @pytest.mark.parametrize("url", ["notaurl", "127.0.0.1:8700", "ftp://127.0.0.1:8700", "http://", "http:///x", "http://h:99999", "http://exa mple"])
    def test_url_no_request_could_use_is_a_usage_error(self, url: str) -> None:
        """Scheme-less or unsupported-scheme URLs were 'cannot reach the emulator' (exit 1)."""
        res = CliRunner().invoke(emulator, ["token", "--url", url])
        assert res.exit_code == 2, res.output
        assert f"--url {url!r} is not a usable URL" in res.output and "http://127.0.0.1:8700" in res.output
