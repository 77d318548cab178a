"""Fault injection: random 5xx/429, added latency, per-path task faults, bandwidth caps.

Configured at start (``faults`` in the config file / settings) and at run time through
the admin API under ``/_emulator/faults`` (see :mod:`.admin_api`). Random errors and
latency apply to requests whose path matches ``routes`` (a regex, default: every
Transfer route); path faults and bandwidth caps apply inside tasks.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
import uuid
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["MAX_LATENCY", "FaultSettings", "FaultState", "PathFault"]


class PathFault(BaseModel):
    """A fault hit by task work on matching paths of one collection.

    ``path`` matches the normalised Globus path exactly, as a subtree prefix (its
    descendants) or as a glob. ``kind``: ``permission`` (the task keeps retrying,
    nice_status PERMISSION_DENIED, as Globus does), ``not_found`` (FILE_NOT_FOUND,
    fatal) or ``checksum`` (the copy written to a matching *destination* path is
    corrupted by one byte: caught and re-copied with ``verify_checksum``, silently wrong
    without). With ``skip_source_errors`` a source fault is skipped instead. ``times``:
    trigger at most this many times, then clear itself (None: until removed).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    collection: str
    path: str
    kind: Literal["permission", "not_found", "checksum"] = "permission"
    times: int | None = Field(default=None, ge=1)
    hits: int = 0

    def matches(self, collection: str, gpath: str) -> bool:
        if collection.lower() != self.collection.lower():
            return False
        p = self.path.rstrip("/") or "/"
        if gpath == p or (p == "/" or gpath.startswith(p + "/")):
            return True
        return fnmatch.fnmatchcase(gpath, self.path)


#: the longest latency a request may be given: past any client's timeout, yet a
#: forgotten setting cannot hold a request (and the server's shutdown) for good
MAX_LATENCY = 600.0


class FaultSettings(BaseModel):
    """The run-time fault configuration (``PUT /_emulator/faults``, the config file's ``faults``).

    Every value is checked here, since a bad one only shows later, on every matching
    request: a status outside 400-599 is not an error (or not HTTP at all: the server
    drops the connection), a huge latency means no answer, an infinite bandwidth crashes
    the task.
    """

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False, description="probability of a random error per request")
    error_statuses: list[Annotated[int, Field(ge=400, le=599)]] = Field(default_factory=lambda: [500, 503, 429], description="HTTP statuses 400-599 to pick from")
    retry_after: int = Field(default=1, ge=0, description="Retry-After seconds sent with 429/503")
    latency: float = Field(default=0.0, ge=0.0, le=MAX_LATENCY, allow_inf_nan=False, description="seconds added to every matching request")
    routes: str = Field(default=r"^/v0\.10/", description="regex on the request path")
    bandwidth: dict[str, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = Field(default_factory=dict, description="collection id -> bytes/s (0: no cap)")
    path_faults: list[PathFault] = Field(default_factory=list)
    seed: int | None = None

    @field_validator("routes")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


#: Globus's code and a message per injected status; others fall back to _error_body's default
_ERROR_BODIES = {
    400: ("ClientError.BadRequest", "Bad request (emulated fault)"),
    401: ("AuthenticationFailed", "Token is not active (emulated fault)"),
    403: ("PermissionDenied", "Permission denied (emulated fault)"),
    404: ("ClientError.NotFound", "Not found (emulated fault)"),
    409: ("Conflict", "Conflict (emulated fault)"),
    429: ("RequestLimitExceeded", "Rate limit exceeded, please retry later (emulated)"),
    500: ("InternalError", "An internal error occurred (emulated fault)"),
    502: ("BadGateway", "Bad gateway (emulated fault)"),
    503: ("ServiceUnavailable", "The service is temporarily unavailable (emulated fault)"),
    504: ("GatewayTimeout", "Gateway timeout (emulated fault)"),
}


def _error_body(status: int) -> tuple[str, str]:
    """(code, message) for an injected status: a 4xx is the client's error, not Globus's."""
    default = ("ClientError", "Emulated fault") if status < 500 else ("InternalError", "Emulated fault")
    return _ERROR_BODIES.get(status, default)


class FaultState:
    """Thread-safe holder of the current faults and the per-route request counters."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._rng = random.Random()
        self._routes = re.compile(self.settings.routes)
        self.counters: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        settings.bandwidth = {k.lower(): v for k, v in settings.bandwidth.items()}
        with self._lock:
            self.settings = settings
            self._rng = random.Random(settings.seed)
            self._routes = re.compile(settings.routes)

    def update(self, patch: dict[str, Any]) -> FaultSettings:
        """Merge ``patch`` into the settings (validated) and return the result."""
        merged = {**self.settings.model_dump(), **patch}
        new = FaultSettings.model_validate(merged)
        self.configure(new)
        return new

    def reset(self) -> None:
        self.configure(FaultSettings())

    # ---- request-level faults

    def count(self, route: str) -> None:
        with self._lock:
            self.counters[route] += 1

    def request_fault(self, path: str) -> tuple[float, tuple[int, str, str, dict[str, str]] | None]:
        """(latency seconds, error or None) for a request to ``path``."""
        with self._lock:
            s = self.settings
            if not self._routes.search(path):
                return 0.0, None
            err = None
            if s.error_rate > 0 and s.error_statuses and self._rng.random() < s.error_rate:
                status = self._rng.choice(s.error_statuses)
                code, msg = _error_body(status)
                headers = {"Retry-After": str(s.retry_after)} if status in (429, 503) else {}
                err = (status, code, msg, headers)
                self.injected[str(status)] += 1
            return s.latency, err

    # ---- task-level faults

    def path_fault(self, collection: str, gpath: str, kinds: tuple[str, ...] = ("permission", "not_found")) -> str | None:
        """The kind of a path fault of one of ``kinds`` hit by ``gpath`` (consuming one of its ``times``)."""
        with self._lock:
            for fault in list(self.settings.path_faults):
                if fault.kind in kinds and fault.matches(collection, gpath):
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self.settings.path_faults.remove(fault)
                    return fault.kind
        return None

    def add_path_fault(self, fault: PathFault) -> PathFault:
        with self._lock:
            self.settings.path_faults.append(fault)
        return fault

    def remove_path_fault(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self.settings.path_faults)
            self.settings.path_faults = [f for f in self.settings.path_faults if f.id != fault_id]
            return len(self.settings.path_faults) != before

    def bandwidth(self, collection: str) -> float | None:
        with self._lock:
            return self.settings.bandwidth.get(collection.lower())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": self.settings.model_dump(),
                "counters": dict(self.counters),
                "injected": dict(self.injected),
            }

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.injected.clear()
