"""Polling the bridge until something holds (``BridgeClient.wait_for_endpoint``), and
the one check of every timeout and interval the SDK takes (:func:`seconds_arg`).

Kept apart from :mod:`.bridge` because the loop has its own rules: a bridge that is
still starting is waited for, not an error; polls grow apart (``POLL_CAP``) unless
the caller fixed the pace (the original Orbit's ``poll``); and a progress callback
(the original's ``on_heartbeat``) is called at a pace of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..backoff import Backoff
from ..config import MAX_SECONDS
from ..errors import BridgeUnavailableError, OrbitError, UsageError

__all__ = ["POLL_CAP", "poll_until", "seconds_arg"]

T = TypeVar("T")

#: without a fixed ``poll``, polls grow apart up to this many seconds
POLL_CAP = 3.0
_MAX_TEXT = f"{MAX_SECONDS:.0e}".replace("e+0", "e")  # "1e9"


def seconds_arg(value: Any, name: str, context: str = "", *, allow_zero: bool = False) -> float:
    """``value`` as a finite number of seconds, or a :class:`UsageError` naming ``name``.

    Shared by every SDK call that takes a timeout or an interval, so ``None``, a
    string, NaN, infinity or a negative number is one clear error, not a
    ``TypeError``/``OverflowError`` from deep inside, a busy loop or an endless wait.
    """
    prefix = f"{context}: " if context else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{prefix}{name} must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        raise UsageError(f"{prefix}{name} must be at most {_MAX_TEXT} seconds, got an integer of {len(str(value))} digits") from None
    if not math.isfinite(seconds):
        raise UsageError(f"{prefix}{name} must be a finite number of seconds, got {value!r}")
    if seconds > MAX_SECONDS:
        raise UsageError(f"{prefix}{name} must be at most {_MAX_TEXT} seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise UsageError(f"{prefix}{name} must be positive, got {value!r}")
    return seconds


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
