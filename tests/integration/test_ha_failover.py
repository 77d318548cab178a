"""kill -9 the replica that holds the endpoint while 50 transfers are active (real processes).

Two replicas A and B on one Redis, the Globus emulator, an endpoint hosting globus
told both replicas (``--url A,B``, connected to A), and three clients told both (two
list A first, one B). 50 transfers run at a bandwidth cap (the emulator runs three of
a user's tasks at a time, Globus's rule: the others wait ACTIVE/Queued). A is killed
with SIGKILL while they run, just after Redis stalled for a second (so A dies holding
notifications it had not yet put in the stream): the endpoint and the clients carry
on through B within 3 s, and every client gets every task's final ``transfer_status``
exactly once (the endpoint sends B what A never acknowledged, the stream drops what A
did store; the event ids are the stream's, so each listener resumes on B with
Last-Event-ID).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from globus_stack import LOCAL, TUTORIAL_2, emulator_config, unique_dir
from ha_helpers import cluster, until

from radical.orbit.client.bridge import BridgeClient
from radical.orbit.errors import OrbitError
from radical.orbit.testing import (
    Replicas,
    ServiceProcess,
    start_emulator,
    start_endpoint,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TRANSFERS = 50
SIZE = 100_000
#: bytes/s per task: each transfer takes SIZE / RATE s, three at a time
RATE = 250_000
FINAL = {"SUCCEEDED", "FAILED"}
FAILOVER_WITHIN = 3.0


class Listener:
    """One client's ``transfer_status`` events, counted per task (finals) and per event id."""

    def __init__(self, urls: list[str], token: str) -> None:
        self.bc = BridgeClient(url=urls, token=token)
        self.finals: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.bc.register_callback("ep-ha", "globus", "transfer_status", self)

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.ids[str(event.get("id"))] += 1
            self.log.append((str(event.get("id")), str(event["payload"].get("task_id")), str(event["payload"].get("status"))))
            if event["payload"].get("status") in FINAL:
                self.finals[str(event["payload"]["task_id"])] += 1

    def close(self) -> None:
        self.bc.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[tuple[Replicas, ServiceProcess, Path]]:
    with cluster(tmp_path_factory, request) as replicas:
        root = replicas.base / "emulator"
        root.mkdir()
        config = replicas.base / "emulator.json"
        config.write_text(json.dumps(emulator_config(root)))
        emulator = start_emulator(root=root, args=["--config", str(config), "--retry-interval", "0.2"], log_dir=replicas.logs)
        a, b = replicas.bridges
        env = {
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": f"{emulator.url}/",
            "GLOBUS_SDK_SERVICE_URL_AUTH": f"{emulator.url}/",
            "RADICAL_ORBIT_GLOBUS_COLLECTION": LOCAL,
        }
        endpoint = start_endpoint(
            "ep-ha", a, key=replicas.enroll("ep-ha"), plugins=["globus"], home=replicas.home("ep"), log_dir=replicas.logs,
            env={**os.environ, **env},
            args=["--url", f"{a.url},{b.url}", "-o", "globus.min_interval=0.2", "-o", "globus.max_interval=0.5"],
        )
        try:
            yield replicas, emulator, root
        finally:
            endpoint.stop()
            emulator.stop()


def emulator_admin(emulator: ServiceProcess, method: str, path: str, **kw: Any) -> Any:
    resp = httpx.request(method, f"{emulator.url}/_emulator/{path}", timeout=10, **kw)
    resp.raise_for_status()
    return resp.json()


