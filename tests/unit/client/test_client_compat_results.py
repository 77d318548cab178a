"""Plugin clients answer with the original Orbit's result keys beside Globus's own,
added client-side: the wire carries Globus's documents only."""

from __future__ import annotations

import json
from typing import Any

import httpx

from radical.orbit.client import BridgeClient, EndpointClient
from radical.orbit.plugins.globus.client import GlobusClient, globus_document
from radical.orbit.plugins.sysinfo.client import SysinfoClient

LOCAL = "0a11c0de-0000-4000-8000-00000000a11c"
FILES = [{"name": "file1.txt", "type": "file", "size": 4}]
ANSWERS: dict[str, Any] = {
    "register_session": {"sid": "sid-1"},
    "ls": {"DATA_TYPE": "file_list", "DATA": FILES, "path": "/~/", "endpoint": LOCAL, "absolute_path": None},
    "list_tasks": {"DATA_TYPE": "task_list", "DATA": [{"task_id": "t1"}], "total": 1, "limit": 100, "offset": 0},
    "endpoint_search": {"DATA_TYPE": "endpoint_list", "DATA": [{"id": LOCAL}], "has_next_page": False},
    "task_wait": {"task_id": "t1", "completed": True, "status": "SUCCEEDED"},
    "homedir": {"homedir": "/home/u"},
    "host_role": {"role": "login", "scheduler": "slurm", "job_id": None},
    "metrics": {"system": {}, "cpu": {}, "memory": {}, "disks": [], "network": [], "gpus": []},
}


class Recorder:
    """The bridge: answers each plugin route from ``answers``, records what was sent."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = request.url.path.split("/", 3)[3]
        self.sent.append((request.method, route, json.loads(request.content) if request.content else None))
        return httpx.Response(200, json=self.answers[route])


def clients(**answers: Any) -> tuple[BridgeClient, Recorder, EndpointClient]:
    rec = Recorder({**ANSWERS, **answers})
    bc = BridgeClient("http://b.test:1", token="t", transport=httpx.MockTransport(rec))
    ec = EndpointClient(bc, "ep1", info={"plugins": [{"name": "globus", "enabled": True}, {"name": "sysinfo", "enabled": True}]})
    return bc, rec, ec


def test_globus_results_carry_the_original_keys() -> None:
    bc, rec, ec = clients()
    with bc:
        g = GlobusClient(ec, "globus", access_token="tok")
        listing = g.ls("local", "/~/")
        assert listing["entries"] == FILES and listing["DATA"] == FILES  # both: ours and the original's
        assert listing["collection"] == LOCAL and listing["path"] == "/~/"  # "local" resolved, as the original did
        assert g.list_tasks()["tasks"] == [{"task_id": "t1"}]
        assert g.endpoint_search("tutorial")["endpoints"] == [{"id": LOCAL}]
        assert g.task_wait("t1", timeout=1) == {"task_id": "t1", "completed": True, "status": "SUCCEEDED"}
        # the requests are the same as ever: no key of the original's went out
        assert [route for _, route, _ in rec.sent] == ["register_session", "ls", "list_tasks", "endpoint_search", "task_wait"]
        assert rec.sent[1][2] == {"sid": "sid-1", "collection": "local", "path": "/~/"}
        assert globus_document(listing) == ANSWERS["ls"]
        assert globus_document(g.list_tasks()) == ANSWERS["list_tasks"]
        assert globus_document({"collection": "x", "DATA_TYPE": "task"}) == {"collection": "x", "DATA_TYPE": "task"}
        assert globus_document([1]) == [1]


def test_ls_collection_without_an_endpoint_field() -> None:
    bc, _, ec = clients(ls={"DATA_TYPE": "file_list", "DATA": FILES})
    with bc:
        g = GlobusClient(ec, "globus", access_token="tok")
        assert (g.ls(LOCAL)["collection"], g.ls(LOCAL)["path"]) == (LOCAL, None)
        assert g.ls("local", "/x/")["collection"] is None and g.ls("local", "/x/")["path"] == "/x/"


def test_sysinfo_original_calls() -> None:
    bc, rec, ec = clients()
    with bc:
        s = SysinfoClient(ec, "sysinfo")
        assert s.homedir() == "/home/u" and s.host_role()["role"] == "login"
        assert s.sid is None  # neither needs a session
        assert set(s.get_metrics()) == {"system", "cpu", "memory", "disks", "network", "gpus"}
        assert [(m, r) for m, r, _ in rec.sent] == [
            ("GET", "homedir"), ("GET", "host_role"), ("POST", "register_session"), ("POST", "metrics"),
        ]
        assert rec.sent[-1][2] == {"sid": "sid-1"}
