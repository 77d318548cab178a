"""A local, stateful Globus Transfer API v0.10 + Globus Auth (token slice) emulator.

The real ``globus-sdk`` and Globus CLI talk to it unchanged through
``GLOBUS_SDK_SERVICE_URL_TRANSFER`` / ``GLOBUS_SDK_SERVICE_URL_AUTH`` (both set to the
emulator's root URL). Collections are folders; tasks really copy bytes.

In-process (tests)::

    with run_in_thread(EmulatorSettings(root=tmp)) as emu:
        token = emu.dev_token()["access_token"]
        tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(token),
                                       base_url=emu.url)

As a process: the ``emulator`` command of Orbit's CLI, or ``start_emulator`` of Orbit's
testing helpers (both outside this package: the emulator itself imports nothing of
Orbit but its error tree).

Inside: the task record (``task``), the runs a task executes on its worker thread
(``runner``, ``transfer_run``, ``delete_run``), the engine that admits, persists and
cancels them (``engine``), the Transfer routes by section of Globus's API reference
(``transfer_api``), the Auth slice (``auth_api``) and the emulator's own admin routes
(``admin_api``).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

import httpx

from .app import create_app
from .collections import TUTORIAL_1, TUTORIAL_2
from .context import Emulator
from .settings import DEV_IDENTITY_ID, DEV_USERNAME, NATIVE_CLIENT_ID, EmulatorSettings

__all__ = [
    "DEV_IDENTITY_ID",
    "DEV_USERNAME",
    "NATIVE_CLIENT_ID",
    "TUTORIAL_1",
    "TUTORIAL_2",
    "Emulator",
    "EmulatorSettings",
    "RunningEmulator",
    "create_app",
    "dev_token",
    "run_in_thread",
    "sdk_environment",
]


def dev_token(url: str, *, refresh: bool = False, scope: str | None = None, consents: list[str] | None = None, lifetime: int | None = None) -> dict[str, Any]:
    """A token response for the dev user from a running emulator at ``url``."""
    body: dict[str, Any] = {"refresh": refresh}
    if scope:
        body["scope"] = scope
    if consents:
        body["consents"] = consents
    if lifetime:
        body["lifetime"] = lifetime
    resp = httpx.post(url.rstrip("/") + "/_emulator/token", json=body, timeout=10)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def sdk_environment(url: str) -> dict[str, str]:
    """The environment variables that point globus-sdk / the CLI at the emulator."""
    root = url.rstrip("/") + "/"
    return {"GLOBUS_SDK_SERVICE_URL_TRANSFER": root, "GLOBUS_SDK_SERVICE_URL_AUTH": root}


class RunningEmulator:
    """An emulator served by uvicorn on a background thread (see :func:`run_in_thread`)."""

    def __init__(self, emulator: Emulator, url: str, server: Any, thread: threading.Thread) -> None:
        self.emulator = emulator
        self.url = url
        self._server = server
        self._thread = thread

    @property
    def local_collection(self) -> str:
        assert self.emulator.collections.local_id is not None
        return self.emulator.collections.local_id

    def dev_token(self, **kwargs: Any) -> dict[str, Any]:
        return dev_token(self.url, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = httpx.request(method, self.url + "/_emulator/" + path.lstrip("/"), timeout=10, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.emulator.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(settings: EmulatorSettings | None = None, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> RunningEmulator:
    """Serve an emulator in this process on a free (or given) port; returns when it answers."""
    import uvicorn

    settings = settings or EmulatorSettings()
    emulator = Emulator(settings)
    app = create_app(emulator=emulator)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    real_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="globus-emulator", daemon=True)
    thread.start()
    url = f"http://{host}:{real_port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.started:
            break
        time.sleep(0.01)
    else:
        server.should_exit = True
        raise TimeoutError(f"emulator did not start on {url} within {timeout} s")
    return RunningEmulator(emulator, url, server, thread)
