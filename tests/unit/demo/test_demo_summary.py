"""The demo's summary table says what its numbers are."""

from __future__ import annotations

from radical.orbit.demo.session import _duration, _seconds_cell


def test_task_durations_show_the_whole_seconds_globus_reports() -> None:
    assert _seconds_cell(None) == "-"
    assert _seconds_cell(0.0) == "< 1 s"
    assert _seconds_cell(3.0) == "3 s"
    doc = {"request_time": "2026-11-30T05:00:00+00:00", "completion_time": "2026-11-30T05:00:03+00:00"}
    assert _duration(doc) == 3.0
    assert _duration({"request_time": "x", "completion_time": None}) is None
