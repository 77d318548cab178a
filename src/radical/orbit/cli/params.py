"""Click parameter types shared by every ``radical-orbit`` command."""

from __future__ import annotations

import math
import uuid
from typing import Any

import click

from ..config import MAX_SECONDS
from ..errors import quoted

__all__ = ["LIMIT", "FiniteFloat", "GlobusId"]

#: the largest magnitude a :class:`FiniteFloat` takes (see :data:`~radical.orbit.config.MAX_SECONDS`)
LIMIT = MAX_SECONDS


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan``, ``inf`` and absurd magnitudes.

    ``FloatRange`` checks its bounds with ``<``/``>``, which are False for NaN, so
    ``--timeout nan`` passed any range and became a busy loop, an endless wait or a
    traceback further down; ``inf`` (or ``1e300``) passed every open-ended range and
    overflowed timers.

    :param unit: what the number counts, for the error message
    """

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
        unit: str = "seconds",
    ) -> None:
        super().__init__(min, max, min_open=min_open, max_open=max_open)
        self.unit = unit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number of {self.unit}, got {value}", param, ctx)
        if abs(number) > LIMIT:
            self.fail(f"must be at most {LIMIT:g} {self.unit}, got {value}", param, ctx)
        return super().convert(number, param, ctx)


class GlobusId(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A Globus id (client, collection, submission): a UUID, written in lower case as Globus
    writes them, checked when the command line is read.

    :param hint: what to do instead, the end of the message for anything else
    """

    name = "UUID"

    def __init__(self, hint: str) -> None:
        self.hint = hint

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip()))
        except ValueError:
            self.fail(f"{quoted(str(value).strip())} is not a UUID{self.hint}", param, ctx)
