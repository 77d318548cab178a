"""Polling the bridge until something holds (``BridgeClient.wait_for_endpoint``).

Kept apart from :mod:`.bridge` because the loop has its own rules: a bridge that is
still starting is waited for, not an error; polls grow apart (``POLL_CAP``) unless
the caller fixed the pace (the original Orbit's ``poll``); and a progress callback
(the original's ``on_heartbeat``) is called at a pace of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ..backoff import Backoff
from ..errors import BridgeUnavailableError, OrbitError

__all__ = ["POLL_CAP", "poll_until"]

T = TypeVar("T")

#: without a fixed ``poll``, polls grow apart up to this many seconds
POLL_CAP = 3.0


def poll_until(
    probe: Callable[[], T | None],
    timeout: float,
    interval: float,
    *,
    fixed: bool = False,
    on_heartbeat: Callable[[], object] | None = None,
    heartbeat_interval: float = 10.0,
) -> T | None:
    """``probe()``'s first result that is not None, or None after ``timeout`` seconds.

    :param interval: seconds between probes: every time if ``fixed``, else the first
        wait, growing up to :data:`POLL_CAP`
    :param on_heartbeat: called between probes, at most every ``heartbeat_interval`` s
    :raises BridgeUnavailableError: the last probe could not reach the bridge (at the deadline)
    """
    start = time.monotonic()
    deadline, last_beat = start + timeout, start
    pace = Backoff(interval, max(interval, POLL_CAP), 1.5)
    attempt = 0
    while True:
        unreachable: OrbitError | None = None
        try:
            found = probe()
            if found is not None:
                return found
        except BridgeUnavailableError as exc:
            unreachable = exc
        now = time.monotonic()
        if now >= deadline:
            if unreachable is not None:
                raise unreachable
            return None
        if on_heartbeat is not None and now - last_beat >= heartbeat_interval:
            on_heartbeat()
            last_beat = now
        wait = interval if fixed else pace.delay(attempt)
        time.sleep(min(wait, max(0.0, deadline - now)))
        attempt += 1
