"""Request validation: bad input is rejected naming the field, before Globus is called."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from radical.orbit.plugins.globus import models as m

U = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
ITEMS = [{"source": "/a", "destination": "/b"}]


def fields_of(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"source": "nope"}, "source"),
        ({"items": []}, "items"),
        ({"items": [{"source": "", "destination": "/b"}]}, "items.0.source"),
        ({"items": [{"source": "/a"}]}, "items.0.destination"),
        ({"sync_level": "sometimes"}, "sync_level"),
        ({"sync_level": 7}, "sync_level"),
        ({"sync_leve": 1}, "sync_leve"),
        ({"label": "x" * 200}, "label"),
        ({"submission_id": "123"}, "submission_id"),
        ({"verify_checksum": "maybe"}, "verify_checksum"),
        ({"deadline": "9999-12-31T23:59:59-23:59"}, "deadline"),  # after 9999 in UTC: Globus cannot store it
        ({"label": "a\udc80"}, "label"),  # a lone surrogate no UTF-8 request can carry
        ({"source_local_user": "\ud800"}, "source_local_user"),
        ({"items": [{"source": "/a\udcff", "destination": "/b"}]}, "items.0.source"),
    ],
)
def test_submit_rejects(kw: dict[str, Any], field: str) -> None:
    body = {"sid": "s", "source": U, "destination": "local", "items": ITEMS, **kw}
    with pytest.raises(ValidationError) as info:
        m.SubmitTransferRequest.model_validate(body)
    assert field in fields_of(info.value)


@pytest.mark.parametrize(("value", "expected"), [("checksum", 3), (0, 0), ("2", 2), ("exists", 0), (None, None)])
def test_sync_level_names_and_numbers(value: Any, expected: int | None) -> None:
    req = m.SubmitTransferRequest(sid="s", source=U, destination=U.upper(), items=ITEMS, sync_level=value)
    assert req.sync_level_int == expected
    assert req.destination == U


def test_register_modes() -> None:
    assert m.RegisterGlobusSession(access_token="t" * 10).auth_mode == "access_token"
    assert m.RegisterGlobusSession(refresh_token="r" * 10, client_id=U).auth_mode == "refresh_token"
    assert m.RegisterGlobusSession(client_id=U, client_secret="s" * 10).auth_mode == "client_credentials"
    for bad in ({}, {"refresh_token": "r" * 10}, {"access_token": "a" * 10, "refresh_token": "r" * 10, "client_id": U}, {"client_secret": "x" * 10}, {"access_token": " "}):
        with pytest.raises(ValidationError):
            m.RegisterGlobusSession.model_validate(bad)


@pytest.mark.parametrize("field", ["access_token", "refresh_token", "client_secret"])
@pytest.mark.parametrize("bad", ["tok-123456\n", " tok-123456", "tok 123456", "tok-1234\u00e9"])
def test_register_refuses_credentials_no_header_can_carry(field: str, bad: str) -> None:
    """A token read from a file with its newline would make every Globus call a network error."""
    body: dict[str, Any] = {field: bad}
    if field != "access_token":
        body["client_id"] = U
    with pytest.raises(ValidationError) as info:
        m.RegisterGlobusSession.model_validate(body)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(field,)] and "strip it" in errors[0]["msg"]
    assert bad not in str([{k: v for k, v in e.items() if k != "input"} for e in errors])


def test_register_never_shows_secret() -> None:
    secret = "very-secret-token-value"
    req = m.RegisterGlobusSession(access_token=secret)
    assert secret not in repr(req) and secret not in str(req)
    with pytest.raises(ValidationError) as info:
        m.RegisterGlobusSession.model_validate({"access_token": secret, "client_id": "not-a-uuid"})
    assert secret not in str([{k: v for k, v in e.items() if k != "input"} for e in info.value.errors()])


def test_delete_and_tasks() -> None:
    assert m.DeleteRequest(sid="s", paths="/x").paths == ["/x"]
    with pytest.raises(ValidationError):
        m.DeleteRequest(sid="s", paths=[])
    with pytest.raises(ValidationError):
        m.TaskRequest(sid="s", task_id="abc")
    assert m.ListTasksRequest(sid="s", status="active,failed").status == ["ACTIVE", "FAILED"]
    with pytest.raises(ValidationError):
        m.ListTasksRequest(sid="s", limit=5000)
    with pytest.raises(ValidationError):
        m.EndpointSearchRequest(sid="s", limit=0)


def test_deadlines_keep_their_zone_and_may_be_naive() -> None:
    req = m.SubmitTransferRequest(sid="s", source=U, destination=U, items=ITEMS, deadline="9999-12-31T23:59:59+01:00")
    assert req.deadline is not None and req.deadline.year == 9999
    assert m.DeleteRequest(sid="s", paths="/x", deadline="2030-01-01T00:00:00").deadline is not None
    with pytest.raises(ValidationError) as info:
        m.DeleteRequest(sid="s", paths="/x", deadline="9999-12-31T23:00:00-02:00")
    assert fields_of(info.value) == {"deadline"} and "9999" in str(info.value)


@pytest.mark.parametrize("label", ["nomatch/status:ACTIVE", "../../etc", "a/b"])
def test_list_tasks_label_cannot_add_filter_clauses(label: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.ListTasksRequest(sid="s", label=label)
    assert fields_of(info.value) == {"label"} and "'/'" in str(info.value)
    assert "'~a*b' for 'a/b'" in str(info.value)  # how to find such a label all the same
    ok = m.ListTasksRequest(sid="s", label="run 7: stage-in")
    assert ok.label == ["run 7: stage-in"] and ok.filter_clauses().endswith("/label:run 7: stage-in")


def test_early_dates_keep_a_four_digit_year_in_the_filter() -> None:
    """The year 1 went out as '1-01-01T00:00:00', which Globus refuses (400)."""
    req = m.ListTasksRequest(sid="s", requested_after="0001-01-01T00:00:00", completed_before="0999-12-31T23:59:59")
    clauses = req.filter_clauses()
    assert "request_time:0001-01-01T00:00:00," in clauses and "completion_time:,0999-12-31T23:59:59" in clauses


def test_a_sync_level_of_many_digits_is_named_plainly() -> None:
    """5,000 digits were int()'d and pydantic told the user to call sys.set_int_max_str_digits."""
    with pytest.raises(ValidationError) as info:
        m.SubmitTransferRequest(sid="s", source=U, destination=U, items=[{"source": "/a", "destination": "/b"}], sync_level="1" * 5000)
    assert fields_of(info.value) == {"sync_level"} and "set_int_max_str_digits" not in str(info.value)


