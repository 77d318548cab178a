"""One write system call per socket per event-loop pass, however many writes asked for it.

uvicorn writes a response's head and its body with two ``transport.write`` calls,
and every frame the bridge sends an endpoint is a write of its own. With uvloop each
write is a ``write`` system call there and then, and on loopback that call also runs
the receiving side's TCP path and wakes the receiver; under load that is a large share
of the bridge's CPU (``bench/relay.py``). :class:`CoalescingTransport` keeps the
writes made during one pass of the loop and hands them to the real transport at the
end of the pass as one ``writelines`` (one ``writev`` with uvloop, no copy), so a
response is one system call and the frames for many requests to one endpoint share
one.

Nothing is held longer than the rest of the current loop pass: the flush runs from
``call_soon`` scheduled by the first buffered write, before the loop sleeps again.
More than :data:`FLUSH_AT` bytes go to the real transport at once, so its flow
control (``pause_writing``) still sees a large or streamed body as it is written.
``close`` and ``write_eof`` flush first, ``abort`` drops what is buffered (as the
real ``abort`` drops its own buffer).

Only asyncio's public transport and protocol interfaces are involved: the server
(``server.py``) wraps the HTTP protocol class uvicorn chose with :func:`coalescing`,
whose ``connection_made`` hands the protocol a coalescing transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["FLUSH_AT", "CoalescingTransport", "coalesce", "coalescing"]

#: buffered bytes that are written at once rather than at the end of the loop pass
FLUSH_AT = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A proxy for a real transport whose writes are gathered until the loop pass ends."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.inner = transport
        self._loop = loop
        self._chunks: list[bytes | bytearray | memoryview] | None = None
        self._size = 0

    def __repr__(self) -> str:
        return f"<CoalescingTransport {self.inner!r}>"

    # -- writing -------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._chunks is None:
            self._chunks = [data]
            self._size = len(data)
            self._loop.call_soon(self.flush)
        else:
            self._chunks.append(data)
            self._size += len(data)
        if self._size > FLUSH_AT:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand everything buffered to the real transport now (a no-op if nothing is)."""
        chunks = self._chunks
        if chunks is None:
            return
        self._chunks = None
        if self.inner.is_closing():  # closed under us: the real transport would drop it too
            return
        if len(chunks) == 1:
            self.inner.write(chunks[0])
        else:
            self.inner.writelines(chunks)

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size() + (self._size if self._chunks else 0)

    def write_eof(self) -> None:
        self.flush()
        self.inner.write_eof()

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    # -- closing -------------------------------------------------------------------
    def close(self) -> None:
        self.flush()
        self.inner.close()

    def abort(self) -> None:
        self._chunks = None
        self.inner.abort()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    # -- everything else is the real transport's --------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.inner.get_write_buffer_limits()


def coalesce(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """``transport`` with coalesced writes (itself if it already is)."""
    if isinstance(transport, CoalescingTransport):
        return transport
    return CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]


def coalescing(protocol_class: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """A subclass of ``protocol_class`` (any asyncio protocol) that writes through
    :func:`coalesce`.

    The bridge gives it the HTTP protocol class uvicorn loaded; a WebSocket upgrade
    hands the same (coalescing) transport on to the WebSocket protocol.
    """

    class Coalescing(protocol_class):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(coalesce(transport))

    Coalescing.__name__ = Coalescing.__qualname__ = f"Coalescing{protocol_class.__name__}"
    return Coalescing
