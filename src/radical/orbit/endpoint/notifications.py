"""The endpoint's outbox of plugin notifications: thread-safe, bounded, counts drops.

Plugins call :meth:`NotificationQueue.put` from any thread or coroutine. The agent
drains it while connected; while disconnected frames pile up to ``maxsize`` and the
oldest are dropped. The number dropped since the last delivered frame rides along
in the ``dropped`` field of the next frame that is sent, so clients learn of a gap.

A notification whose payload takes more than ``max_payload`` bytes as JSON is never
queued: one warning line names plugin, topic and size (never the payload), and it
counts as dropped. Notifications are small status messages; a plugin that has bulk
data to hand over answers a request with it instead, where the relay's limits apply.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from ..errors import UsageError
from ..models.messages import Notification

__all__ = ["DEFAULT_MAX_PAYLOAD", "NotificationQueue"]

log = logging.getLogger(__name__)

#: the largest notification payload (bytes of JSON) the endpoint sends by default
DEFAULT_MAX_PAYLOAD = 256 * 1024


def call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> None:
    """Run ``fn`` on ``loop``: directly when called from it, else thread-safely."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn()
    else:
        loop.call_soon_threadsafe(fn)

class NotificationQueue:
    """Bounded FIFO of Notification frames shared between threads and the agent loop.

    :param maxsize: frames kept; beyond it the oldest is dropped (and counted)
    :param max_payload: bytes a payload may take as JSON; a larger one is dropped (and counted)
    """

    def __init__(self, maxsize: int = 10_000, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        if max_payload < 1:
            raise ValueError("max_payload must be >= 1")
        self.maxsize = maxsize
        self.max_payload = max_payload
        self._items: deque[Notification] = deque()
        self._lock = threading.Lock()
        self._dropped = 0
        self._dropped_total = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        #: this endpoint process's run: notification numbers count within it
        self.run = secrets.token_hex(8)
        self._seq = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Drops not yet reported to the bridge."""
        return self._dropped

    @property
    def dropped_total(self) -> int:
        return self._dropped_total

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the agent's loop so puts from other threads can wake it."""
        self._loop = loop
        self._ready = asyncio.Event()
        if self._items:
            self._ready.set()

    def put(self, plugin: str, sid: str | None, topic: str, payload: dict[str, Any], owner: str | None = None, /) -> None:
        """Queue one notification; callable from any thread (this is ``PluginContext.notify``).

        :param owner: the identity whose session it is (None: for everyone)
        :raises UsageError: when ``payload`` cannot be sent as JSON (raised here, in
            the plugin's code, rather than later on the connection)
        """
        try:
            size = len(to_json(payload))
        except PydanticSerializationError as exc:
            raise UsageError(
                f"notification {plugin}/{topic}: the payload must be JSON-serialisable ({exc})"
            ) from None
        if size > self.max_payload:
            self._drop_oversize(plugin, topic, size)
            return
        with self._lock:
            self._seq += 1
            frame = Notification(
                plugin=plugin, sid=sid, topic=topic, payload=dict(payload), ts=time.time(), owner=owner, seq=self._seq
            )
            self._items.append(frame)
            first = self._trim()
        if first:  # once per gap, not once per frame
            log.warning("notification queue full (%d); dropping the oldest until the bridge is reachable", self.maxsize)
        self._wake()

    def _trim(self) -> bool:
        """Drop the oldest beyond ``maxsize`` (holding the lock); True when a gap starts."""
        overflow = len(self._items) - self.maxsize
        if overflow <= 0:
            return False
        for _ in range(overflow):
            self._items.popleft()
        first = self._dropped == 0
        self._dropped += overflow
        self._dropped_total += overflow
        return first

    def requeue(self, frames: Sequence[Notification]) -> None:
        """Put frames a connection sent but saw no acknowledgement for back in front, in
        their order, to be sent again on the next connection (the bridge drops any it
        did store). Beyond ``maxsize`` the oldest go, as in :meth:`put`."""
        if not frames:
            return
        with self._lock:
            self._items.extendleft(reversed(frames))
            first = self._trim()
        if first:
            log.warning("notification queue full (%d); dropping the oldest until the bridge is reachable", self.maxsize)
        self._wake()

    def _drop_oversize(self, plugin: str, topic: str, size: int) -> None:
        with self._lock:
            self._dropped += 1
            self._dropped_total += 1
        log.warning(
            "notification %s/%s dropped: its payload takes %d bytes as JSON, more than the endpoint sends (%d; "
            "--max-notification-bytes)", plugin, topic, size, self.max_payload,
        )

    def _wake(self) -> None:
        loop, ready = self._loop, self._ready
        if loop is None or ready is None or loop.is_closed():
            return
        call_on_loop(loop, ready.set)

    def pop(self) -> Notification | None:
        """The oldest frame, with the pending drop count attached (and reset)."""
        with self._lock:
            if not self._items:
                return None
            frame = self._items.popleft()
            if self._dropped:
                frame = frame.model_copy(update={"dropped": self._dropped})
                self._dropped = 0
            return frame

    def push_back(self, frame: Notification) -> None:
        """Return a frame that could not be sent to the front (its drop count too)."""
        with self._lock:
            self._dropped += frame.dropped
            if len(self._items) >= self.maxsize:
                self._dropped += 1
                self._dropped_total += 1
                return
            self._items.appendleft(frame.model_copy(update={"dropped": 0}) if frame.dropped else frame)

    async def wait(self) -> None:
        """Until at least one frame is queued (needs :meth:`bind`)."""
        if self._ready is None:
            raise RuntimeError("bind() the notification queue to the event loop first")
        while True:
            with self._lock:
                if self._items:
                    return
                self._ready.clear()
            await self._ready.wait()
