"""A tiny in-process stand-in for the Globus Transfer API, for unit tests.

It is a ``requests`` adapter mounted on a real ``globus_sdk.TransferClient``, so the
SDK's own request building, parsing and error classes run unchanged; only the
network is replaced. Every call is counted per route so tests can assert call
budgets (the poller's task_list calls per cycle).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlparse

import globus_sdk
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

BASE = "http://fake-transfer.invalid/"


class FakeTransfer:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.calls: Counter[str] = Counter()
        self.queries: list[tuple[str, dict[str, list[str]]]] = []
        self.fail_next: list[tuple[int, dict[str, Any] | str, dict[str, str]]] = []
        self.max_ids: int | None = None  # reject task_list with more ids (like a URL limit)
        self.max_ids_json = False  # reject as a JSON 400 (like an API limit) instead of a 414
        self.lock = threading.Lock()
        #: when set, task_list answers with the documents as they were when it was asked,
        #: once this event is set (a slow poll that a get_task overtakes)
        self.hold_task_list: threading.Event | None = None
        self.task_list_held = threading.Event()

    # -- helpers for tests ------------------------------------------------------
    def add_task(self, status: str = "ACTIVE", label: str | None = None, **extra: Any) -> str:
        tid = str(uuid.uuid4())
        self.tasks[tid] = {
            "DATA_TYPE": "task",
            "task_id": tid,
            "type": extra.pop("type", "TRANSFER"),
            "status": status,
            "label": label,
            "nice_status": "OK" if status == "ACTIVE" else None,
            "is_ok": True if status == "ACTIVE" else None,
            "bytes_transferred": 0,
            "files_transferred": 0,
            "faults": 0,
            **extra,
        }
        return tid

    def set(self, tid: str, **fields: Any) -> None:
        self.tasks[tid].update(fields)

    def fault(self, tid: str, code: str = "PERMISSION_DENIED", description: str = "permission denied") -> None:
        t = self.tasks[tid]
        t["faults"] += 1
        t["nice_status"] = code
        t["is_ok"] = False
        self.events.setdefault(tid, []).insert(
            0, {"DATA_TYPE": "event", "code": code, "is_error": True, "description": description, "details": "x", "time": f"t{t['faults']}"}
        )

    # -- dispatch -----------------------------------------------------------------
    def handle(self, method: str, path: str, qs: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        route = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", path)
        with self.lock:
            self.calls[f"{method} {route}"] += 1
            self.queries.append((f"{method} {route}", qs))
            if self.fail_next:
                return self.fail_next.pop(0)
        m = re.fullmatch(r"/v0\.10/(.*)", path)
        assert m, path
        p = m.group(1)
        if p == "submission_id":
            return 200, {"DATA_TYPE": "submission_id", "value": str(uuid.uuid4())}, {}
        if p in ("transfer", "delete") and method == "POST":
            doc = json.loads(body)
            tid = self.add_task(label=doc.get("label"), type=p.upper())
            self.tasks[tid]["submitted"] = doc
            return 202, {"code": "Accepted", "task_id": tid, "submission_id": doc["submission_id"], "message": "ok"}, {}
        if p == "task_list":
            flt = qs.get("filter", [""])[0]
            ids: list[str] | None = None
            for clause in flt.split("/"):
                if clause.startswith("task_id:"):
                    ids = clause[len("task_id:"):].split(",")
            if ids is not None and self.max_ids is not None and len(ids) > self.max_ids:
                if self.max_ids_json:
                    return 400, {"code": "ClientError.BadRequest", "message": "too many task ids"}, {}
                return 414, "URI too long", {"Content-Type": "text/html"}
            docs = [self.tasks[i] for i in ids if i in self.tasks] if ids is not None else list(self.tasks.values())
            if "status:" in flt:
                wanted = flt.split("status:")[1].split("/")[0].split(",")
                docs = [d for d in docs if d["status"] in wanted]
            hold = self.hold_task_list
            if hold is not None:
                docs = copy.deepcopy(docs)
                self.task_list_held.set()
                hold.wait(10)
            return 200, {"DATA_TYPE": "task_list", "DATA": docs, "total": len(docs), "offset": 0, "limit": 1000, "length": len(docs)}, {}
        m2 = re.fullmatch(r"task/([^/]+)(/.*)?", p)
        if m2:
            tid, rest = m2.group(1), m2.group(2) or ""
            if tid not in self.tasks:
                return 404, {"code": "TaskNotFound", "message": f"Task {tid} not found", "request_id": "r404"}, {}
            if rest == "":
                return 200, self.tasks[tid], {}
            if rest == "/cancel":
                t = self.tasks[tid]
                if t["status"] in ("SUCCEEDED", "FAILED"):
                    return 200, {"code": "TaskComplete", "message": "done"}, {}
                t.update(status="FAILED", nice_status=None, is_ok=None)
                return 200, {"code": "Canceled", "message": "The task has been cancelled successfully."}, {}
            if rest == "/event_list":
                evs = self.events.get(tid, [])
                return 200, {"DATA_TYPE": "event_list", "DATA": evs, "total": len(evs), "offset": 0, "limit": 10, "length": len(evs)}, {}
        m3 = re.fullmatch(r"operation/endpoint/([^/]+)/(ls|mkdir|rename|stat)", p)
        if m3:
            return 200, {"DATA_TYPE": "file_list", "DATA": [], "path": qs.get("path", ["/~/"])[0], "endpoint": m3.group(1)}, {}
        if p.startswith("endpoint/"):
            return 200, {"DATA_TYPE": "endpoint", "id": p.split("/")[1]}, {}
        return 404, {"code": "ClientError.NotFound", "message": f"no route {path}"}, {}


class FakeAdapter(requests.adapters.BaseAdapter):
    def __init__(self, fake: FakeTransfer) -> None:
        super().__init__()
        self.fake = fake

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlparse(request.url or "")
        status, body, headers = self.fake.handle(request.method or "GET", url.path, parse_qs(url.query), request.body)
        resp = requests.Response()
        resp.status_code = status
        resp.reason = "Fake"
        if isinstance(body, str):
            resp._content = body.encode()
            hdrs = {"Content-Type": "text/plain", **headers}
        else:
            resp._content = json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json", **headers}
        resp.headers = CaseInsensitiveDict(hdrs)
        resp.url = request.url or ""
        resp.request = request
        resp.encoding = "utf-8"
        return resp

    def close(self) -> None:
        pass


def fake_transfer_client(fake: FakeTransfer, token: str = "fake-access-token-123") -> globus_sdk.TransferClient:
    from globus_sdk.transport import RetryConfig

    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token), base_url=BASE, retry_config=RetryConfig(max_retries=1, max_sleep=0.01)
    )
    return tc


def mount(tc: globus_sdk.TransferClient, fake: FakeTransfer) -> None:
    tc.transport.session.mount("http://", FakeAdapter(fake))
