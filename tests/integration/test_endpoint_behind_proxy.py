"""An endpoint behind an outbound HTTP proxy: bridge, CONNECT proxy and endpoint as separate
processes on 127.0.0.1, the proxy named to the endpoint only through its environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from orbit_test_env import scrubbed_environ

from radical.orbit import BridgeClient
from radical.orbit.testing import (
    ServiceProcess,
    free_port,
    running,
    start_endpoint,
    start_healthy,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Stack = Any  # tests/integration/conftest.py: OrbitStack
PROXY_SCRIPT = Path(__file__).with_name("connect_proxy.py")
TLS_TOKEN = "proxy-test-bridge-token"


class ProxyProcess(ServiceProcess):
    """``connect_proxy.py`` as a process (readiness: its ``GET /health``)."""

    @property
    def argv(self) -> list[str]:
        return [sys.executable, str(PROXY_SCRIPT), *self.args]

    def seen(self) -> dict[str, list[str]]:
        """``{"tunnels": [host:port...], "refused": [...]}`` so far."""
        return dict(httpx.get(f"{self.url}/tunnels", timeout=5).json())


@pytest.fixture
def start_proxy(home: Path, tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """Factory: ``start_proxy(credentials="user:password")``; stopped after the test."""
    started: list[ProxyProcess] = []

    def start(credentials: str | None = None) -> ProxyProcess:
        port = free_port()
        args = ["--port", str(port), *(["--credentials", credentials] if credentials else [])]
        proc = ProxyProcess("proxy", args, env=scrubbed_environ(home), log_dir=tmp_path / "proxy", url=f"http://127.0.0.1:{port}")
        started.append(proc)
        return start_healthy(proc, timeout=30)  # type: ignore[return-value]

    yield start
    for proc in started:
        proc.stop()


def wait_log(proc: ServiceProcess, text: str, timeout: float = 30.0) -> str:
    """The process log once it contains ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = proc.log_text()
        if text in log:
            return log
        assert proc.alive(), f"{proc.name} exited:\n{log}"
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log of {proc.name} after {timeout:.0f} s:\n{proc.log_text()}")


def test_ws_bridge_through_the_proxy(orbit_stack: Callable[..., Stack], start_proxy: Callable[..., ProxyProcess]) -> None:
    proxy = start_proxy()
    stack = orbit_stack(endpoint=None)
    ep = stack.add_endpoint("ep1", env={"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url})
    assert proxy.seen()["tunnels"] == [f"127.0.0.1:{stack.port}"]  # registered THROUGH the proxy
    info = stack.client().get_endpoint_client("ep1").get_plugin("sysinfo").info()
    assert info["hostname"]
    assert f"through the proxy {proxy.url} (from HTTPS_PROXY)" in ep.log_text()
    assert len(proxy.seen()["tunnels"]) == 1  # one tunnel carries everything


def test_wss_bridge_through_the_proxy_with_credentials(
    home: Path, tmp_path: Path, start_proxy: Callable[..., ProxyProcess]
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    proxy = start_proxy(credentials="orbit:pr0xy-pass")
    port, logs = free_port(), tmp_path / "logs"
    bridge = ServiceProcess(
        "bridge", ["bridge", "--host", "127.0.0.1", "--port", str(port), "--cert", str(cert), "--key", str(key)],
        env=scrubbed_environ(home, RADICAL_ORBIT_BRIDGE_TOKEN=TLS_TOKEN), log_dir=logs,
        url=f"https://127.0.0.1:{port}", token=TLS_TOKEN,
    )
    with running(start_healthy(bridge, timeout=30)):
        env = scrubbed_environ(home, HTTPS_PROXY=f"http://orbit:pr0xy-pass@127.0.0.1:{proxy.url.rpartition(':')[2]}")
        ep = start_endpoint("ep-tls", bridge, plugins=["sysinfo"], args=["--cert", str(cert)], env=env, log_dir=logs)
        with running(ep):
            assert proxy.seen() == {"tunnels": [f"127.0.0.1:{port}"], "refused": []}
            with BridgeClient(url=bridge.url, token=TLS_TOKEN, cert=str(cert)) as bc:
                assert bc.get_endpoint_client("ep-tls").get_plugin("sysinfo").info()["hostname"]
            log = ep.log_text()
            assert "wss://127.0.0.1" in log and "registered with the bridge" in log
            assert "pr0xy-pass" not in log and TLS_TOKEN not in log


def test_no_proxy_and_the_no_proxy_flag_dial_directly(
    orbit_stack: Callable[..., Stack], start_proxy: Callable[..., ProxyProcess]
) -> None:
    proxy = start_proxy()
    stack = orbit_stack(endpoint=None)
    stack.add_endpoint("ep1", env={"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    ep2 = stack.add_endpoint("ep2", env={"https_proxy": proxy.url}, args=["--no-proxy"])
    assert proxy.seen()["tunnels"] == []
    assert stack.client().get_endpoint_client("ep2").get_plugin("sysinfo").info()["hostname"]
    assert "(--no-proxy: directly)" in ep2.log_text()


def test_a_proxy_that_wants_credentials_is_a_clear_message_and_a_retry(
    orbit_stack: Callable[..., Stack], start_proxy: Callable[..., ProxyProcess], home: Path, tmp_path: Path
) -> None:
    proxy = start_proxy(credentials="orbit:right-pass")
    stack = orbit_stack(endpoint=None)
    proxy_port = proxy.url.rpartition(":")[2]
    argv = ["endpoint", "--url", stack.url, "--plugins", "sysinfo"]
    without = ServiceProcess(
        "endpoint-without", [*argv, "--name", "without"], log_dir=tmp_path / "ep",
        env=scrubbed_environ(home, HTTPS_PROXY=proxy.url, RADICAL_ORBIT_BRIDGE_TOKEN=stack.token),
    )
    wrong = ServiceProcess(
        "endpoint-wrong", [*argv, "--name", "wrong"], log_dir=tmp_path / "ep",
        env=scrubbed_environ(home, HTTPS_PROXY=f"http://orbit:wrong-pass@127.0.0.1:{proxy_port}",
                             RADICAL_ORBIT_BRIDGE_TOKEN=stack.token),
    )
    with running(without.start(), wrong.start()):
        log = wait_log(without, "reconnecting in")
        assert "wants credentials (407 Proxy Authentication Required): put them in HTTPS_PROXY: http://user:password@" in log
        log = wait_log(wrong, "reconnecting in")
        assert "did not accept the credentials in HTTPS_PROXY" in log
        assert "wrong-pass" not in log and stack.token not in log
        deadline = time.monotonic() + 30
        while len(proxy.seen()["refused"]) < 4:  # both keep dialing, with backoff
            assert time.monotonic() < deadline, proxy.seen()
            time.sleep(0.1)
        assert proxy.seen()["tunnels"] == []
        assert stack.get("/endpoints").json()["endpoints"] == []
        assert without.alive() and wrong.alive()
    assert without.proc is not None and without.proc.returncode == 0  # SIGTERM: a clean stop
