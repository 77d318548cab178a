"""``PluginSysinfo``: host facts, load notifications, and relay test routes.

Routes (relative to ``/{endpoint}/sysinfo``)::

    GET  /ping                      {"pong": true}; no session (what the relay
                                    benchmark calls: a plain FastAPI route)
    POST /info     {sid}            hostname, cpus, memory, python, load, platform
    GET  /homedir, GET /host_role, POST /metrics {sid}
                                    the original Orbit's sysinfo calls (.host)
    POST /watch    {sid, interval, count}
                                    emit ``load`` notifications for this session
                                    every ``interval`` s (``count`` times, or until
                                    the session closes); -> {"watch": id}
    POST /unwatch  {sid, watch}     stop one watch early

Test routes, only with ``-o sysinfo.test_routes=true`` (otherwise a 404 that says so)::

    ANY  /echo[/...]                method, path, query, headers, base64 body back
    GET  /echo/bytes?n=N[&seed=S]   N pseudo-random bytes (application/octet-stream)
    POST /sleep    {sid, seconds}   answer after ``seconds`` (slow-request tests)

They are off by default because they let any client make the bridge and the endpoint
hold large answers (``bytes``) or many requests in flight (``sleep``) at will: tools
for testing the relay, not for a shared production endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import platform
import random
import secrets
import socket
import time
from typing import Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ...errors import NotFoundError, UsageError
from ..base import Plugin, PluginSession, SessionRequest
from .host import add_host_routes

__all__ = ["PluginSysinfo", "SysinfoSession", "host_facts"]

ECHO_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_BYTES = 32 * 2**20  # base64 in a frame: 43 MiB, inside the default 64 MiB frame limit
#: concurrent watches one session may run
MAX_WATCHES = 32
_PONG = b'{"pong":true}'
#: the option that turns the test routes on
TEST_ROUTES_OPTION = "sysinfo.test_routes=true"


def _memory() -> dict[str, int | None]:
    """Total and available memory in bytes (Linux /proc/meminfo, else sysconf)."""
    total: int | None = None
    available: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    value = int(rest.split()[0]) * 1024
                    if key == "MemTotal":
                        total = value
                    else:
                        available = value
    except (OSError, ValueError, IndexError):
        pass
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = None
    return {"total": total, "available": available}


def _load() -> list[float] | None:
    try:
        return [round(x, 3) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def host_facts() -> dict[str, Any]:
    """What ``POST /info`` answers."""
    memory = _memory()
    return {
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "memory_total": memory["total"],
        "memory_available": memory["available"],
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "load_average": _load(),
        "platform": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "pid": os.getpid(),
        "time": time.time(),
    }


class InfoRequest(SessionRequest):
    pass


class WatchRequest(SessionRequest):
    interval: float = Field(default=1.0, ge=0.01, le=3600.0, description="seconds between notifications")
    count: int | None = Field(default=None, ge=1, le=1_000_000, description="how many; None: until closed")


class UnwatchRequest(SessionRequest):
    watch: str


class SleepRequest(SessionRequest):
    seconds: float = Field(ge=0.0, le=3600.0)


class SysinfoSession(PluginSession):
    """A client's session: owns its watch tasks, which stop when it closes."""

    def __init__(self, plugin: Plugin, sid: str) -> None:
        super().__init__(plugin, sid)
        self.watches: dict[str, asyncio.Task[None]] = {}

    def start_watch(self, interval: float, count: int | None) -> str:
        if len(self.watches) >= MAX_WATCHES:
            raise UsageError(f"this session already runs {MAX_WATCHES} watches; unwatch one first")
        watch = secrets.token_hex(6)
        task = asyncio.create_task(self._watch(watch, interval, count), name=f"sysinfo-watch-{watch}")
        self.watches[watch] = task
        task.add_done_callback(lambda _t: self.watches.pop(watch, None))
        return watch

    async def _watch(self, watch: str, interval: float, count: int | None) -> None:
        seq = 0
        while count is None or seq < count:
            await asyncio.sleep(interval)
            seq += 1
            last = count is not None and seq >= count
            self.notify("load", {"watch": watch, "seq": seq, "load": _load(), "time": time.time(), "last": last})

    def stop_watch(self, watch: str) -> bool:
        task = self.watches.pop(watch, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def close(self) -> None:
        tasks = list(self.watches.values())
        self.watches.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class EchoReply(BaseModel):
    method: str
    path: str
    query: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: str
    body_size: int



class SysinfoOptions(BaseModel):
    """``radical-orbit endpoint -o sysinfo.KEY=VALUE``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: serve echo, echo/bytes and sleep (relay tests and benchmarks)
    test_routes: StrictBool = False


class PluginSysinfo(Plugin):
    """Host facts, plus test routes for the relay (echo, bytes, sleep) when enabled."""

    name = "sysinfo"
    description = "host name, CPU count, memory, Python version and load average of the endpoint host"
    options_model = SysinfoOptions

    @property
    def test_routes(self) -> bool:
        """Whether echo, echo/bytes and sleep are served."""
        return isinstance(self.options, SysinfoOptions) and self.options.test_routes

    async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
        return SysinfoSession(self, sid)

    def _session(self, sid: str) -> SysinfoSession:
        return cast(SysinfoSession, self.session(sid))

    def add_routes(self, router: APIRouter) -> None:
        add_host_routes(router, self)
        plugin = self

        @router.get("/ping")
        async def ping() -> Response:
            """GET /ping: no-op, no session (what the relay benchmark calls)."""
            return Response(_PONG, media_type="application/json")

        @router.post("/info")
        async def info(req: InfoRequest) -> dict[str, Any]:
            """POST /info: facts about the endpoint host. 404/410 for a bad sid."""
            plugin.session(req.sid)
            return await asyncio.to_thread(host_facts)

        @router.post("/watch")
        async def watch(req: WatchRequest) -> dict[str, Any]:
            """POST /watch: start ``load`` notifications for this session."""
            session = plugin._session(req.sid)
            watch_id = session.start_watch(req.interval, req.count)
            return {"watch": watch_id, "interval": req.interval, "count": req.count, "topic": "load"}

        @router.post("/unwatch")
        async def unwatch(req: UnwatchRequest) -> dict[str, Any]:
            """POST /unwatch: stop one watch; 404 when it is not running."""
            session = plugin._session(req.sid)
            if not session.stop_watch(req.watch):
                raise NotFoundError(f"no running watch {req.watch!r} in this session", watch=req.watch)
            return {"stopped": True}

        if plugin.test_routes:
            self._add_test_routes(router)
        else:
            self._refuse_test_routes(router)

    def _refuse_test_routes(self, router: APIRouter) -> None:
        """The test routes' paths answer a 404 that says how to turn them on (before
        any body is read: nothing about them is served)."""
        endpoint = self.ctx.endpoint

        async def disabled() -> Response:
            raise NotFoundError(
                f"sysinfo's test routes (echo, echo/bytes, sleep) are off on endpoint '{endpoint}'; "
                f"start the endpoint with -o {TEST_ROUTES_OPTION} to serve them",
                plugin=self.name,
            )

        for path in ("/sleep", "/echo", "/echo/{rest:path}"):
            router.add_api_route(path, disabled, methods=ECHO_METHODS, include_in_schema=False)

    def _add_test_routes(self, router: APIRouter) -> None:
        plugin = self

        @router.post("/sleep")
        async def sleep(req: SleepRequest) -> dict[str, Any]:
            """POST /sleep: answer after ``seconds`` without blocking other requests."""
            plugin.session(req.sid)
            start = time.monotonic()
            await asyncio.sleep(req.seconds)
            return {"slept": round(time.monotonic() - start, 6)}

        @router.get("/echo/bytes")
        async def echo_bytes(
            n: int = Query(ge=0, le=MAX_BYTES),
            seed: int = Query(default=0),
        ) -> Response:
            """GET /echo/bytes?n=N: N reproducible pseudo-random bytes; sha256 in a header."""
            data = random.Random(seed).randbytes(n)
            return Response(
                data,
                media_type="application/octet-stream",
                headers={"x-sha256": hashlib.sha256(data).hexdigest()},
            )

        async def echo(request: Request) -> Response:
            """ANY /echo[/...]: the request as the plugin saw it (body base64)."""
            body = await request.body()
            headers: dict[str, str] = {}
            for key, value in request.headers.items():
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            reply = EchoReply(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                params=list(request.query_params.multi_items()),
                headers=headers,
                body=base64.b64encode(body).decode("ascii"),
                body_size=len(body),
            )
            status = request.headers.get("x-echo-status", "200")
            valid = len(status) == 3 and status.isascii() and status.isdigit() and 200 <= int(status) <= 599
            return Response(
                reply.model_dump_json(),
                status_code=int(status) if valid else 200,
                media_type="application/json",
                headers={"x-echo-method": request.method},
            )

        async def echo_path(request: Request, rest: str) -> Response:
            """ANY /echo/{rest}: as /echo (the parameter is declared for the OpenAPI schema)."""
            return await echo(request)

        for method in ECHO_METHODS:  # a route per method: each its own OpenAPI operation id
            router.add_api_route("/echo", echo, methods=[method])
            router.add_api_route("/echo/{rest:path}", echo_path, methods=[method])

