"""``PollSettings``: the globus plugin's options (``radical-orbit endpoint -o globus.KEY=VALUE``).

A pydantic model so that :meth:`..base.Plugin.validate_options` checks them before
the endpoint dials (a typo is a usage error naming the key, not a surprise later),
and so that the tracker and the session read typed, frozen values.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .local import normalize_uuid
from .models import TASK_LIST_PAGE


class PollSettings(BaseModel):
    """Tunables of the poller and of each session's Globus executor.

    Counts are strict integers (``workers=1.5`` or ``"4"`` is refused, not rounded or
    parsed); intervals take any finite number (``-o globus.min_interval=1`` is fine).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: seconds between polls right after a submission, a cancel or a state change
    min_interval: Annotated[float, Field(gt=0, strict=True)] = 1.0
    #: the longest interval a quiet session backs off to
    max_interval: Annotated[float, Field(gt=0, strict=True)] = 10.0
    #: factor by which the interval grows per quiet cycle
    backoff: Annotated[float, Field(ge=1, strict=True)] = 1.5
    #: ids per task_list call; the API's page size, lowered by the session itself if a
    #: server rejects the URL as too long (414/431)
    chunk: Annotated[StrictInt, Field(ge=1, le=TASK_LIST_PAGE)] = TASK_LIST_PAGE
    #: worker threads for a session's globus-sdk calls (I/O bound: threads wait on sockets)
    workers: Annotated[StrictInt, Field(ge=1, le=256)] = 16
    #: how many of those one client identity's calls may hold at once (unset: all but a
    #: quarter of ``workers``, at least one left over), so one whose calls hang cannot take them all
    workers_per_identity: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    #: cycles a task may be missing from task_list before one get_task double-checks it
    missing_grace: Annotated[StrictInt, Field(ge=0)] = 2
    #: the Globus native app (client id) the Explorer's "Log in with Globus" runs as; its
    #: redirect URIs must include ``<bridge URL>/ui/callback.html``. Unset: the
    #: emulator's native client when globus-sdk talks to an emulator, else the login is refused
    login_client_id: str | None = None

    @field_validator("login_client_id")
    @classmethod
    def _client_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = normalize_uuid(value)
        if found is None:
            raise PydanticCustomError("client_id", "must be a Globus client id (a UUID), got {value!r}", {"value": value[:80]})
        return found

    @model_validator(mode="after")
    def _max_not_below_min(self) -> PollSettings:
        if self.max_interval < self.min_interval:
            raise PydanticCustomError(
                "interval_order",
                "max_interval ({max_interval}) is below min_interval ({min_interval}): "
                "raise max_interval or lower min_interval",
                {"max_interval": self.max_interval, "min_interval": self.min_interval},
            )
        return self

    @model_validator(mode="after")
    def _share_within_pool(self) -> PollSettings:
        if self.workers_per_identity is not None and self.workers_per_identity > self.workers:
            raise PydanticCustomError(
                "share_over_pool",
                "workers_per_identity ({share}) is more than workers ({workers}): "
                "lower workers_per_identity or raise workers",
                {"share": self.workers_per_identity, "workers": self.workers},
            )
        return self
