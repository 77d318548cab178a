"""GlobusClient: the seed's method names, parameters and defaults; no server-side imports;
credentials never in reprs; long waits get a matching bridge timeout."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import pytest

from radical.orbit.plugins.globus.client import GlobusClient

SECRET = "client-secret-token-xyz"


class FakeResponse:
    def __init__(self, data: Any) -> None:
        self._data = data
        self.content = b"x"

    def json(self) -> Any:
        return self._data


class FakeEC:
    name = "ep"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.bridge = None

    def request(self, method: str, plugin: str, route: str, **kw: Any) -> FakeResponse:
        self.calls.append({"method": method, "plugin": plugin, "route": route, **kw})
        if route == "register_session":
            return FakeResponse({"sid": f"sid{len(self.calls):030d}"})
        if route in ("submit_transfer", "delete"):
            return FakeResponse({"task_id": "t1", "submission_id": "s1", "status": "ACTIVE"})
        if route == "task_wait":
            return FakeResponse({"task_id": kw["json"]["task_id"], "completed": True, "status": "SUCCEEDED"})
        if route == "submission_id":
            assert kw["json"]["kind"] in ("transfer", "delete") and "submission_id" not in kw["json"]["request"]
            return FakeResponse({"value": str(__import__("uuid").uuid4())})
        return FakeResponse({"ok": True})

    def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
        return self.request("POST", plugin, route, json=body, timeout=timeout).json()


def test_seed_signatures() -> None:
    sig = {name: str(inspect.signature(getattr(GlobusClient, name))) for name in (
        "register_session", "submit_transfer", "get_task", "task_wait", "cancel_task", "list_tasks",
        "ls", "mkdir", "rename", "delete", "endpoint_search", "get_endpoint", "close")}
    assert sig["register_session"].startswith("(self, access_token: 'str | None' = None, refresh_token: 'str | None' = None, client_id: 'str | None' = None, local_collection: 'str | None' = None, *")
    assert "(self, source" in sig["submit_transfer"] and "items" in sig["submit_transfer"]
    assert "label: 'str | None' = None, sync_level: 'str | int | None' = None, *" in sig["submit_transfer"]
    assert "timeout: 'float' = 60, polling_interval: 'float' = 10" in sig["task_wait"]
    assert "limit: 'int' = 100" in sig["list_tasks"]
    assert "path: 'str | None' = None" in sig["ls"]
    assert "recursive: 'bool' = False, label: 'str | None' = None" in sig["delete"]
    assert "filter_text: 'str | None' = None, limit: 'int' = 25" in sig["endpoint_search"]


def test_requires_credentials_and_repr_hides_them() -> None:
    ec = FakeEC()
    gc = GlobusClient(ec)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="register_session"):
        gc.ls("local")
    gc.register_session(access_token=SECRET, local_collection="6c54cade-bde5-45c1-bdea-f4bd71dba2cc")
    assert SECRET not in repr(gc) and SECRET not in str(vars(gc))
    body = ec.calls[-1]["json"]
    assert body == {"access_token": SECRET, "local_collection": "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"}


def test_calls_and_wait_timeouts() -> None:
    ec = FakeEC()
    gc = GlobusClient(ec, client_id="c", client_secret=SECRET)  # type: ignore[arg-type]
    assert ec.calls[0]["json"] == {"client_id": "c", "client_secret": SECRET}
    sub = gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b", "recursive": True}], label="L", sync_level="checksum")
    assert sub == {"task_id": "t1", "submission_id": "s1", "status": "ACTIVE"}
    body = ec.calls[-1]["json"]
    assert body["sync_level"] == "checksum" and "fail_fast" not in body and body["label"] == "L"
    res = gc.task_wait("t1", timeout=120)
    assert res["completed"] is True
    call = ec.calls[-1]
    assert call["json"]["timeout"] == 120 and call["json"]["polling_interval"] == 10
    assert call["timeout"] > 120  # the bridge's deadline (X-Orbit-Timeout) outlasts the wait
    gc.delete("u", "/x")
    assert ec.calls[-1]["json"]["paths"] == ["/x"] and ec.calls[-1]["json"]["recursive"] is False
    gc.list_tasks(status="ACTIVE")
    assert ec.calls[-1]["json"]["status"] == ["ACTIVE"] and ec.calls[-1]["json"]["limit"] == 100
    gc.endpoint_search("tutorial")
    assert ec.calls[-1]["json"]["filter_text"] == "tutorial" and ec.calls[-1]["json"]["limit"] == 25


def test_reregistration_reattaches_submitted_tasks() -> None:
    ec = FakeEC()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    gc.register_session(access_token="b" * 10)
    reg = [c for c in ec.calls if c["route"] == "register_session"][-1]
    assert reg["json"]["track"] == ["t1"]


def test_client_imports_nothing_server_side() -> None:
    code = (
        "import sys\n"
        "import radical.orbit.plugins.globus.client\n"
        "bad = [m for m in ('fastapi', 'globus_sdk', 'uvicorn', 'starlette') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda g: g.submit_transfer("u", "local", {"source": "/a", "destination": "/b"}), "items must be a list of dicts; wrap the single one"),
        (lambda g: g.submit_transfer("u", "local", None), "items must be a list of dicts such as"),
        (lambda g: g.submit_transfer("u", "local", [None]), "items[0] must be a dict"),
        (lambda g: g.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}], filter_rules=[1]), "filter_rules[0] must be a dict"),
        (lambda g: g.delete("local", None), "paths must be a path or a list of them"),
        (lambda g: g.wait_all(None), "task_ids must be a task id or a list of them"),
        (lambda g: g.track(5), "task_ids must be a task id or a list of them"),
        (lambda g: g.list_tasks(status=5), "status must be a task status or a list of them"),
        (lambda g: g.task_wait("t1", timeout=None), "task_wait: timeout must be a number of seconds, got None"),
        (lambda g: g.task_wait("t1", timeout="abc"), "task_wait: timeout must be a number of seconds"),
        (lambda g: g.task_wait("t1", timeout=10**400), "task_wait: timeout must be at most 1e9 seconds"),
        (lambda g: g.wait_all(["t1"], timeout=float("nan")), "wait_all: timeout must be a finite number"),
        (lambda g: g.wait_all(["t1"], timeout=1e300), "wait_all: timeout must be at most 1e9 seconds"),
        (lambda g: g.register_session(access_token="a" * 10, track=5), "track must be a task id or a list of them"),
        # these went out as the strings "None" and "b'...'" and came back as a 422 about them
        (lambda g: g.task_wait(None), "task_id must be a task id (a str or uuid.UUID"),
        (lambda g: g.get_task(b"0000"), "task_id must be a task id (a str or uuid.UUID"),
        (lambda g: g.cancel_task(5), "got int"),
        (lambda g: g.update_task(None, label="x"), "got NoneType"),
    ],
)
def test_wrong_shapes_are_usage_errors_naming_the_argument(call: Any, says: str) -> None:
    """Each was a TypeError/ValueError/OverflowError from the shaping code; nothing is sent."""
    from radical.orbit.errors import UsageError

    ec = FakeEC()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    sent = len(ec.calls)
    with pytest.raises(UsageError) as info:
        call(gc)
    assert says in info.value.message
    assert len(ec.calls) == sent


def test_single_ids_and_paths_are_lists_of_one() -> None:
    ec = FakeEC()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    gc.wait_all("6c54cade-bde5-45c1-bdea-f4bd71dba2cc", timeout=1)
    assert ec.calls[-1]["json"]["task_ids"] == ["6c54cade-bde5-45c1-bdea-f4bd71dba2cc"]
    gc.track("6c54cade-bde5-45c1-bdea-f4bd71dba2cc")
    assert ec.calls[-1]["json"]["task_ids"] == ["6c54cade-bde5-45c1-bdea-f4bd71dba2cc"]


class OutcomeOpenEC(FakeEC):
    """Submissions fail with ``error`` (the bridge gave up, the endpoint went away...)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def request(self, method: str, plugin: str, route: str, **kw: Any) -> FakeResponse:
        if route in ("submit_transfer", "delete"):
            self.calls.append({"method": method, "plugin": plugin, "route": route, **kw})
            raise self.error
        return super().request(method, plugin, route, **kw)


