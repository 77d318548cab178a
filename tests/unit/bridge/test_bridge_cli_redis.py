"""``radical-orbit bridge --redis URL`` and ``bridge tokens|endpoints ... --redis URL``
(the server itself is stubbed; the identity commands edit a real Redis)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from click.testing import CliRunner
from test_bridge_cli import run

from radical.orbit.bridge.backplane.redis_scripts import IDENTITIES_KEY
from radical.orbit.bridge.settings import BridgeSettings
from radical.orbit.cli import bridge as cli_bridge


def admin(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli_bridge.bridge, list(args), env=env, catch_exceptions=False)


def test_redis_flag_and_environment_reach_the_settings_without_the_password(served: list[BridgeSettings]) -> None:
    assert run("--redis", "redis://:pw@127.0.0.1:6390/2").exit_code == 0
    settings = served[0]
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == "redis://:pw@127.0.0.1:6390/2"
    assert settings.redacted()["redis_url"] == "redis://:***@127.0.0.1:6390/2"
    assert "pw" not in repr(settings)
    assert run(env={"RADICAL_ORBIT_REDIS_URL": "redis://127.0.0.1:6391/0"}).exit_code == 0
    assert served[1].redis_url is not None and served[1].redis_url.get_secret_value().endswith(":6391/0")
    assert run().exit_code == 0 and served[2].redis_url is None


@pytest.mark.parametrize("bad", ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://host:port/0", "redis://:pw@[::1:6379/0"])
def test_a_bad_redis_url_is_a_usage_error_that_names_the_form(served: list[BridgeSettings], bad: str) -> None:
    result = run("--redis", bad)
    assert result.exit_code == 2 and ("redis://HOST:PORT/DB" in result.output or "not a number" in result.output)
    assert not served and "pw" not in result.output and "Traceback" not in result.output


def test_identity_commands_edit_the_shared_store(redis_url: str) -> None:
    added = admin("tokens", "add", "alice", "--redis", redis_url)
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip().splitlines()[0]
    assert secret.startswith("orbit_") or len(secret) > 30
    document = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = str(document.get(IDENTITIES_KEY))
    finally:
        document.close()
    assert '"alice"' in stored and secret not in stored  # only its hash
    # the group option and the environment work too
    listed = admin("--redis", redis_url, "tokens", "list")
    assert listed.exit_code == 0 and "alice" in listed.stdout
    enrolled = admin("endpoints", "enroll", "dtn1", env={"RADICAL_ORBIT_REDIS_URL": redis_url})
    assert enrolled.exit_code == 0 and "RADICAL_ORBIT_ENDPOINT_KEY=" in enrolled.stdout
    assert "dtn1" in admin("endpoints", "list", "--redis", redis_url).stdout
    assert admin("tokens", "revoke", "alice", "--redis", redis_url).exit_code == 0
    assert "alice" not in admin("tokens", "list", "--redis", redis_url).stdout
    # the file store in HOME was not touched
    assert "alice" not in admin("tokens", "list").stdout


def test_identity_commands_say_when_redis_is_unreachable() -> None:
    result = CliRunner().invoke(cli_bridge.bridge, ["tokens", "list", "--redis", "redis://:pw@127.0.0.1:1/0"])
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in result.output and "pw@" not in result.output
