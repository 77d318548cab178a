"""Fault injection (random 5xx/429, latency, path faults, bandwidth) and request counters."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
from globus_emu_helpers import make_tree, root_of
from globus_sdk.transport import RetryConfig

from radical.orbit.emulators.globus import RunningEmulator


@pytest.fixture(autouse=True)
def reset_faults(emu: RunningEmulator) -> Iterator[None]:
    emu.admin("DELETE", "faults")
    yield
    emu.admin("DELETE", "faults")


def fast_client(token: str, retries: int) -> globus_sdk.TransferClient:
    return globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token),
        retry_config=RetryConfig(max_retries=retries, max_sleep=0.01),
    )


def wait(tc: globus_sdk.TransferClient, tid: str, timeout: float = 10) -> dict[str, object]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = tc.get_task(tid)
        if doc["status"] != "ACTIVE":
            return dict(doc.data)
        time.sleep(0.02)
    raise AssertionError("task still ACTIVE")


class TestRequestFaults:
    def test_429_with_retry_after_is_retried_then_raised(self, emu: RunningEmulator, sdk_env: dict[str, str], token: str) -> None:
        emu.admin("PUT", "faults", json={"error_rate": 1.0, "error_statuses": [429], "retry_after": 3})
        emu.admin("DELETE", "counters")
        tc = fast_client(token, retries=2)
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            tc.get_submission_id()
        err = info.value
        assert err.http_status == 429 and err.code == "RequestLimitExceeded"
        assert err.headers["Retry-After"] == "3" and err.headers["Content-Type"] == "application/json"
        counters = emu.admin("GET", "counters")
        assert counters["counters"]["GET /v0.10/submission_id"] == 3 and counters["injected"] == {"429": 3}

    def test_random_errors_are_absorbed_by_sdk_retries(self, emu: RunningEmulator, sdk_env: dict[str, str], token: str) -> None:
        emu.admin("PUT", "faults", json={"error_rate": 0.4, "error_statuses": [500, 503], "seed": 7})
        emu.admin("DELETE", "counters")
        tc = fast_client(token, retries=10)
        for _ in range(15):
            assert tc.get_submission_id()["value"]
        counters = emu.admin("GET", "counters")
        assert counters["counters"]["GET /v0.10/submission_id"] > 15
        assert sum(counters["injected"].values()) == counters["counters"]["GET /v0.10/submission_id"] - 15

    def test_latency_and_route_selection(self, emu: RunningEmulator, tc: globus_sdk.TransferClient) -> None:
        emu.admin("PUT", "faults", json={"latency": 0.6, "routes": "/task_list$"})
        start = time.monotonic()
        tc.get_submission_id()
        assert time.monotonic() - start < 0.6
        start = time.monotonic()
        tc.task_list()
        assert time.monotonic() - start >= 0.6

    def test_counters_per_route(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, local: str) -> None:
        emu.admin("DELETE", "counters")
        tc.get_endpoint(local)
        tc.get_endpoint(local)
        counters = emu.admin("GET", "counters")["counters"]
        assert counters == {"GET /v0.10/endpoint/{id}": 2, "GET /_emulator/counters": 1}

    def test_bad_fault_config_is_rejected(self, emu: RunningEmulator) -> None:
        import httpx

        resp = httpx.put(emu.url + "/_emulator/faults", json={"error_rate": 2})
        assert resp.status_code == 400 and resp.json()["code"] == "ClientError.BadRequest"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ('{"routes": "("}', "routes"),
            ('{"error_statuses": [99]}', "error_statuses.0"),
            ('{"error_statuses": [503, 600]}', "error_statuses.1"),
            ('{"error_statuses": [1000]}', "error_statuses.0"),
            ('{"error_statuses": [200]}', "error_statuses.0"),
            ('{"latency": 1e308}', "latency"),
            ('{"latency": 600.5}', "latency"),
            ('{"bandwidth": {"x": 1e999}}', "bandwidth.x"),
            ('{"bandwidth": {"x": -1}}', "bandwidth.x"),
        ],
    )
    def test_unusable_fault_settings_are_refused_naming_the_field(self, emu: RunningEmulator, body: str, field: str) -> None:
        """Were a 500 (bad regex), accepted then a dropped connection on every matching request
        (status outside 100-599), a 200 carrying an error body, a request that never got an
        answer and blocked shutdown (latency), or a task that crashed (infinite bandwidth)."""
        import httpx

        before = emu.admin("GET", "faults")["faults"]
        for method in ("PUT", "PATCH"):
            resp = httpx.request(method, emu.url + "/_emulator/faults", content=body, timeout=10)
            assert resp.status_code == 400 and resp.json()["code"] == "ClientError.BadRequest", resp.text
            assert resp.json()["message"].startswith(f"{field}: "), resp.text
        assert emu.admin("GET", "faults")["faults"] == before

    def test_limits_of_fault_settings_are_usable(self, emu: RunningEmulator, sdk_env: dict[str, str], token: str) -> None:
        emu.admin("PUT", "faults", json={"latency": 600, "routes": "^/never$", "error_statuses": [400, 599]})
        emu.admin("PUT", "faults", json={"error_rate": 1.0, "error_statuses": [404], "routes": "/submission_id$"})
        with pytest.raises(globus_sdk.TransferAPIError) as info:
            fast_client(token, retries=0).get_submission_id()
        assert info.value.http_status == 404 and info.value.code == "ClientError.NotFound"


class TestTaskFaults:
    @pytest.fixture
    def src(self, emu: RunningEmulator) -> tuple[str, str, Path]:
        ep = emu.local_collection
        d = f"/faults_{uuid.uuid4().hex[:6]}"
        make_tree(root_of(emu, ep) / d[1:], {"a": "a", "b": "b"})
        return ep, d, root_of(emu, ep) / d[1:]

    def test_permission_fault_retries_until_cleared(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, src: tuple[str, str, Path]) -> None:
        ep, d, _ = src
        fault = emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/a", "kind": "permission"})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/", f"{d}_out/", recursive=True)
        tid = tc.submit_transfer(td)["task_id"]
        end = time.monotonic() + 5
        while (doc := tc.get_task(tid))["faults"] < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert doc["status"] == "ACTIVE" and doc["nice_status"] == "PERMISSION_DENIED" and doc["is_ok"] is False
        assert doc["faults"] >= 2 and doc["subtasks_retrying"] == 1
        errors = tc.task_event_list(tid, query_params={"filter": "is_error:1"})
        assert errors["DATA"][0]["code"] == "PERMISSION_DENIED"
        emu.admin("DELETE", f"faults/paths/{fault['id']}")
        done = wait(tc, tid)
        assert done["status"] == "SUCCEEDED" and done["files_transferred"] == 2 and done["subtasks_retrying"] == 0

    def test_fault_with_times_clears_itself(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, src: tuple[str, str, Path]) -> None:
        ep, d, _ = src
        emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/*", "kind": "permission", "times": 3})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/b", f"{d}_out/b")
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "SUCCEEDED" and done["faults"] == 3

    def test_not_found_fault_fails_or_is_skipped(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, src: tuple[str, str, Path]) -> None:
        ep, d, base = src
        emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}/a", "kind": "not_found"})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/", f"{d}_nf/", recursive=True)
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "FAILED" and done["fatal_error"]["code"] == "FILE_NOT_FOUND"
        td = globus_sdk.TransferData(ep, ep, skip_source_errors=True)
        td.add_item(f"{d}/", f"{d}_skip/", recursive=True)
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "SUCCEEDED" and done["subtasks_skipped_errors"] == 1 and done["files_transferred"] == 1
        assert [e["code"] for e in tc.task_event_list(done["task_id"])["DATA"]][:2] == ["SUCCEEDED", "SKIPPED_ERRORS"]
        assert not (base.parent / f"{d[1:]}_skip" / "a").exists() and (base.parent / f"{d[1:]}_skip" / "b").exists()

    def test_checksum_fault_is_caught_by_verify_checksum(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, src: tuple[str, str, Path]) -> None:
        ep, d, base = src
        emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}_v/", "kind": "checksum", "times": 1})
        td = globus_sdk.TransferData(ep, ep, verify_checksum=True)
        td.add_item(f"{d}/", f"{d}_v/", recursive=True)
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "SUCCEEDED" and done["faults"] == 1 and done["files_transferred"] == 2
        assert "VERIFY_CHECKSUM" in [e["code"] for e in tc.task_event_list(done["task_id"], limit=100)["DATA"]]
        assert (base.parent / f"{d[1:]}_v" / "a").read_text() == "a" and (base.parent / f"{d[1:]}_v" / "b").read_text() == "b"
        # without verify_checksum the corruption goes unnoticed, as it would on a real endpoint
        emu.admin("POST", "faults/paths", json={"collection": ep, "path": f"{d}_nv/a", "kind": "checksum", "times": 1})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/", f"{d}_nv/", recursive=True)
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        assert done["status"] == "SUCCEEDED" and done["faults"] == 0
        assert (base.parent / f"{d[1:]}_nv" / "a").read_bytes() != b"a"

    def test_bandwidth_cap_gives_a_known_duration(self, emu: RunningEmulator, tc: globus_sdk.TransferClient, src: tuple[str, str, Path]) -> None:
        ep, d, base = src
        (base / "big").write_bytes(os.urandom(600_000))
        emu.admin("PATCH", "faults", json={"bandwidth": {ep: 1_000_000}})
        td = globus_sdk.TransferData(ep, ep)
        td.add_item(f"{d}/big", f"{d}_bw/big")
        start = time.monotonic()
        done = wait(tc, tc.submit_transfer(td)["task_id"])
        elapsed = time.monotonic() - start
        assert done["status"] == "SUCCEEDED" and 0.55 <= elapsed < 3
        assert int(str(done["effective_bytes_per_second"])) <= 1_100_000
