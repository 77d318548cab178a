"""PluginClient re-opens a session the endpoint lost (a restart), once, with the arguments
it keeps in memory only; opting out keeps nothing."""

from __future__ import annotations

import copy
import pickle
import threading
import time
from typing import Any

import pytest

from radical.orbit.client.plugin import PluginClient, SessionArgs
from radical.orbit.errors import SessionExpiredError, SessionNotFoundError, UsageError
from radical.orbit.plugins.sysinfo.client import SysinfoClient

SECRET = "reopen-secret-credential-42"


class FakeEC:
    """An endpoint whose sessions can be lost (``restart``); records every call."""

    name = "ep"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.live: set[str] = set()
        self.closed: set[str] = set()
        self.bridge = FakeBridge()
        self.lock = threading.Lock()

    def restart(self) -> None:
        self.live.clear()

    def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
        with self.lock:
            self.calls.append((route, dict(body)))
            if route == "register_session":
                sid = f"sid-{len(self.calls):04d}"
                self.live.add(sid)
                return {"sid": sid}
            sid = body.get("sid")
            if route == "unregister_session":
                self.closed.add(sid)
                return {"closed": self.live.discard(sid) is None}
            if sid in self.closed:
                raise SessionExpiredError(f"session {sid} has expired")
            if sid not in self.live:
                raise SessionNotFoundError(f"no session {sid} (the endpoint may have restarted)")
            return {"route": route, "sid": sid}

    def routes(self) -> list[str]:
        return [route for route, _ in self.calls]


class FakeBridge:
    def __init__(self) -> None:
        self.subs: dict[str, Any] = {}

    def register_callback(self, endpoint: str, plugin: str, topic: str, callback: Any, *, style: str | None = None) -> str:
        cid = f"cb-{len(self.subs) + 1}"
        self.subs[cid] = callback
        return cid

    def unregister_callback(self, cid: str) -> bool:
        return self.subs.pop(cid, None) is not None


def client(ec: FakeEC, **session: Any) -> PluginClient:
    return PluginClient(ec, "demo", **session)  # type: ignore[arg-type]


def test_a_lost_session_is_reopened_once_and_the_call_repeated() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    first = pc.sid
    assert pc._call("work", n=1)["sid"] == first
    ec.restart()
    assert pc._call("work", n=2)["sid"] != first
    assert ec.routes() == ["register_session", "work", "work", "register_session", "work"]
    assert ec.calls[3][1] == {"token": SECRET}  # the kept arguments, as given
    assert ec.calls[4][1] == {"sid": pc.sid, "n": 2}
    assert pc.reopened == 1


def test_an_expired_session_is_reopened_too_but_only_once_per_call() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    ec.closed.add(pc.sid or "")
    ec.live.clear()
    pc._call("work")
    assert pc.reopened == 1

    class Forgetful(FakeEC):
        def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
            out = super().call(plugin, route, body, timeout=timeout)
            if route == "register_session":
                self.live.clear()  # an endpoint that loses every session at once
            return out

    bad = Forgetful()
    pc = client(bad, token=SECRET)
    with pytest.raises(SessionNotFoundError):
        pc._call("work")
    assert bad.routes() == ["register_session", "work", "register_session", "work"]


def test_opting_out_keeps_nothing_and_raises() -> None:
    ec = FakeEC()
    pc = client(ec)
    pc.register_session(token=SECRET, reopen=False)
    assert pc._args is None and pc.reopen is False
    ec.restart()
    with pytest.raises(SessionNotFoundError):
        pc._call("work")
    other = client(ec, token=SECRET)
    other.reopen = False  # or as an attribute
    ec.restart()
    with pytest.raises(SessionNotFoundError):
        other._call("work")
    with pytest.raises(UsageError, match="reopen must be True or False"):
        pc.register_session(reopen="yes")


def test_another_thread_reopened_meanwhile_so_the_call_uses_that_session() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    lost = pc.sid or ""
    ec.restart()
    pc._call("work")  # re-opens
    assert pc._recover(lost, SessionNotFoundError("gone")) == pc.sid  # a second loser just retries
    assert ec.routes().count("register_session") == 2


def test_concurrent_calls_reopen_once() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    ec.restart()
    threads = [threading.Thread(target=pc._call, args=("work",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert ec.routes().count("register_session") == 2 and pc.reopened == 1


def test_a_closed_client_does_not_reopen_and_forgets_its_arguments() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    pc.close()
    assert pc._args is None and pc.sid is None
    pc2 = client(ec, token=SECRET)
    pc2.unregister_session()
    assert pc2._args is None


def test_kept_arguments_never_show() -> None:
    ec = FakeEC()
    pc = client(ec, token=SECRET)
    args = pc._args
    assert isinstance(args, SessionArgs)
    for text in (repr(pc), str(vars(pc)), repr(args), str(args), f"{args}"):
        assert SECRET not in text
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(args)
    with pytest.raises(TypeError, match="never pickled"):
        copy.deepcopy(args)
    assert args.reveal() == {"token": SECRET}


def test_the_endpoint_coming_back_is_probed_and_the_session_reopened() -> None:
    ec = FakeEC()
    si = SysinfoClient(ec)  # type: ignore[arg-type]
    si.register_notification_callback(lambda topic, payload: None)
    first = si.sid or si._ensure_session()
    ec.restart()
    (router,) = ec.bridge.subs.values()
    router({"kind": "topology", "endpoint": "ep", "plugin": None, "topic": "endpoint_connected", "payload": {}})
    deadline = time.monotonic() + 5
    while si.reopened == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert si.reopened == 1 and si.sid != first
    assert ec.routes()[1:] == ["info", "register_session"]  # the probe (sysinfo's info) refused, so re-opened
    si.close()
    assert ec.bridge.subs == {}


def test_no_probe_without_a_session_or_with_reopen_off() -> None:
    ec = FakeEC()
    si = SysinfoClient(ec)  # type: ignore[arg-type]
    si._endpoint_back()
    si.register_session()
    si.reopen = False
    si._endpoint_back()
    assert ec.routes() == ["register_session"]


def test_a_probe_that_finds_the_client_closed_opens_nothing() -> None:
    """The script closes the client while a probe is on its way: nothing is re-opened."""

    class ClosingMidProbe(FakeEC):
        client: SysinfoClient | None = None

        def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
            if route == "info" and self.client is not None:
                self.client.close()
            return super().call(plugin, route, body, timeout=timeout)

    ec = ClosingMidProbe()
    si = SysinfoClient(ec)  # type: ignore[arg-type]
    ec.client = si
    si.register_session()
    si._probe()
    assert si.sid is None and si.reopened == 0
    assert ec.routes() == ["register_session", "unregister_session", "info"]
