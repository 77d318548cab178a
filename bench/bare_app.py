"""The bare app each relay is measured against: one ``GET /ping`` route, nothing else.

It only needs starlette, so both stacks run the same app: ours under this project's
interpreter, served the way our bridge is (``python bench/bare_app.py PORT``), and the
original's under the original's own venv and its own uvicorn settings (see
``original_launch.py``). The difference between a relay and its bare app is then
what the relay adds, not what the server settings change.

``python bench/bare_app.py PORT --fastapi`` serves the same route as a FastAPI app,
served the same way: what a plugin's route (plugins are FastAPI apps) gives when it
is served directly, without Orbit.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"pong": True})


def make_app() -> Starlette:
    return Starlette(routes=[Route("/ping", ping)])


def make_fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def fastapi_ping() -> dict[str, bool]:
        return {"pong": True}

    return app


def serve_like_ours(port: int, *, fastapi: bool = False) -> None:
    """uvicorn with the loop and HTTP parser our bridge picks, no access log, no server header."""
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(make_fastapi_app() if fastapi else make_app(), host="127.0.0.1", port=port, loop=loop, http=http, access_log=False, log_level="warning", server_header=False)


if __name__ == "__main__":
    serve_like_ours(int(sys.argv[1]), fastapi="--fastapi" in sys.argv[2:])
