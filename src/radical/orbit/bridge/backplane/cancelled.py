"""A cancelled task notices it, even when redis-py swallowed the cancellation.

redis-py's asyncio client has more than once caught a task's ``CancelledError`` during
a command and carried on (redis/redis-py#2028, #2551): the command returns as if
nothing happened, the task's loop goes back to waiting (for an event that will never
come during shutdown), and ``stop()`` waits for it forever. Seen here as a bridge
replica that hung on shutdown once in a few runs, its event pump "cancelling" but
parked in ``Event.wait()``. Each backplane loop calls :func:`raise_if_cancelled` after
its Redis commands: ``Task.cancelling()`` still counts a cancellation that was eaten.
"""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelled"]


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
