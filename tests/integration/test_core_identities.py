"""Identities with real processes: per-user client tokens made with the CLI, endpoint
keys (the local one, enrolled ones), name claims, and the zero-config path.

Every step is what a user does: `radical-orbit bridge tokens|endpoints ...` on the
bridge host (its HOME), endpoints started in that HOME or in another one with the
key `endpoints enroll` printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from orbit_test_env import scrubbed_environ
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from radical.orbit import errors
from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.models.messages import IDENTITY_HEADER
from radical.orbit.plugins.sysinfo.plugin import PluginSysinfo
from radical.orbit.testing import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

Stack = Any  # tests/integration/conftest.py: OrbitStack

#: sysinfo's echo route is a test route; once it is off by default it needs this option
SYSINFO_TEST_ROUTES = (
    ["-o", "sysinfo.test_routes=true"]
    if PluginSysinfo.options_model is not None and "test_routes" in PluginSysinfo.options_model.model_fields
    else []
)


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def other_home(tmp_path: Path, name: str = "remote-home") -> Path:
    home = tmp_path / name
    home.mkdir()
    return home


def upgrade_status(stack: Stack, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The HTTP status (and JSON body) of a raw endpoint upgrade request the bridge refuses."""
    with pytest.raises(InvalidStatus) as info, connect(stack.ws_url, additional_headers=headers, open_timeout=10):
        raise AssertionError("the bridge accepted the WebSocket")
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


def listed(stack: Stack) -> list[str]:
    return [e["name"] for e in stack.get("/endpoints").json()["endpoints"] if e.get("alive", True)]


def test_tokens_made_with_the_cli_are_identities(orbit_stack: Callable[..., Stack]) -> None:
    """tokens add/list/revoke against a running bridge: each token is its own identity,
    which the endpoint hears in x-orbit-identity; a revoked token is refused without a
    restart; the bridge keeps only hashes."""
    stack = orbit_stack(endpoint_args=SYSINFO_TEST_ROUTES)
    assert stack.bridge is not None
    alice = procs.bridge_admin(stack.bridge, "tokens", "add", "alice").strip()
    ops = procs.bridge_admin(stack.bridge, "tokens", "add", "ops", "--admin").strip()
    assert alice.startswith("orbit_ct_") and ops.startswith("orbit_ct_")
    listing = procs.bridge_admin(stack.bridge, "tokens", "list")
    assert [line.split()[:2] for line in listing.splitlines()[1:]] == [["admin", "yes"], ["alice", "no"], ["ops", "yes"]]
    assert alice not in listing and ops not in listing
    stored = (stack.home / ".radical" / "orbit" / "bridge-identities.json").read_text()
    assert alice not in stored and ops not in stored

    def seen_by_endpoint(token: str) -> str:
        bc = stack.client(token=token)
        echo = bc.get_endpoint_client("ep1").get_plugin("sysinfo").echo("GET", headers={IDENTITY_HEADER: "forged"})
        return str(echo["headers"][IDENTITY_HEADER])

    until(lambda: stack.get("/endpoints", headers={"Authorization": f"Bearer {alice}"}).status_code == 200, "alice's token works")
    assert seen_by_endpoint(alice) == "alice"
    assert seen_by_endpoint(ops) == "ops"
    assert stack.token is not None and seen_by_endpoint(stack.token) == "admin"  # the default token: unchanged

    procs.bridge_admin(stack.bridge, "tokens", "revoke", "alice")
    until(lambda: stack.get("/endpoints", headers={"Authorization": f"Bearer {alice}"}).status_code == 401, "alice's token refused")
    with pytest.raises(errors.AuthenticationError):
        stack.client(token=alice).list_endpoints()
    assert stack.client(token=ops).list_endpoints() == ["ep1"]
    logs = stack.logs(tail=10_000)
    assert alice not in logs and ops not in logs


