"""Real Orbit processes on 127.0.0.1 for integration tests.

``orbit_stack(...)`` (function scope) starts a bridge and, by default, one endpoint
``ep1`` hosting ``sysinfo``, each a real ``radical-orbit`` subprocess with a private
HOME and log directory, and tears everything down after the test::

    def test_x(orbit_stack):
        stack = orbit_stack()                                  # bridge + ep1 (sysinfo)
        stack = orbit_stack(plugins=("globus",), env={"GLOBUS_SDK_ENVIRONMENT": ...})
        stack = orbit_stack(test_routes=True)      # ep1 serves sysinfo's echo, bytes, sleep
        bc = stack.client()                                    # closed at teardown
        stack.add_endpoint("ep2", plugins=("sysinfo",))
        stack.kill_endpoint("ep1"); stack.restart_bridge()

``sysinfo_stack`` (module scope) is one shared bridge + ``ep1`` for tests that do
not change the topology; its ``ep1`` serves sysinfo's test routes. When a test fails, the tail of every process log is printed
in the teardown section of the report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from orbit_test_env import scrubbed_environ

from radical.orbit import testing as procs
from radical.orbit.client.bridge import BridgeClient
from radical.orbit.testing import ServiceProcess

#: the token tests start bridges with (passed through the environment, never argv)
TEST_TOKEN = "integration-test-token"
#: pass as ``token=`` to let the bridge generate its token into ~/.radical/orbit/bridge.token
GENERATE = "<generate>"
#: endpoint arguments that turn on sysinfo's test routes (echo, echo/bytes, sleep; off by default)
TEST_ROUTES = ("-o", "sysinfo.test_routes=true")

def stack_environ(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without Orbit/Globus settings, HOME set, plus ``extra``."""
    return scrubbed_environ(home, **(extra or {}))