def test_a_submission_id_is_fetched_from_globus_unless_given() -> None:
    """The client holds the id before it submits (so a timeout can name it); Globus
    issued it, as globus-sdk's own submissions do."""
    import uuid

    ec = FakeEC()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    assert [c["route"] for c in ec.calls[-2:]] == ["submission_id", "submit_transfer"]
    made = ec.calls[-1]["json"]["submission_id"]
    assert uuid.UUID(made)
    gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    assert ec.calls[-1]["json"]["submission_id"] != made  # one per submission
    given = uuid.uuid4()
    gc.delete("u", "/x", submission_id=given)
    assert ec.calls[-1]["json"]["submission_id"] == str(given)


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("route", ["submit_transfer", "delete"])
def test_an_error_that_leaves_the_outcome_open_names_the_submission_id(status: int, route: str) -> None:
    from radical.orbit.errors import error_from_payload

    err = error_from_payload(status, {"code": None, "message": "the endpoint did not answer in time"}, context=f"ep/globus/{route}")
    ec = OutcomeOpenEC(err)
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    with pytest.raises(type(err)) as info:
        if route == "submit_transfer":
            gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}], submission_id="s-1")
        else:
            gc.delete("u", "/x", submission_id="s-1")
    exc = info.value
    assert exc.details["submission_id"] == "s-1" and exc.http_status == status
    assert "may still run: retry with submission_id='s-1'" in exc.message and exc.message in str(exc)
    assert str(exc).startswith(f"HTTP {status} \u2014 ep/globus/{route}: the endpoint did not answer in time")