def test_a_client_token_cannot_register_an_endpoint(orbit_stack: Callable[..., Stack], tmp_path: Path) -> None:
    """Refused with an HTTP status before the WebSocket upgrade, whatever the name."""
    stack = orbit_stack()
    assert stack.bridge is not None and stack.token is not None
    alice = procs.bridge_admin(stack.bridge, "tokens", "add", "alice").strip()
    until(lambda: stack.get("/endpoints", headers={"Authorization": f"Bearer {alice}"}).status_code == 200, "alice's token works")
    for token in (stack.token, alice):
        for name in ("ep1", "fresh-name"):
            status, body = upgrade_status(stack, {"Authorization": f"Bearer {token}", "X-Orbit-Endpoint": name})
            assert status == 403
            assert body["message"].startswith("a client token cannot register an endpoint; enrol it")
    assert upgrade_status(stack, {"X-Orbit-Endpoint": "x"})[0] == 401
    assert upgrade_status(stack, {"Authorization": "Bearer orbit_ek_wrong", "X-Orbit-Endpoint": "x"})[0] == 401
    # the endpoint command with only the client token (another HOME): it does not send it,
    # and says what it waits for
    home = other_home(tmp_path)
    ep = ServiceProcess(
        "endpoint-token-only", ["endpoint", "--name", "token-only", "--url", stack.url, "--plugins", "sysinfo"],
        env=scrubbed_environ(home, RADICAL_ORBIT_BRIDGE_TOKEN=stack.token), log_dir=stack.log_dir,
    )
    with procs.running(ep.start()):
        until(lambda: "no endpoint key yet" in ep.log_text(), "the endpoint says it waits for a key")
        log = ep.log_text()
        assert "a client token cannot register an endpoint" in log and "endpoints enroll token-only" in log
        assert ep.alive() and "token-only" not in listed(stack) and stack.token not in log


def test_impostor_cannot_take_a_name(orbit_stack: Callable[..., Stack], tmp_path: Path) -> None:
    """`dtn` is down; a key enrolled for another name cannot take it (403), and the bridge
    host's own key cannot take a name enrolled for another key (409). The rightful owner
    comes back."""
    stack = orbit_stack(endpoint=None)
    assert stack.bridge is not None
    key = procs.enroll_endpoint(stack.bridge, "dtn")
    home = other_home(tmp_path)
    env = scrubbed_environ(home)
    dtn = procs.start_endpoint("dtn", stack.bridge, key=key, plugins=["sysinfo"], env=env, log_dir=stack.log_dir)
    dtn.stop()
    until(lambda: "dtn" not in listed(stack), "dtn gone")

    other = procs.enroll_endpoint(stack.bridge, "other")
    for name in ("dtn", "DTN"):
        status, body = upgrade_status(stack, {"Authorization": f"Bearer {other}", "X-Orbit-Endpoint": name})
        assert status == 403 and "enrolled for 'other'" in body["message"]
    with pytest.raises(RuntimeError, match=r"exited early \(code 1\)") as info:  # the local key, in the bridge's HOME
        stack.add_endpoint("DTN", timeout=30)
    assert "refused the name 'DTN'" in str(info.value) and "endpoints forget dtn" in str(info.value)
    assert "dtn" not in listed(stack)

    back = procs.start_endpoint("dtn", stack.bridge, key=key, plugins=["sysinfo"], env=env, log_dir=stack.log_dir)
    with procs.running(back):
        assert listed(stack) == ["dtn"]
        assert stack.client().get_endpoint_client("DTN").get_plugin("sysinfo").ping()  # routing ignores case
    logs = stack.logs(tail=10_000)
    assert key not in logs and other not in logs


def test_one_name_whatever_the_case(orbit_stack: Callable[..., Stack]) -> None:
    """`ep1` and `EP1` are one name: the same key takes it over at once (the old
    connection is told it was replaced, and that endpoint stops instead of fighting for
    it); the bridge keeps the case it was first claimed with."""
    stack = orbit_stack()
    first = stack.endpoints["ep1"]
    stack.add_endpoint("EP1")
    until(lambda: not first.alive(), "the replaced endpoint stops")
    assert first.proc is not None and first.proc.returncode == 1
    assert "another endpoint with the same key and name is running" in first.log_text()
    assert listed(stack) == ["ep1"]
    time.sleep(1.0)  # nothing flaps back
    assert listed(stack) == ["ep1"] and stack.endpoints["EP1"].alive()
    claims = procs.bridge_admin(stack.bridge, "endpoints", "list")
    assert [line.split()[:2] for line in claims.splitlines()[1:]] == [["ep1", "local"]]


