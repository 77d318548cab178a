"""A small HTTP CONNECT proxy for the proxy tests, run as its own process on 127.0.0.1.

    python connect_proxy.py --port 3128 [--credentials user:password]

``CONNECT host:port`` opens a tunnel and relays bytes both ways (answering 407 when
``--credentials`` are set and the request does not carry them). Plain requests to
the proxy itself: ``GET /health`` and ``GET /tunnels`` (the targets of the tunnels
it opened and the CONNECTs it refused, as JSON), so a test can see that the
endpoint really went through it. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal


class ConnectProxy:
    def __init__(self, credentials: str | None) -> None:
        self.wanted = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None
        self.tunnels: list[str] = []
        self.refused: list[str] = []
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            first, *lines = head.split("\r\n")
            method, target, _ = first.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            if method != "CONNECT":
                self.answer_plain(writer, target)
                return
            if self.wanted is not None and headers.get("proxy-authorization") != self.wanted:
                self.refused.append(target)
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            host, _, port = target.rpartition(":")
            try:
                up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            self.writers.add(upstream)
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, upstream), pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self.writers.discard(w)
                    w.close()

    def answer_plain(self, writer: asyncio.StreamWriter, target: str) -> None:
        if target == "/health":
            status, body = "200 OK", {"status": "ok"}
        elif target == "/tunnels":
            status, body = "200 OK", {"tunnels": self.tunnels, "refused": self.refused}
        else:
            status, body = "404 Not Found", {"error": "not found"}
        data = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "Connection: close\r\n\r\n".encode() + data)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()


async def main(port: int, credentials: str | None) -> None:
    proxy = ConnectProxy(credentials)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"CONNECT proxy on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()
        server.close()
        for writer in list(proxy.writers):
            writer.close()
    print(f"tunnels opened: {len(proxy.tunnels)}, refused: {len(proxy.refused)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--credentials", default=None, metavar="USER:PASSWORD")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.credentials))
