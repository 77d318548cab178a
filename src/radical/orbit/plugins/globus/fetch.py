"""``TaskFetch``: the blocking globus-sdk reads behind tracking, as plain dicts.

Every method blocks on the network: the session runs them on its executor, never on
the event loop, and maps their errors (:func:`.errors.map_globus_errors`). What they
return goes to the :class:`.tracker.TaskTracker`, which never sees globus-sdk.
The call counters end up in ``session_info()['poller']``.
"""

from __future__ import annotations

import logging
from typing import Any

import globus_sdk
from globus_sdk import MISSING, MissingType

from .models import TASK_LIST_PAGE

log = logging.getLogger(__name__)

#: Globus answers these for a URL or filter it finds too long (413/414/431, or a 400
#: for our otherwise well-formed task_id filter, depending on which hop refuses it)
TOO_LONG = frozenset({400, 413, 414, 431})


class TaskFetch:
    """Task documents and error events of one TransferClient.

    :param chunk: task ids per ``task_list`` call; halved (for good) when a server
        refuses the request as too long
    """

    def __init__(self, tc: globus_sdk.TransferClient, chunk: int, *, name: str = "globus session") -> None:
        self.tc = tc
        self.chunk = max(1, chunk)
        self.name = name
        self.calls: dict[str, int] = {"task_list_calls": 0, "get_task_calls": 0, "event_list_calls": 0}

    def tasks(self, ids: list[str]) -> list[dict[str, Any]]:
        """Documents of the TRANSFER and DELETE tasks among ``ids`` that ``task_list``
        shows (one call per chunk of ids)."""
        docs: list[dict[str, Any]] = []
        i = 0
        while i < len(ids):
            chunk = ids[i : i + self.chunk]
            flt = "task_id:" + ",".join(chunk) + "/type:TRANSFER,DELETE"
            self.calls["task_list_calls"] += 1
            try:
                page = self.tc.task_list(limit=len(chunk), filter=flt).data
            except globus_sdk.GlobusAPIError as exc:
                if exc.http_status in TOO_LONG and len(chunk) > 1:
                    self.chunk = max(1, len(chunk) // 2)
                    log.info("%s: task_list URL too long; %d ids per call from now on", self.name, self.chunk)
                    continue
                raise
            docs.extend(dict(d) for d in page.get("DATA", []))
            i += len(chunk)
        return docs

    def active(self) -> list[dict[str, Any]]:
        """Documents of every ACTIVE or INACTIVE transfer and delete of the identity."""
        docs: list[dict[str, Any]] = []
        offset = 0
        while True:
            self.calls["task_list_calls"] += 1
            page = self.tc.task_list(limit=TASK_LIST_PAGE, offset=offset, filter="type:TRANSFER,DELETE/status:ACTIVE,INACTIVE").data
            docs.extend(page.get("DATA", []))
            offset += len(page.get("DATA", []))
            if not page.get("DATA") or offset >= int(page.get("total", 0)):
                return docs

    def task(self, task_id: str) -> dict[str, Any]:
        """One task's document (``get_task``: also tasks ``task_list`` does not show)."""
        self.calls["get_task_calls"] += 1
        return dict(self.tc.get_task(task_id).data)

    def events(self, task_id: str, *, limit: int, offset: int | MissingType = MISSING, errors_only: bool = False) -> dict[str, Any]:
        """A page of the task's event list, newest first."""
        self.calls["event_list_calls"] += 1
        qp = {"filter": "is_error:1"} if errors_only else None
        return dict(self.tc.task_event_list(task_id, limit=limit, offset=offset, query_params=qp).data)

    def error_events(self, task_id: str) -> list[dict[str, Any]]:
        """The task's newest error events (what a fault notification reports)."""
        return list(self.events(task_id, limit=10, errors_only=True).get("DATA", []))
