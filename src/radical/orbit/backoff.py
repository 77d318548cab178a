"""The one backoff rule: capped exponential with jitter, for everything that retries.

The endpoint redials the bridge with it, the client SDK reconnects its event stream
with it, pollers slow down with it. Jitter keeps many clients that lost the same
bridge from coming back in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: ``min(cap, initial * factor**n) * U(0.5, 1)``.

    ``Backoff(0.5, 30.0).delay(0)`` is in [0.25, 0.5]; ``.delay(10)`` in [15, 30].

    :param initial: the first delay's upper bound, seconds
    :param cap: no delay exceeds this
    :param factor: growth per attempt
    """

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        base = min(self.cap, self.initial * self.factor ** min(max(attempt, 0), 64))
        return base * (rng or random).uniform(0.5, 1.0)
