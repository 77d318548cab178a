"""models/messages.py: what a notification frame may carry to ``/events``."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from radical.orbit.bridge.events import sse_chunk
from radical.orbit.models.messages import (
    Cancel,
    Notification,
    Register,
    dump_frame,
    parse_frame,
)


def test_non_finite_payload_numbers_become_null() -> None:
    """JSON parsers accept NaN/Infinity tokens; the SSE stream must stay strict JSON."""
    raw = '{"type":"notification","plugin":"p","topic":"t","payload":{"a":NaN,"b":[Infinity,1.5],"c":{"d":-Infinity}},"ts":1}'
    frame = parse_frame(raw)
    assert isinstance(frame, Notification)
    assert frame.payload == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    data = sse_chunk("1", "notification", frame.payload).split("data: ", 1)[1]
    json.loads(data, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


@pytest.mark.parametrize("fields", ['"ts":Infinity', '"ts":NaN', '"ts":1,"dropped":-1'])
def test_impossible_timestamps_and_counts_are_refused(fields: str) -> None:
    with pytest.raises(ValidationError):
        parse_frame('{"type":"notification","plugin":"p","topic":"t",' + fields + "}")


def test_cancel_frame_round_trip_and_register_says_whether_it_takes_them() -> None:
    frame = parse_frame(dump_frame(Cancel(id="r1", reason="no answer within 5 s")))
    assert isinstance(frame, Cancel) and frame.id == "r1" and frame.reason == "no answer within 5 s"
    assert Register(name="ep").cancels is False  # an endpoint that says nothing is never sent one
    assert parse_frame(dump_frame(Register(name="ep", cancels=True))).cancels is True  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        parse_frame('{"type":"cancel"}')  # which request?
