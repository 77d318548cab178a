"""Another user on the bridge host or the endpoint host: files, command lines, logs,
error messages and reprs hold no secret they could read.

One bridge that generated its own token (``bridge.token``), a token made with
``tokens add``, and ``ep1`` started in the bridge's HOME (the local endpoint key).
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attacker import add_token, bearer, cmdline, environ_readable_by_others, until
from conftest import module_stack
from integration.conftest import GENERATE
from orbit_test_env import scrubbed_environ
from pydantic import SecretStr

from radical.orbit import testing as procs
from radical.orbit.bridge.auth import DEFAULT_IDENTITY, Authenticator
from radical.orbit.bridge.browser import BrowserSignIn
from radical.orbit.bridge.identities import IdentityStore
from radical.orbit.bridge.settings import BridgeSettings
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.endpoint.settings import EndpointSettings
from radical.orbit.testing import ServiceProcess

Stack = Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with module_stack(tmp_path_factory, token=GENERATE) as stack:
        stack.alice = add_token(stack, "alice")
        stack.key = (stack.home / ".radical" / "orbit" / "endpoint.key").read_text().strip()
        yield stack


def secrets_of(stack: Stack) -> list[str]:
    return [stack.token, stack.alice, stack.key]


def test_secret_files_are_private_and_hold_no_secret_in_clear(stack: Stack) -> None:
    orbit = stack.home / ".radical" / "orbit"
    assert stat.S_IMODE(orbit.stat().st_mode) == 0o700
    for name in ("bridge.token", "endpoint.key", "bridge-identities.json", ".bridge-identities.json.lock"):
        assert stat.S_IMODE((orbit / name).stat().st_mode) == 0o600, name
    store = (orbit / "bridge-identities.json").read_text()
    assert stack.alice not in store and stack.key not in store and stack.token not in store


def test_no_secret_on_a_command_line(stack: Stack) -> None:
    """``ps`` shows every local user each process's command line: no token or key there;
    the environment that carries them is readable by their owner only."""
    processes = [stack.bridge, *stack.endpoints.values()]
    for proc in processes:
        line = cmdline(proc.pid)
        assert not any(secret in line for secret in secrets_of(stack)), line
        assert not environ_readable_by_others(proc.pid)
    helps = subprocess.run(
        [sys.executable, "-m", "radical.orbit.cli.main", "endpoint", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "--key-file" in helps and "--key " not in helps and "--key\n" not in helps


def test_a_store_opened_to_others_is_not_used(stack: Stack) -> None:
    """``bridge-identities.json`` made readable by others: the CLI refuses it with the
    chmod that fixes it; the running bridge keeps the last good copy (alice still works)
    and says why; once fixed, the bridge reads it again."""
    path = stack.home / ".radical" / "orbit" / "bridge-identities.json"
    assert httpx.get(f"{stack.url}/endpoints", headers=bearer(stack.alice), timeout=10).status_code == 200
    store = IdentityStore(path.parent)
    before = store.stamp()
    path.chmod(0o644)
    try:
        assert store.stamp() != before  # the mode is part of what the bridge watches
        with pytest.raises(RuntimeError, match=f"chmod 600 {path}"):
            procs.bridge_admin(stack.bridge, "tokens", "list")
        until(lambda: "identity store not reloaded" in stack.bridge.log_text(), "the bridge says it kept the last good store")
        assert httpx.get(f"{stack.url}/endpoints", headers=bearer(stack.alice), timeout=10).status_code == 200
    finally:
        path.chmod(0o600)
    procs.bridge_admin(stack.bridge, "tokens", "revoke", "alice")
    until(lambda: httpx.get(f"{stack.url}/endpoints", headers=bearer(stack.alice), timeout=10).status_code == 401, "revoked")
    stack.alice = add_token(stack, "alice")


def test_a_key_file_open_to_others_is_refused(stack: Stack, tmp_path: Path) -> None:
    key_file = tmp_path / "ep.key"
    key_file.write_text(stack.enrolled("keyfile") + "\n")
    key_file.chmod(0o644)
    ep = ServiceProcess(
        "endpoint-loose-key",
        ["endpoint", "--name", "keyfile", "--url", stack.url, "--plugins", "sysinfo", "--key-file", str(key_file)],
        env=scrubbed_environ(tmp_path / "elsewhere"),
        log_dir=stack.log_dir,
    )
    with procs.running(ep.start()):
        assert ep.proc is not None and ep.proc.wait(60) == 2
    assert f"chmod 600 {key_file}" in ep.log_text() and stack.enrolled("keyfile") not in ep.log_text()


def test_no_secret_in_logs_or_error_answers(stack: Stack) -> None:
    """Refusals never repeat what was presented; the logs of every process never hold a
    token or key, after sign-ins, refused keys and refused tokens."""
    for presented in (stack.alice + "x", stack.key, stack.token[:-1]):
        resp = httpx.get(f"{stack.url}/endpoints", headers=bearer(presented), timeout=10)
        assert resp.status_code == 401 and presented not in resp.text
    link = httpx.post(f"{stack.url}/ui/api/signin-link", headers=bearer(stack.alice), timeout=10).json()["url"]
    secret = link.split("#signin=", 1)[1]
    session = httpx.post(f"{stack.url}/ui/api/session", json={"secret": secret}, headers={"X-Orbit-CSRF": "1"}, timeout=10)
    cookie = session.cookies["orbit_session"]
    assert stack.alice not in link and stack.alice not in session.text and stack.alice not in str(session.headers)
    logs = stack.logs(tail=1_000_000)
    for value in (*secrets_of(stack), secret, cookie):
        assert value not in logs


def test_reprs_hold_no_secret(home: Path) -> None:
    """What a traceback, a debugger or a log line prints of the objects holding secrets."""
    token, key = "orbit_ct_repr-secret-token-value", "orbit_ek_repr-secret-key-value"
    settings = BridgeSettings(token=SecretStr(token), port=0)
    store = IdentityStore(home)
    auth = Authenticator(token, store)
    signin = BrowserSignIn()
    secret = signin.secrets.mint(DEFAULT_IDENTITY)
    signin.sessions.open(DEFAULT_IDENTITY)
    endpoint = EndpointSettings(name="ep", url="http://127.0.0.1:1", key=SecretStr(key))
    with BridgeClient("http://127.0.0.1:1", token=token) as client:
        shown = " ".join(repr(x) for x in (settings, settings.redacted(), store, auth, signin, endpoint, client))
    for value in (token, key, secret):
        assert value not in shown