def test_list_tasks_label_patterns_are_bounded() -> None:
    """A pattern of 10,000 stars went to Globus (and hung the emulator's matcher)."""
    with pytest.raises(ValidationError) as info:
        m.ListTasksRequest(sid="s", label="~" + "*" * 10_000 + "a")
    assert fields_of(info.value) == {"label.0"} and "256" in str(info.value)
    with pytest.raises(ValidationError):
        m.ListTasksRequest(sid="s", label=[f"run {n}" for n in range(51)])
    assert m.ListTasksRequest(sid="s", label="~" + "x" * 128 + "*").label == ["~" + "x" * 128 + "*"]


def test_track_is_bounded() -> None:
    many = [U] * (m.MAX_TRACK + 1)
    for model, field, body in (
        (m.TrackRequest, "task_ids", {"sid": "s", "task_ids": many}),
        (m.RegisterGlobusSession, "track", {"access_token": "t" * 10, "track": many}),
    ):
        with pytest.raises(ValidationError) as info:
            model.model_validate(body)
        assert fields_of(info.value) == {field}
    assert m.TrackRequest(sid="s", task_ids=[U]).timeout == 60
    with pytest.raises(ValidationError):
        m.TrackRequest(sid="s", task_ids=[U], timeout=-1)


def test_list_tasks_filters_become_one_globus_filter() -> None:
    req = m.ListTasksRequest(
        sid="s", type="delete", status=["active"], task_id=[U.upper()], label=["~nightly*", "!~test*"],
        requested_after="2030-01-01", completed_before="2030-01-02T02:00:00+02:00",
    )
    assert req.filter_clauses() == (
        f"type:DELETE/task_id:{U}/status:ACTIVE/label:~nightly*,!~test*"
        "/request_time:2030-01-01T00:00:00,/completion_time:,2030-01-02T00:00:00"
    )
    assert m.ListTasksRequest(sid="s").filter_clauses() == "type:TRANSFER,DELETE"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"requested_after": "2030-01-02", "requested_before": "2030-01-01"}, "requested_after"),
        ({"completed_after": "2030-01-01T00:00:00+00:00", "completed_before": "2029-12-31T21:00:00-02:00"}, "completed_after"),
        ({"task_id": ["not-a-task"]}, "task_id"),
        ({"task_id": [U] * (m.MAX_TASK_ID_FILTER + 1)}, "task_id"),
        ({"completed_before": "9999-12-31T23:00:00-02:00"}, "9999"),
        ({"requested_after": "0001-01-01T00:00:00+14:00"}, "lies before the year 1 in UTC"),
    ],
)
def test_list_tasks_bad_filters_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.ListTasksRequest(sid="s", **kw)
    assert field in str(info.value)


def test_update_task_needs_something_to_update() -> None:
    with pytest.raises(ValidationError, match="nothing to update"):
        m.UpdateTaskRequest(sid="s", task_id=U)
    req = m.UpdateTaskRequest(sid="s", task_id=U, deadline="2030-01-01 10:00:00")
    assert req.deadline is not None and req.label is None
    with pytest.raises(ValidationError) as info:
        m.UpdateTaskRequest(sid="s", task_id=U, label="x" * 129)
    assert fields_of(info.value) == {"label"}


def test_ls_path_refuses_nul_as_the_other_path_fields_do() -> None:
    with pytest.raises(ValidationError) as info:
        m.LsRequest(sid="s", path="a\x00b")
    assert fields_of(info.value) == {"path"} and "NUL" in str(info.value)
    assert m.LsRequest(sid="s").path is None  # no path: the collection's default directory