def test_enrol_a_remote_endpoint_then_forget_it(orbit_stack: Callable[..., Stack], tmp_path: Path) -> None:
    """`endpoints enroll` prints the two lines for the endpoint host; an endpoint in another
    HOME registers with that key; `endpoints forget` disconnects it, revokes the key and
    frees the name."""
    stack = orbit_stack(endpoint=None)
    assert stack.bridge is not None
    out = procs.bridge_admin(stack.bridge, "endpoints", "enroll", "remote")
    export, command = out.strip().splitlines()
    assert export.startswith("export RADICAL_ORBIT_ENDPOINT_KEY=orbit_ek_")
    assert command == f"radical-orbit endpoint --name remote --url {stack.url}"
    key = export.partition("=")[2]
    with pytest.raises(RuntimeError, match="already claimed"):
        procs.bridge_admin(stack.bridge, "endpoints", "enroll", "REMOTE")

    home = other_home(tmp_path)
    remote = procs.start_endpoint("remote", stack.bridge, key=key, plugins=["sysinfo"], env=scrubbed_environ(home), log_dir=stack.log_dir)
    with procs.running(remote):
        assert listed(stack) == ["remote"]
        assert not (home / ".radical" / "orbit" / "endpoint.key").exists()  # nothing was written there
        procs.bridge_admin(stack.bridge, "endpoints", "forget", "remote")
        until(lambda: not remote.alive(), "the forgotten endpoint is disconnected and its key refused")
        assert "does not accept this endpoint's key (from $RADICAL_ORBIT_ENDPOINT_KEY)" in remote.log_text()
        assert key not in remote.log_text()
    stack.add_endpoint("remote")  # the name is free again: the bridge host's own key claims it
    assert "remote  local" in procs.bridge_admin(stack.bridge, "endpoints", "list")


def test_readme_flow_endpoint_started_before_the_bridge(home: Path, tmp_path: Path) -> None:
    """`radical-orbit bridge & radical-orbit endpoint --name X`: in one HOME, with no
    setup, even when the endpoint starts first (it waits for the key file)."""
    env = scrubbed_environ(home)
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    endpoint = ServiceProcess("endpoint-first", ["endpoint", "--name", "laptop", "--url", url, "--plugins", "sysinfo"], env=env, log_dir=logs)
    with procs.running(endpoint.start()):
        until(lambda: "no endpoint key yet" in endpoint.log_text(), "the endpoint waits for the key file")
        bridge = ServiceProcess("bridge", ["bridge", "--port", str(port)], env=env, log_dir=logs, url=url)
        with procs.running(procs.start_healthy(bridge, timeout=30)):
            token = (home / ".radical" / "orbit" / "bridge.token").read_text().strip()
            procs.wait_endpoint_listed(url, token, "laptop", proc=endpoint)
            with BridgeClient() as bc:  # everything found in HOME
                assert bc.get_endpoint_client("laptop").get_plugin("sysinfo").ping()
            assert endpoint.log_text().count("no endpoint key yet") == 1


def test_secret_files_others_may_read_are_refused(home: Path, tmp_path: Path) -> None:
    """The bridge and the endpoint each refuse a token or key file with mode 0644, with the
    chmod that fixes it; /health says nothing but that the bridge is alive."""
    orbit = home / ".radical" / "orbit"
    orbit.mkdir(parents=True, mode=0o700)
    token_file = orbit / "bridge.token"
    token_file.write_text("a-token-others-could-read\n")
    token_file.chmod(0o644)
    logs = tmp_path / "logs"
    env = scrubbed_environ(home)
    bridge = ServiceProcess("bridge", ["bridge", "--port", str(procs.free_port())], env=env, log_dir=logs)
    with procs.running(bridge.start()):
        assert bridge.proc is not None and bridge.proc.wait(60) == 2
    assert f"chmod 600 {token_file}" in bridge.log_text() and "a-token-others-could-read" not in bridge.log_text()
    token_file.chmod(0o600)

    stack_bridge = procs.start_bridge(token=None, env=env, log_dir=logs, args=[])  # --no-auth: still writes the key
    with procs.running(stack_bridge):
        health = httpx.get(f"{stack_bridge.url}/health", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        key_file = orbit / "endpoint.key"
        key_file.chmod(0o644)
        ep = ServiceProcess(
            "endpoint-open-key", ["endpoint", "--name", "ep", "--url", stack_bridge.url or "", "--plugins", "sysinfo"], env=env, log_dir=logs
        )
        with procs.running(ep.start()):
            assert ep.proc is not None and ep.proc.wait(60) == 2
        assert f"chmod 600 {key_file}" in ep.log_text() and key_file.read_text().strip() not in ep.log_text()
        key_file.chmod(0o600)
        with procs.running(procs.start_endpoint("ep", stack_bridge, plugins=["sysinfo"], env=env, log_dir=logs)) as (fixed,):
            assert fixed.alive()  # registered (start_endpoint waited for the bridge to list it)