def test_kill_9_the_endpoints_replica_while_50_transfers_are_active(stack: tuple[Replicas, ServiceProcess, Path]) -> None:
    replicas, emulator, root = stack
    a, b = replicas.urls
    listeners = [Listener([a, b], replicas.token), Listener([a, b], replicas.token), Listener([b, a], replicas.token)]
    submitter = BridgeClient(url=[a, b], token=replicas.token)
    only_b = BridgeClient(url=b, token=replicas.token)
    try:
        token = emulator_admin(emulator, "POST", "token", json={})["access_token"]
        globus = submitter.get_endpoint_client("ep-ha").get_plugin("globus", access_token=token)
        emulator_admin(emulator, "PATCH", "faults", json={"bandwidth": {TUTORIAL_2: RATE}})
        out = unique_dir()
        tasks = []
        for i in range(TRANSFERS):
            name = f"ha-{i}.bin"
            (root / "t2" / "home" / "dev").mkdir(parents=True, exist_ok=True)
            (root / "t2" / "home" / "dev" / name).write_bytes(b"\0" * SIZE)
            sub = globus.submit_transfer(TUTORIAL_2, "local", [{"source": f"/~/{name}", "destination": f"{out}{name}"}], label=f"ha {i}")
            tasks.append(sub["task_id"])
        # status checks through a session of their own: a get_task on the submitting session
        # would feed its tracker a document alongside its own polls
        observer = submitter.get_endpoint_client("ep-ha").get_plugin("globus", access_token=token)
        active = [t for t in tasks if observer.get_task(t)["status"] == "ACTIVE"]
        assert len(active) >= TRANSFERS - 10, "most transfers must still be running when the replica dies"

        # a session made through B alone (forwarded to A while A lives) probes where the endpoint is
        probe = only_b.get_endpoint_client("ep-ha").get_plugin("globus", access_token=token)

        def answers_through_b() -> bool:
            try:
                return probe.get_task(tasks[0])["task_id"] == tasks[0]
            except OrbitError:  # 503 while the lease still names the dead A
                return False

        # the hard case: Redis stalls for a moment, so A holds what the endpoint tells it in
        # its outbox, not yet in the stream and not acknowledged, when it dies: the endpoint
        # must tell B again, and B must not store twice what A did store
        assert replicas.redis is not None
        replicas.redis.signal(signal.SIGSTOP)
        try:
            time.sleep(1.0)
            replicas.kill(0, signal.SIGKILL)
        finally:
            replicas.redis.signal(signal.SIGCONT)
        killed = time.monotonic()
        until(answers_through_b, "the endpoint re-registered with B", timeout=FAILOVER_WITHIN, every=0.02)
        # a client told [A, B] carries on through B
        assert observer.get_task(tasks[-1])["task_id"] == tasks[-1]
        assert time.monotonic() - killed <= FAILOVER_WITHIN + 1.0

        for task in tasks:
            assert globus.task_wait(task, timeout=120, polling_interval=0.5)["completed"] is True
        try:
            until(lambda: all(len(listener.finals) == TRANSFERS for listener in listeners), "every client has every final", timeout=30)
        except AssertionError:  # say which finals each client lacks, and who got them
            for n, listener in enumerate(listeners):
                missing = set(tasks) - set(listener.finals)
                print(f"client {n}: {len(listener.finals)} finals, missing {missing}")
                for other in listeners:
                    print("  elsewhere:", [e for e in other.log if e[1] in missing])
                print("  mine:", listener.log)
            raise
        time.sleep(1.0)  # a duplicate would arrive about now
        log = (replicas.logs / "endpoint-ep-ha.log")
        assert "did not acknowledge are sent again" in log.read_text(), "the endpoint had nothing to send again: the test missed its case"
        problems = []
        for n, listener in enumerate(listeners):
            with listener.lock:
                twice = {task: count for task, count in listener.finals.items() if count != 1}
                if set(listener.finals) != set(tasks) or twice or max(listener.ids.values()) != 1:
                    problems.append(f"client {n}: finals more than once {twice}, events twice "
                                    f"{[i for i, c in listener.ids.items() if c > 1]}")
                    for other, theirs in enumerate(listeners):
                        problems.append(f"  client {other} on those tasks: {[e for e in theirs.log if e[1] in twice]}")
        assert not problems, "\n".join(problems)
    finally:
        emulator_admin(emulator, "PATCH", "faults", json={"bandwidth": {}})
        submitter.close()
        only_b.close()
        for listener in listeners:
            listener.close()
