"""The cheapest relay there is: a process that passes bytes through to a server and back.

``python bench/forwarder.py PORT HOST:PORT`` listens on 127.0.0.1:PORT and, for each
connection, opens one to HOST:PORT and copies bytes both ways (uvloop when
installed, asyncio protocols, no parsing, no copying beyond the kernel's).

relay.py puts it in front of the FastAPI app: any relay in front of a plugin (a
FastAPI app) costs at least that, one more process and two more loopback hops with
no work of its own, so its figures are the floor under ours on this machine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import cast


class Pipe(asyncio.Protocol):
    """One side of a forwarded connection: what it reads is written to its peer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Pipe | None = None
        self.pending: list[bytes] = []  # read before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    # flow control: a peer that cannot keep up stops this side's reading
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


async def serve(port: int, host: str, to_port: int) -> None:
    loop = asyncio.get_running_loop()

    async def join(front: Pipe) -> None:
        try:
            _, back = await loop.create_connection(Pipe, host, to_port)
        except OSError:
            if front.transport is not None:
                front.transport.close()
            return
        assert front.transport is not None and back.transport is not None
        front.peer, back.peer = back, front
        for data in front.pending:
            back.transport.write(data)
        front.pending.clear()

    joining: set[asyncio.Task[None]] = set()

    def accept() -> Pipe:
        front = Pipe()
        task = loop.create_task(join(front))
        joining.add(task)
        task.add_done_callback(joining.discard)
        return front

    server = await loop.create_server(accept, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    host, _, to_port = sys.argv[2].rpartition(":")
    if importlib.util.find_spec("uvloop"):
        import uvloop

        uvloop.run(serve(port, host, int(to_port)))
    else:
        asyncio.run(serve(port, host, int(to_port)))


if __name__ == "__main__":
    main()
