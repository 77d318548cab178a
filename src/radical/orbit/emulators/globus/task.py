"""The task record: what a Globus task was asked to do, its counters, events and results.

One :class:`Task` per submitted transfer or delete. The runs (``transfer_run``,
``delete_run``) write to it from their worker thread while the API reads it, so every
mutable field is guarded by ``task.lock``; :meth:`Task.document` is the one place that
turns the record into Globus's ``DATA_TYPE: task`` document, so ``get_task`` and
``task_list`` cannot disagree. The record is plain data (``to_json``/``from_json``) so
the engine can persist it across restarts.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .collections import globus_time

__all__ = ["COUNTERS", "DEFAULT_DEADLINE", "DESCRIPTIONS", "FINISHED", "Task"]

#: a task's deadline when the submission names none (Globus's default)
DEFAULT_DEADLINE = 24 * 3600
FINISHED = ("SUCCEEDED", "FAILED")

COUNTERS = (
    "files",
    "directories",
    "symlinks",
    "files_skipped",
    "files_transferred",
    "faults",
    "subtasks_total",
    "subtasks_pending",
    "subtasks_retrying",
    "subtasks_succeeded",
    "subtasks_failed",
    "subtasks_canceled",
    "subtasks_expired",
    "subtasks_skipped_errors",
    "bytes_transferred",
    "bytes_checksummed",
)

#: the ``description`` of each event code, as Globus words it
DESCRIPTIONS = {
    "FILE_NOT_FOUND": "file not found",
    "PERMISSION_DENIED": "permission denied",
    "QUOTA_EXCEEDED": "quota exceeded",
    "NO_SPACE_LEFT": "no space left on device",
    "CANCELED": "canceled",
    "EXPIRED": "deadline expired",
    "IS_A_DIRECTORY": "is a directory",
    "NOT_A_DIRECTORY": "not a directory",
    "VERIFY_CHECKSUM": "checksum verification failed",
    "EXTERNAL_CHECKSUM_MISMATCH": "external checksum mismatch",
    "ENDPOINT_ERROR": "endpoint error",
    "SUCCEEDED": "succeeded",
    "STARTED": "started",
    "PROGRESS": "progress",
    "SKIPPED_ERRORS": "skipped errors",
}

#: attributes that live only in this process (locks, events, the running flag)
_RUNTIME = ("lock", "cancel_event", "done_event", "running")


def pending_subtasks(c: dict[str, int]) -> int:
    """Subtasks neither succeeded nor ended otherwise: Globus reports them, it does not count them."""
    ended = c["subtasks_succeeded"] + c["subtasks_failed"] + c["subtasks_canceled"] + c["subtasks_expired"] + c["subtasks_skipped_errors"]
    return max(0, c["subtasks_total"] - ended)


@dataclass
class Task:
    """One task: what was asked, its counters, events and results."""

    task_id: str
    type: str  # TRANSFER | DELETE
    owner_id: str
    username: str
    submission_id: str
    request: dict[str, Any]
    source_endpoint_id: str
    destination_endpoint_id: str | None
    source_display_name: str
    destination_display_name: str | None
    request_time: float
    deadline: float
    label: str | None = None
    status: str = "ACTIVE"
    completion_time: float | None = None
    fatal_error: dict[str, str] | None = None
    nice_status: str | None = "Queued"
    nice_status_short_description: str | None = "Queued"
    is_ok: bool | None = True
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    events: list[dict[str, Any]] = field(default_factory=list)
    successful: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    running: bool = False

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        if self.status in FINISHED:
            self.done_event.set()

    # ---- serialisation

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k not in _RUNTIME}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(**data)

    def restart(self) -> None:
        """Forget the progress of a run the emulator's restart interrupted: it runs again from the start."""
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.successful, self.skipped = [], []
        self.nice_status = self.nice_status_short_description = "Queued"
        self.is_ok = True
        self.started_at = None
        self.add_event("UNPAUSED", "emulator restarted; the task is run again", description="unpaused")

    # ---- events and counters

    def add_event(self, code: str, details: str | None = None, *, is_error: bool = False, description: str | None = None) -> None:
        ev = {
            "DATA_TYPE": "event",
            "code": code,
            "is_error": is_error,
            "description": description or DESCRIPTIONS.get(code, code.lower().replace("_", " ")),
            "details": details,
            "time": globus_time(time.time()),
        }
        with self.lock:
            self.events.append(ev)

    def bump(self, **deltas: int) -> None:
        with self.lock:
            for k, v in deltas.items():
                self.counters[k] += v

    # ---- the Globus document

    def document(self) -> dict[str, Any]:
        """The ``DATA_TYPE: task`` document, as get_task and task_list return it."""
        req = self.request
        is_transfer = self.type == "TRANSFER"
        with self.lock:
            c = dict(self.counters)
            status = self.status
            done = status in FINISHED
            c["subtasks_pending"] = pending_subtasks(c)
            if done:
                c["subtasks_retrying"] = 0
            end = self.completion_time or time.time()
            elapsed = max(end - (self.started_at or end), 1e-6)
            rate = c["bytes_transferred"] / elapsed if self.started_at and is_transfer else 0.0
            eff = int(rate) if math.isfinite(rate) else 0  # a NaN time from a state file must not break the listing
            doc: dict[str, Any] = {
                "DATA_TYPE": "task",
                "task_id": self.task_id,
                "type": self.type,
                "status": status,
                "label": self.label,
                "owner_id": self.owner_id,
                "username": "u_" + self.owner_id.replace("-", "")[:26],
                "command": "API 0.10",
                "request_time": globus_time(self.request_time),
                "completion_time": globus_time(self.completion_time),
                "deadline": globus_time(self.deadline),
                "source_endpoint": self.source_endpoint_id,
                "source_endpoint_id": self.source_endpoint_id,
                "source_endpoint_display_name": self.source_display_name,
                "destination_endpoint": self.destination_endpoint_id,
                "destination_endpoint_id": self.destination_endpoint_id,
                "destination_endpoint_display_name": self.destination_display_name,
                **_options(req, is_transfer),
                "fatal_error": self.fatal_error,
                "nice_status": None if done else self.nice_status,
                "nice_status_details": None,
                "nice_status_short_description": None if done else self.nice_status_short_description,
                "nice_status_expires_in": None if done else -1,
                "is_ok": None if done else self.is_ok,
                "is_paused": False,
                "canceled_by_admin": None,
                "canceled_by_admin_message": None,
                "history_deleted": False,
                "effective_bytes_per_second": eff,
                **c,
            }
        return doc


def _options(req: dict[str, Any], is_transfer: bool) -> dict[str, Any]:
    """The request's options as the task document echoes them (a delete has no transfer options)."""

    def flag(name: str) -> bool:
        return bool(req.get(name, False)) if is_transfer else False

    return {
        "sync_level": req.get("sync_level") if is_transfer else None,
        "verify_checksum": flag("verify_checksum"),
        "encrypt_data": flag("encrypt_data"),
        "preserve_timestamp": flag("preserve_timestamp"),
        "delete_destination_extra": flag("delete_destination_extra"),
        "skip_source_errors": flag("skip_source_errors"),
        "fail_on_quota_errors": flag("fail_on_quota_errors"),
        "recursive_symlinks": req.get("recursive_symlinks") or "ignore",
        "filter_rules": req.get("filter_rules") if is_transfer else None,
        "source_local_user": req.get("source_local_user") if is_transfer else req.get("local_user"),
        "destination_local_user": req.get("destination_local_user") if is_transfer else None,
        "source_base_path": None,
        "destination_base_path": None,
    }