class OrbitStack:
    """A bridge and its endpoints as processes, plus the clients talking to them.

    :param home: HOME of every process (``~/.radical/orbit`` lives below it)
    :param log_dir: where ``bridge.log`` and ``endpoint-<name>.log`` go
    :param token: bridge token; None: ``--no-auth``; :data:`GENERATE`: let it generate one
    :param env: extra environment for every process
    :param bridge_args: extra ``radical-orbit bridge`` arguments (``--heartbeat 0.5``)
    """

    def __init__(
        self,
        home: Path,
        log_dir: Path,
        *,
        token: str | None = TEST_TOKEN,
        env: dict[str, str] | None = None,
        bridge_args: Sequence[str] = (),
    ) -> None:
        self.home = home
        self.log_dir = log_dir
        self.token: str | None = token
        self.env = dict(env or {})
        self.bridge_args = list(bridge_args)
        self.port = procs.free_port()
        self.bridge: ServiceProcess | None = None
        self.endpoints: dict[str, ServiceProcess] = {}
        self._clients: list[BridgeClient] = []
        self._keys: dict[str, str] = {}
        self._generate = token == GENERATE

    def __repr__(self) -> str:
        return f"OrbitStack({self.url!r}, endpoints={sorted(self.endpoints)})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/endpoint"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for raw httpx / websocket calls."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # -- processes -------------------------------------------------------------------
    def start_bridge(self, timeout: float = 30.0) -> ServiceProcess:
        env = stack_environ(self.home, self.env)
        if self._generate:
            argv = ["bridge", "--host", "127.0.0.1", "--port", str(self.port), *self.bridge_args]
            proc = procs.start_healthy(ServiceProcess("bridge", argv, env=env, log_dir=self.log_dir, url=self.url), timeout)
            token_file = self.home / ".radical" / "orbit" / "bridge.token"
            self.token = token_file.read_text(encoding="utf-8").strip()
            proc.token = self.token
        else:
            proc = procs.start_bridge(
                port=self.port, token=self.token, args=self.bridge_args, env=env, log_dir=self.log_dir, timeout=timeout
            )
        self.bridge = proc
        return proc

    def stop_bridge(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()

    def restart_bridge(self, timeout: float = 30.0) -> ServiceProcess:
        """Stop the bridge and start a new one on the same port (and token)."""
        self.stop_bridge()
        self._generate = False  # keep the token the first one generated
        deadline = time.monotonic() + 10
        while True:  # the old socket may linger for a moment
            try:
                return self.start_bridge(timeout=timeout)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def add_endpoint(
        self,
        name: str = "ep1",
        plugins: Sequence[str] | None = ("sysinfo",),
        *,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        token: str | None = None,
        timeout: float = 30.0,
    ) -> ServiceProcess:
        """Start ``radical-orbit endpoint --name NAME`` and wait until the bridge lists it."""
        assert self.bridge is not None, "start the bridge first"
        proc = procs.start_endpoint(
            name,
            self.bridge,
            token=token,
            plugins=plugins,
            args=args,
            env=stack_environ(self.home, {**self.env, **(env or {})}),
            log_dir=self.log_dir,
            timeout=timeout,
        )
        self.endpoints[name] = proc
        return proc

    def kill_endpoint(self, name: str = "ep1", sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to an endpoint (SIGKILL: gone at once; SIGSTOP: silent but connected)."""
        proc = self.endpoints[name]
        assert proc.proc is not None
        os.kill(proc.proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.proc.wait(10)

    def wait_listed(self, name: str = "ep1", *, present: bool = True, timeout: float = 30.0) -> None:
        """Poll ``GET /endpoints`` until ``name`` is (or is no longer) listed as alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                resp = httpx.get(f"{self.url}/endpoints", headers=self.headers, timeout=2.0)
                if resp.status_code == 200:
                    names = {e["name"] for e in resp.json()["endpoints"] if e.get("alive", True)}
                    if (name in names) == present:
                        return
            time.sleep(0.05)
        raise AssertionError(f"endpoint {name!r} {'not ' if present else 'still '}listed after {timeout} s\n{self.logs()}")

    def endpoint_headers(self, name: str, key: str | None = None) -> dict[str, str]:
        """What an endpoint sends on the upgrade request: ``key`` (default: the key the
        bridge wrote in this stack's HOME) and ``name``, for raw WebSocket tests."""
        key = key or (self.home / ".radical" / "orbit" / "endpoint.key").read_text(encoding="utf-8").strip()
        return {"Authorization": f"Bearer {key}", "X-Orbit-Endpoint": name}

    def enrolled(self, name: str) -> str:
        """An endpoint key for ``name`` (``radical-orbit bridge endpoints enroll``), made once per stack."""
        if name not in self._keys:
            assert self.bridge is not None, "start the bridge first"
            self._keys[name] = procs.enroll_endpoint(self.bridge, name)
        return self._keys[name]

    # -- clients -----------------------------------------------------------------------
    def client(self, **kwargs: Any) -> BridgeClient:
        """A BridgeClient for this bridge (closed at teardown)."""
        kwargs.setdefault("url", self.url)
        kwargs.setdefault("token", self.token)
        bc = BridgeClient(**kwargs)
        self._clients.append(bc)
        return bc

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """A raw authenticated ``GET`` on the bridge."""
        kwargs.setdefault("headers", self.headers)
        kwargs.setdefault("timeout", 10.0)
        return httpx.get(f"{self.url}{path}", **kwargs)

    # -- teardown ------------------------------------------------------------------------
    def logs(self, tail: int = 40) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-tail:]
            parts.append(f"----- {path.name} (last {len(lines)} lines) -----\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        for bc in self._clients:
            bc.close()
        self._clients.clear()
        for proc in reversed(list(self.endpoints.values())):
            if proc.proc is not None and proc.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.proc.pid, signal.SIGCONT)  # a SIGSTOPped one must see SIGTERM
            proc.stop()
        self.stop_bridge()


StackFactory = Callable[..., OrbitStack]


@contextlib.contextmanager
def running_stack(
    home: Path,
    log_dir: Path,
    *,
    plugins: Sequence[str] | None = ("sysinfo",),
    endpoint: str | None = "ep1",
    token: str | None = TEST_TOKEN,
    env: dict[str, str] | None = None,
    bridge_args: Sequence[str] = (),
    endpoint_args: Sequence[str] = (),
    test_routes: bool = False,
) -> Iterator[OrbitStack]:
    """A started :class:`OrbitStack` (bridge + optional endpoint), stopped on exit.

    :param test_routes: the endpoint serves sysinfo's echo, echo/bytes and sleep
    """
    stack = OrbitStack(home, log_dir, token=token, env=env, bridge_args=bridge_args)
    try:
        stack.start_bridge()
        if endpoint is not None:
            stack.add_endpoint(endpoint, plugins, args=[*endpoint_args, *(TEST_ROUTES if test_routes else ())])
        yield stack
    finally:
        stack.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"orbit_report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "orbit_report_call", None) or getattr(request.node, "orbit_report_setup", None)
    return bool(report is not None and report.failed)


@pytest.fixture
def orbit_stack(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Iterator[StackFactory]:
    """Factory: ``orbit_stack(plugins=("sysinfo",), endpoint="ep1", token=..., env=..., bridge_args=..., test_routes=...)``.

    Processes use this test's HOME (so files the bridge writes are found by a
    ``BridgeClient()`` without arguments) and are all stopped after the test.
    """
    stacks: list[contextlib.ExitStack] = []
    made: list[OrbitStack] = []

    def factory(**kwargs: Any) -> OrbitStack:
        exit_stack = contextlib.ExitStack()
        stacks.append(exit_stack)
        log_dir = tmp_path / f"logs{len(stacks)}"
        stack = exit_stack.enter_context(running_stack(kwargs.pop("home", home), log_dir, **kwargs))
        made.append(stack)
        return stack

    yield factory
    if _failed(request):
        for stack in made:
            print(stack.logs())
    for exit_stack in reversed(stacks):
        exit_stack.close()


@pytest.fixture(scope="module")
def sysinfo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrbitStack]:
    """One bridge + ``ep1`` (sysinfo) shared by a module's read-only tests."""
    base = Path(tempfile.mkdtemp(prefix="orbit-it-", dir=tmp_path_factory.getbasetemp()))
    (base / "home").mkdir()
    with running_stack(base / "home", base / "logs", test_routes=True) as stack:
        yield stack
