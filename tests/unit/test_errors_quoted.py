"""Error messages quote what the user sent, but never 100 KB of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from radical.orbit.errors import quoted
from radical.orbit.plugins.globus.models import TaskRequest


def test_short_values_are_plain_reprs() -> None:
    assert quoted("abc") == "'abc'"
    assert quoted(42) == "42"
    assert quoted(None) == "None"


def test_long_values_are_cut_with_a_count() -> None:
    text = "x" * 100_000
    out = quoted(text)
    assert out == f"{'x' * 120!r}... (99880 more characters)"
    assert len(quoted(list(range(50_000)))) < 200


def test_a_plugin_field_error_quotes_short() -> None:
    with pytest.raises(ValidationError) as info:
        TaskRequest(sid="s" * 32, task_id="y" * 100_000)
    message = str(info.value)
    assert "must be a Globus task UUID" in message and "(99880 more characters)" in message
    assert len(message) < 2000
