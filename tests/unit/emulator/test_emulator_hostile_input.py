"""Input a fuzzer sent: each once gave a 500, or was stored and broke every later listing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from globus_emu_helpers import make_tree, root_of

from radical.orbit.emulators.globus import (
    DEV_IDENTITY_ID,
    DEV_USERNAME,
    RunningEmulator,
)
from radical.orbit.emulators.globus.collections import file_time, globus_time
from radical.orbit.emulators.globus.task import Task

#: 9999-12-31T23:59:59 at UTC-23:59 is 10000-01-01 in UTC, which datetime cannot show
AFTER_9999 = "9999-12-31T23:59:59-23:59"
NESTED = "[" * 1000 + "]" * 1000
LONE = "\ud800"


@pytest.fixture
def client(emu: RunningEmulator, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        yield c


def transfer(ep: str, **extra: Any) -> dict[str, Any]:
    items = [{"DATA_TYPE": "transfer_item", "source_path": "/hostile/missing", "destination_path": "/hostile/out"}]
    return {"DATA_TYPE": "transfer", "source_endpoint": ep, "destination_endpoint": ep, "DATA": items, **extra}


def delete(ep: str, **extra: Any) -> dict[str, Any]:
    return {"DATA_TYPE": "delete", "endpoint": ep, "ignore_missing": True, "DATA": [{"DATA_TYPE": "delete_item", "path": "/hostile/missing"}], **extra}


def body_for(kind: str, ep: str, **extra: Any) -> dict[str, Any]:
    return transfer(ep, **extra) if kind == "transfer" else delete(ep, **extra)


def listing_works(client: httpx.Client) -> None:
    resp = client.get("/v0.10/task_list", params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    for doc in resp.json()["DATA"]:
        assert client.get(f"/v0.10/task/{doc['task_id']}").status_code == 200


@pytest.fixture
def active_task(emu: RunningEmulator, client: httpx.Client) -> Iterator[str]:
    """A transfer held ACTIVE by a permission fault; cancelled afterwards."""
    ep = emu.local_collection
    d = f"hostile_{uuid.uuid4().hex[:6]}"
    make_tree(root_of(emu, ep) / d, {"f": "f"})
    fault = emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"/{d}/f", "kind": "permission"})
    items = [{"DATA_TYPE": "transfer_item", "source_path": f"/{d}/f", "destination_path": f"/{d}/g"}]
    resp = client.post("/v0.10/transfer", json=transfer(ep, DATA=items))
    assert resp.status_code == 202, resp.text
    try:
        yield str(resp.json()["task_id"])
    finally:
        client.post(f"/v0.10/task/{resp.json()['task_id']}/cancel")
        emu.admin("DELETE", f"faults/paths/{fault['id']}")


class TestDeadline:
    @pytest.mark.parametrize("kind", ["transfer", "delete"])
    def test_deadline_after_year_9999_is_refused_at_submit(self, client: httpx.Client, local: str, kind: str) -> None:
        """Was accepted, and from then on task_list and get_task answered 500."""
        resp = client.post(f"/v0.10/{kind}", json=body_for(kind, local, deadline=AFTER_9999))
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"].startswith("ClientError.BadRequest") and "deadline" in resp.json()["message"]
        listing_works(client)

    def test_update_refuses_a_deadline_after_9999_or_in_the_past(self, client: httpx.Client, active_task: str) -> None:
        """Globus documents no rule for PUT; the emulator applies the submit rule (future only)."""
        before = client.get(f"/v0.10/task/{active_task}").json()["deadline"]
        for deadline in (AFTER_9999, "2001-01-01T00:00:00Z"):
            resp = client.put(f"/v0.10/task/{active_task}", json={"DATA_TYPE": "task", "deadline": deadline})
            assert resp.status_code == 400, resp.text
            assert resp.json()["code"].startswith("ClientError.BadRequest") and "deadline" in resp.json()["message"]
        doc = client.get(f"/v0.10/task/{active_task}").json()
        assert doc["deadline"] == before and doc["status"] == "ACTIVE"
        listing_works(client)

    def test_stored_values_cannot_break_the_listing(self, emu: RunningEmulator, client: httpx.Client, local: str) -> None:
        """A task as a hand-edited or older state file could hold it still lists and sorts."""
        engine = emu.emulator.engine
        task = Task(
            task_id=str(uuid.uuid4()),
            type="TRANSFER",
            owner_id=DEV_IDENTITY_ID,
            username=DEV_USERNAME,
            submission_id=str(uuid.uuid4()),
            request={"source_local_user": LONE, "DATA": []},
            source_endpoint_id=local,
            destination_endpoint_id=local,
            source_display_name="poisoned",
            destination_display_name="poisoned",
            request_time=time.time(),
            deadline=1e20,
            label="\udcff",
            status="FAILED",
            completion_time=float("nan"),
            started_at=time.time(),
        )
        with engine._lock:
            engine.tasks[task.task_id] = task
        try:
            listing_works(client)
            doc = client.get(f"/v0.10/task/{task.task_id}").json()
            assert doc["deadline"] == "9999-12-31T23:59:59+00:00" and doc["completion_time"] is None
            assert doc["label"] == "\udcff" and doc["source_local_user"] == LONE and doc["effective_bytes_per_second"] == 0
            resp = client.get("/v0.10/task_list", params={"orderby": "deadline DESC", "filter": "request_time:2000-01-01,"})
            assert resp.status_code == 200 and resp.json()["DATA"][0]["task_id"] == task.task_id
        finally:
            with engine._lock:
                del engine.tasks[task.task_id]


def json_routes(emu: RunningEmulator, task_id: str) -> list[tuple[str, str]]:
    ep = emu.local_collection
    return [
        ("POST", "/v0.10/transfer"),
        ("POST", "/v0.10/delete"),
        ("POST", f"/v0.10/operation/endpoint/{ep}/mkdir"),
        ("POST", f"/v0.10/operation/endpoint/{ep}/rename"),
        ("PUT", f"/v0.10/task/{task_id}"),
        ("POST", "/_emulator/token"),
        ("PUT", "/_emulator/faults"),
        ("PATCH", "/_emulator/faults"),
        ("POST", "/_emulator/faults/paths"),
        ("POST", f"/_emulator/tasks/{task_id}/suspend"),
    ]


@pytest.fixture(scope="module")
def finished_task(emu: RunningEmulator, token: str) -> str:
    resp = httpx.post(emu.url + "/v0.10/delete", json=delete(emu.local_collection), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


class TestJsonBodies:
    @pytest.mark.parametrize("body", [NESTED, "{" + '"a":{' * 600 + "}" * 601, "not json", b"\xff"])
    def test_unparseable_bodies_are_a_400_on_every_json_route(self, emu: RunningEmulator, client: httpx.Client, finished_task: str, body: str | bytes) -> None:
        """Deep nesting was a 500 RecursionError (both the Transfer and admin readers)."""
        for method, path in json_routes(emu, finished_task):
            resp = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 400, (method, path, resp.text)
            assert resp.json()["code"] == "ClientError.BadRequest" and resp.json()["message"].startswith("Request body is not valid JSON"), (method, path)
        assert emu.admin("GET", "faults")["faults"]["routes"] == r"^/v0\.10/"
        listing_works(client)

    def test_deep_but_parseable_nesting_is_refused_before_it_is_stored(self, client: httpx.Client, local: str) -> None:
        """A filter rule keeps unknown fields; 300 levels in one were a 500 from pydantic's serialiser."""
        deep: Any = []
        for _ in range(300):
            deep = [deep]
        rules = [{"DATA_TYPE": "filter_rule", "method": "exclude", "name": "x", "extra": deep}]
        resp = client.post("/v0.10/transfer", json=transfer(local, filter_rules=rules))
        assert resp.status_code == 400 and resp.json()["message"].startswith("Request body is not valid JSON: nested more than")
        shallow = [{"DATA_TYPE": "filter_rule", "method": "exclude", "name": "x", "extra": [[[1]]]}]
        assert client.post("/v0.10/transfer", json=transfer(local, filter_rules=shallow)).status_code == 202

    def test_nan_and_infinity_literals_are_not_json(self, client: httpx.Client, local: str) -> None:
        text = json.dumps(transfer(local)).replace('"DATA_TYPE": "transfer"', '"DATA_TYPE": "transfer", "x": NaN, "y": -Infinity')
        resp = client.post("/v0.10/transfer", content=text, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400 and resp.json()["message"] == "Request body is not valid JSON"


class TestLoneSurrogates:
    @pytest.mark.parametrize(
        ("kind", "extra", "field"),
        [
            ("transfer", {"source_local_user": LONE}, "source_local_user"),
            ("transfer", {"destination_local_user": LONE}, "destination_local_user"),
            ("transfer", {"submission_id": LONE}, "submission_id"),
            ("transfer", {"label": "ok" + LONE}, "label"),
            ("transfer", {"perf_cc": LONE}, "perf_cc"),
            ("transfer", {"filter_rules": [{"DATA_TYPE": "filter_rule", "method": "exclude", "name": LONE}]}, "filter_rules.0.name"),
            ("transfer", {"DATA": [{"DATA_TYPE": "transfer_item", "source_path": "/a" + LONE, "destination_path": "/b"}]}, "DATA.0.source_path"),
            ("transfer", {"notes": {LONE: 1}}, "notes"),
            ("delete", {"local_user": LONE}, "local_user"),
            ("delete", {"deadline": LONE}, "deadline"),
        ],
    )
    def test_submission_with_a_lone_surrogate_is_refused_naming_the_field(self, client: httpx.Client, local: str, kind: str, extra: dict[str, Any], field: str) -> None:
        """source_local_user / local_user and unknown fields were stored as they came."""
        before = client.get("/v0.10/task_list", params={"limit": 1000}).json()["total"]
        resp = client.post(f"/v0.10/{kind}", content=json.dumps(body_for(kind, local, **extra)), headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        message = resp.json()["message"]
        assert resp.json()["code"] == "ClientError.BadRequest" and f"{field}: " in message and "surrogate" in message, message
        assert client.get("/v0.10/task_list", params={"limit": 1000}).json()["total"] == before
        listing_works(client)

    def test_other_json_routes_refuse_it_too(self, emu: RunningEmulator, client: httpx.Client, local: str, active_task: str) -> None:
        cases = [
            ("POST", f"/v0.10/operation/endpoint/{local}/mkdir", {"DATA_TYPE": "mkdir", "path": "/x", "local_user": LONE}, "local_user"),
            ("POST", f"/v0.10/operation/endpoint/{local}/rename", {"DATA_TYPE": "rename", "old_path": "/a", "new_path": "/b", "local_user": LONE}, "local_user"),
            ("PUT", f"/v0.10/task/{active_task}", {"DATA_TYPE": "task", "label": LONE}, "label"),
            ("POST", "/_emulator/faults/paths", {"collection": local, "path": "/" + LONE}, "path"),
            ("POST", f"/_emulator/tasks/{active_task}/suspend", {"nice_status": LONE}, "nice_status"),
        ]
        for method, path, body, field in cases:
            resp = client.request(method, path, content=json.dumps(body), headers={"Content-Type": "application/json"})
            assert resp.status_code == 400 and f"{field}: " in resp.json()["message"], (path, resp.text)
        assert client.get(f"/v0.10/task/{active_task}").json()["status"] == "ACTIVE"
        listing_works(client)


class TestBasicAuth:
    @pytest.mark.parametrize("header", [b"Basic \xff", b"Basic \xc3\xa9t\xc3\xa9", b"basic \x80\x81:\x82"])
    def test_non_ascii_basic_credentials_are_invalid_client(self, emu: RunningEmulator, header: bytes) -> None:
        """b64decode raised ValueError on the latin-1 decoded header: a 500."""
        resp = httpx.post(emu.url + "/v2/oauth2/token", headers={"Authorization": header}, data={"grant_type": "client_credentials"}, timeout=10)
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client", resp.text
        resp = httpx.get(emu.url + "/v2/api/identities", headers={"Authorization": header}, params={"usernames": DEV_USERNAME}, timeout=10)
        assert resp.status_code == 401 and resp.json()["errors"][0]["code"] == "UNAUTHORIZED", resp.text


    def test_identities_needs_a_registered_client_or_a_live_token(self, emu: RunningEmulator) -> None:
        """Any readable Basic pair was accepted; Globus Auth checks the client's secret."""
        params = {"usernames": DEV_USERNAME}
        for auth in (("a", "b"), (str(uuid.uuid4()), "not-the-secret")):
            resp = httpx.get(emu.url + "/v2/api/identities", auth=auth, params=params, timeout=10)
            assert resp.status_code == 401, resp.text
        resp = httpx.get(emu.url + "/v2/api/identities", headers={"Authorization": "Bearer no-such-token"}, params=params, timeout=10)
        assert resp.status_code == 401, resp.text


class TestSizes:
    """Found by fuzzing the emulator: a path of a megabyte held the event loop for two
    minutes, a name over 255 bytes made a task retry until its deadline, and a huge
    token lifetime overflowed into a 500."""

    @pytest.mark.parametrize(
        ("kind", "path"),
        [
            ("transfer", "/" + "a/" * 500_000),
            ("delete", "/" + "a/" * 500_000),
            ("transfer", "/" + "n" * 256),  # one name over NAME_MAX
            ("delete", "/x/" + "n" * 300 + "/y"),
        ],
    )
    def test_paths_the_file_system_cannot_hold_are_refused_at_once(self, client: httpx.Client, local: str, kind: str, path: str) -> None:
        if kind == "transfer":
            items = [{"DATA_TYPE": "transfer_item", "source_path": "/hostile/missing", "destination_path": path}]
            body = transfer(local, DATA=items)
        else:
            body = delete(local, DATA=[{"DATA_TYPE": "delete_item", "path": path}])
        started = time.monotonic()
        resp = client.post(f"/v0.10/{kind}", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "ClientError.BadRequest.InvalidPath" and "File name too long" in resp.json()["message"]
        assert len(resp.text) < 1000 and time.monotonic() - started < 5
        assert client.post(f"/v0.10/operation/endpoint/{local}/mkdir", json={"DATA_TYPE": "mkdir", "path": path[:300]}).status_code in (400, 404)
        listing_works(client)

    def test_rename_to_a_name_too_long_is_a_400_like_mkdir(self, emu: RunningEmulator, client: httpx.Client, local: str) -> None:
        d = f"hostile_{uuid.uuid4().hex[:6]}"
        make_tree(root_of(emu, local) / d, {"f": "f"})
        for op, body in (
            ("rename", {"DATA_TYPE": "rename", "old_path": f"/{d}/f", "new_path": f"/{d}/" + "r" * 256}),
            ("mkdir", {"DATA_TYPE": "mkdir", "path": f"/{d}/" + "r" * 256}),
        ):
            resp = client.post(f"/v0.10/operation/endpoint/{local}/{op}", json=body)
            assert resp.status_code == 400 and resp.json()["code"].endswith("InvalidPath"), (op, resp.text)

    def test_a_symlink_item_whose_name_is_too_long_is_refused(self, client: httpx.Client, local: str) -> None:
        items = [{"DATA_TYPE": "transfer_symlink_item", "source_path": "/hostile/link", "destination_path": "/" + "l" * 256}]
        resp = client.post("/v0.10/transfer", json=transfer(local, DATA=items))
        assert resp.status_code == 400 and "File name too long" in resp.json()["message"], resp.text

    def test_a_large_submission_does_not_stall_other_callers(self, emu: RunningEmulator, client: httpx.Client, local: str) -> None:
        """Its items are checked in a worker thread: /health answers meanwhile."""
        import threading

        items = [{"DATA_TYPE": "delete_item", "path": f"/hostile/missing/{i}"} for i in range(60_000)]
        outcome: list[int] = []
        worker = threading.Thread(target=lambda: outcome.append(client.post("/v0.10/delete", json=delete(local, DATA=items), timeout=120).status_code))
        worker.start()
        try:
            time.sleep(0.3)
            health = []
            while worker.is_alive() and len(health) < 20:
                started = time.monotonic()
                assert httpx.get(emu.url + "/health", timeout=10).status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.05)
        finally:
            worker.join(120)
        assert outcome == [202]
        if health:
            assert max(health) < 2.0, health

    @pytest.mark.parametrize("lifetime", [10**400, 10 * 365 * 86400 + 1, 0], ids=["huge", "over-ten-years", "zero"])
    def test_dev_token_lifetime_is_bounded(self, emu: RunningEmulator, lifetime: int) -> None:
        resp = httpx.post(emu.url + "/_emulator/token", content=json.dumps({"lifetime": lifetime}), headers={"content-type": "application/json"}, timeout=10)
        assert resp.status_code == 400 and "lifetime" in resp.text, resp.text
        assert httpx.post(emu.url + "/_emulator/token", json={"lifetime": 3600}, timeout=10).status_code == 200

    def test_dev_token_consents_are_collection_uuids(self, emu: RunningEmulator) -> None:
        resp = httpx.post(emu.url + "/_emulator/token", json={"consents": ["tutorial-1"]}, timeout=10)
        assert resp.status_code == 400 and "consents.0" in resp.text and "UUID" in resp.text, resp.text


@pytest.mark.parametrize(("ts", "task", "listing"), [(1e12, "9999-12-31T23:59:59+00:00", "9999-12-31 23:59:59+00:00"), (-1e12, "0001-01-01T00:00:00+00:00", "0001-01-01 00:00:00+00:00"), (float("inf"), "9999-12-31T23:59:59+00:00", "9999-12-31 23:59:59+00:00"), (0, "1970-01-01T00:00:00+00:00", "1970-01-01 00:00:00+00:00")])
def test_times_outside_what_datetime_shows_are_clamped(ts: float, task: str, listing: str) -> None:
    """The year-10000 ValueError also waited in ls/stat for a file dated that far (tmpfs allows it)."""
    assert globus_time(ts) == task and file_time(ts) == listing
    assert globus_time(float("nan")) is None and globus_time(None) is None


class TestQueryIntegers:
    @pytest.mark.parametrize("value", ["0", "\uff11\uff10", " 10", "1_0", "+", "9" * 40, "1e3"])
    def test_task_list_limit_is_ascii_digits_from_one(self, client: httpx.Client, value: str) -> None:
        resp = client.get("/v0.10/task_list", params={"limit": value})
        assert resp.status_code == 400 and "'limit'" in resp.json()["message"]
        assert len(resp.json()["message"]) < 200  # a long value is not echoed whole

    def test_task_list_limit_in_range_works(self, client: httpx.Client) -> None:
        assert client.get("/v0.10/task_list", params={"limit": "7"}).json()["limit"] == 7