def test_an_error_that_says_nothing_ran_is_left_alone() -> None:
    from radical.orbit.errors import ValidationError

    ec = OutcomeOpenEC(ValidationError("invalid request: 'items'"))
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    assert "submission_id" not in info.value.details and "may still run" not in info.value.message


class TasksEC(FakeEC):
    """Each submission makes a new task; task_wait says SUCCEEDED for ``done`` ones."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.done: set[str] = set()

    def request(self, method: str, plugin: str, route: str, **kw: Any) -> FakeResponse:
        if route == "submit_transfer":
            self.calls.append({"method": method, "plugin": plugin, "route": route, **kw})
            self.n += 1
            return FakeResponse({"task_id": f"t{self.n}", "submission_id": "s", "status": "ACTIVE"})
        if route == "task_wait":
            self.calls.append({"method": method, "plugin": plugin, "route": route, **kw})
            tid = kw["json"]["task_id"]
            status = "SUCCEEDED" if tid in self.done else "ACTIVE"
            return FakeResponse({"task_id": tid, "completed": status != "ACTIVE", "status": status})
        return super().request(method, plugin, route, **kw)


def test_a_new_session_reattaches_only_tasks_not_seen_ending_and_replaces_the_old() -> None:
    ec = TasksEC()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    for _ in range(3):
        gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    ec.done.add("t1")
    assert gc.task_wait("t1", timeout=1)["status"] == "SUCCEEDED"
    gc._observe("transfer_status", {"task_id": "t2", "status": "FAILED"})  # told by a notification
    gc._observe("transfer_status", {"task_id": "elsewhere", "status": "FAILED"})  # not ours: not kept
    old = gc.sid
    gc.register_session(access_token="b" * 10, track=["t9"])
    reg = [c for c in ec.calls if c["route"] == "register_session"][-1]["json"]
    assert reg["track"] == ["t9", "t3"] and reg["replaces"] == old
    assert not any(c["route"] == "unregister_session" for c in ec.calls)  # the endpoint closes it
    assert gc._reattach() == {"track": ["t9", "t3"]}  # newest first


def test_task_wait_rides_out_the_endpoint_going_away(monkeypatch: pytest.MonkeyPatch) -> None:
    from radical.orbit.backoff import Backoff
    from radical.orbit.errors import (
        EndpointNotFoundError,
        EndpointUnavailableError,
        SessionNotFoundError,
    )
    from radical.orbit.plugins.globus import client as client_mod

    monkeypatch.setattr(client_mod, "RECONNECT", Backoff(initial=0.01, cap=0.02))
    failures: list[Exception] = [
        EndpointUnavailableError("ep is disconnected"),
        EndpointNotFoundError("no endpoint named 'ep'"),
        SessionNotFoundError("no session (the endpoint may have restarted)"),
    ]

    class Restarting(FakeEC):
        def request(self, method: str, plugin: str, route: str, **kw: Any) -> FakeResponse:
            if route == "task_wait" and failures:
                self.calls.append({"method": method, "plugin": plugin, "route": route, **kw})
                raise failures.pop(0)
            return super().request(method, plugin, route, **kw)

    ec = Restarting()
    gc = GlobusClient(ec, access_token="a" * 10)  # type: ignore[arg-type]
    gc.submit_transfer("u", "local", [{"source": "/a", "destination": "/b"}])
    assert gc.task_wait("t1", timeout=30)["status"] == "SUCCEEDED"
    regs = [c["json"] for c in ec.calls if c["route"] == "register_session"]
    assert len(regs) == 2 and regs[1] == {"access_token": "a" * 10, "track": ["t1"]} and gc.reopened == 1
    # with re-opening off, the first failure is the script's
    failures.append(EndpointUnavailableError("ep is disconnected"))
    gc.reopen = False
    with pytest.raises(EndpointUnavailableError):
        gc.task_wait("t1", timeout=30)


def test_task_memory_is_bounded_and_re_attaches_at_most_one_track_worth() -> None:
    from radical.orbit.plugins.globus.recall import TaskMemory

    memory = TaskMemory(size=3)
    for n in range(5):
        memory.learn(f"t{n}", "ACTIVE")
    assert len(memory) == 3 and "t0" not in memory
    memory.learn_known({"t4": "SUCCEEDED", "t0": "FAILED"})
    assert memory.status("t4") == "SUCCEEDED" and "t0" not in memory
    assert memory.unfinished() == ["t3", "t2"]
    assert memory.unfinished(["x", "y", "t2"]) == ["x", "y", "t2"]
