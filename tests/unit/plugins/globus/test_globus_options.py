"""The globus plugin's options (PollSettings as its options_model): types, ranges, the
interval order, and the usage errors ``-o globus.KEY=VALUE`` produces."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from radical.orbit.errors import UsageError
from radical.orbit.plugins.base import PluginContext
from radical.orbit.plugins.globus.options import PollSettings
from radical.orbit.plugins.globus.plugin import PluginGlobus


def test_defaults() -> None:
    s = PollSettings()
    assert (s.min_interval, s.max_interval, s.backoff, s.chunk, s.workers, s.missing_grace) == (1.0, 10.0, 1.5, 1000, 16, 2)


def test_intervals_take_integers_and_stay_floats() -> None:
    s = PollSettings.model_validate({"min_interval": 2, "max_interval": 4, "backoff": 1})
    assert (s.min_interval, s.max_interval, s.backoff) == (2.0, 4.0, 1.0)
    assert isinstance(s.min_interval, float)


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"workers": 1.5}, "workers", "valid integer"),
        ({"workers": "4"}, "workers", "valid integer"),
        ({"chunk": True}, "chunk", "valid integer"),
        ({"missing_grace": 2.0}, "missing_grace", "valid integer"),
        ({"min_interval": "1"}, "min_interval", "valid number"),
        ({"backoff": True}, "backoff", "valid number"),
        ({"max_interval": float("inf")}, "max_interval", "finite number"),
        ({"min_interval": float("nan")}, "min_interval", "finite number"),
        ({"min_interval": 0}, "min_interval", "greater than 0"),
        ({"backoff": 0.5}, "backoff", "greater than or equal to 1"),
        ({"chunk": 0}, "chunk", "greater than or equal to 1"),
        ({"chunk": 1001}, "chunk", "less than or equal to 1000"),
        ({"workers": 257}, "workers", "less than or equal to 256"),
        ({"workers_per_identity": 0}, "workers_per_identity", "greater than or equal to 1"),
        ({"missing_grace": -1}, "missing_grace", "greater than or equal to 0"),
        ({"bogus": 1}, "bogus", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_name_the_key(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        PollSettings.model_validate(options)
    (error,) = info.value.errors()
    assert error["loc"] == (field,) and says in error["msg"]


def test_max_interval_below_min_interval_says_which_way_to_fix_it() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        PollSettings.model_validate({"min_interval": 5, "max_interval": 1})
    (error,) = info.value.errors()
    assert error["msg"] == "max_interval (1.0) is below min_interval (5.0): raise max_interval or lower min_interval"
    assert PollSettings(min_interval=2.0, max_interval=2.0).max_interval == 2.0  # equal is fine


def test_a_share_larger_than_the_pool_says_which_way_to_fix_it() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        PollSettings.model_validate({"workers": 4, "workers_per_identity": 5})
    (error,) = info.value.errors()
    assert error["msg"] == "workers_per_identity (5) is more than workers (4): lower workers_per_identity or raise workers"
    assert PollSettings(workers=4, workers_per_identity=4).workers_per_identity == 4  # the whole pool is allowed
    assert PollSettings().workers_per_identity is None  # unset: see pool.default_share


def test_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        PollSettings().workers = 3  # type: ignore[misc]


def test_the_plugin_validates_its_options_as_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        PluginGlobus.validate_options({"workers": "lots"})
    message = info.value.message
    assert "plugin 'globus' options" in message and "'workers'" in message and "valid integer" in message
    assert "known: backoff, chunk, login_client_id, max_interval, min_interval, missing_grace, workers, workers_per_identity" in message
    assert "-o globus.KEY=VALUE" in message
    assert [f["field"] for f in info.value.details["fields"]] == ["workers"]


def test_the_plugin_runs_with_the_validated_options() -> None:
    plugin = PluginGlobus(PluginContext(endpoint="ep", notify=lambda *a: None, settings={"workers": 4, "min_interval": 0.5}))
    assert plugin.poll_settings == PollSettings(workers=4, min_interval=0.5)
    with pytest.raises(UsageError, match="'chunk'"):
        PluginGlobus(PluginContext(endpoint="ep", notify=lambda *a: None, settings={"chunk": 0}))
