"""The seed's client snippet with nothing configured but the files the bridge writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from radical.orbit import BridgeClient
from radical.orbit.cli.endpoints import endpoints

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SEED = """
import sys
from radical.orbit import BridgeClient
from radical.orbit.cli.endpoints import endpoints
bc = BridgeClient()
ec = bc.get_endpoint_client(bc.list_endpoints()[0])
p = ec.get_plugin('sysinfo')
info = p.info()
print(type(p).__name__, info['hostname'], info['cpu_count'])
server_side = [m for m in ('fastapi', 'uvicorn', 'starlette', 'globus_sdk') if m in sys.modules]
assert not server_side, server_side
bc.close()
"""


def test_seed_snippet_finds_url_and_token_in_home(orbit_stack: Any, home: Path) -> None:
    stack = orbit_stack(token="<generate>")  # the bridge generates its token into ~/.radical/orbit
    orbit = home / ".radical" / "orbit"
    token_file, url_file = orbit / "bridge.token", orbit / "bridge.url"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert url_file.read_text().strip() == stack.url
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert token not in stack.logs(tail=10_000)  # never printed

    # in this process: no url/token arguments, no environment, only HOME
    bc = BridgeClient()
    assert bc.url == stack.url and bc.token_source == str(token_file)
    ec = bc.get_endpoint_client(bc.list_endpoints()[0])
    assert ec.get_plugin("sysinfo").info()["hostname"]
    bc.close()

    # and in a fresh interpreter, which must not import anything server-side
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RADICAL_ORBIT_", "GLOBUS_"))}
    proc = subprocess.run([sys.executable, "-c", SEED], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SysinfoClient ")


def test_endpoints_cli(orbit_stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = orbit_stack()
    monkeypatch.setenv("RADICAL_ORBIT_BRIDGE_TOKEN", stack.token)
    runner = CliRunner()
    out = runner.invoke(endpoints, ["--url", stack.url, "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["bridge"] == stack.url
    (ep,) = data["endpoints"]
    assert ep["name"] == "ep1" and ep["plugins"][0]["name"] == "sysinfo" and ep["plugins"][0]["enabled"]

    monkeypatch.setenv("COLUMNS", "200")
    table = runner.invoke(endpoints, ["--url", stack.url])
    assert table.exit_code == 0, table.output
    assert "ep1" in table.stdout and "sysinfo" in table.stdout and stack.url in table.stdout

    refused = runner.invoke(endpoints, ["--url", stack.url, "--token", "wrong-token-value"])
    assert refused.exit_code == 1
    assert "refused the token" in refused.stderr and "wrong-token-value" not in refused.output
