"""An HTTP client that behaves as the Explorer page in a browser does (for tests without a browser).

No bearer token: the session cookie, sent back as a browser sends a SameSite=Strict
cookie to its own site; ``Origin`` and ``Sec-Fetch-Site: same-origin`` as a browser
adds them to the page's own ``fetch`` calls; ``X-Orbit-CSRF: 1`` on unsafe methods,
as the page adds it.
"""

from __future__ import annotations

import subprocess
import sys
from http.cookies import SimpleCookie
from typing import Any, Self

import httpx

CSRF = {"X-Orbit-CSRF": "1"}


def explorer_link(bridge_url: str, env: dict[str, str]) -> str:
    """The URL ``radical-orbit explorer --print-url`` prints (a real CLI process)."""
    out = subprocess.run(
        [sys.executable, "-m", "radical.orbit.cli.main", "explorer", "--print-url", "--url", bridge_url],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    return lines[0]


def secret_of(link: str) -> str:
    return link.split("#signin=", 1)[1]


class PageClient:
    """The page's HTTP behaviour against one bridge; ``sign_in(link)`` first."""

    def __init__(self, bridge_url: str) -> None:
        self.url = bridge_url.rstrip("/")
        self.cookie: str | None = None
        self.set_cookie: str | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def headers(self, method: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Sec-Fetch-Site": "same-origin"}
        if self.cookie:
            out["Cookie"] = f"orbit_session={self.cookie}"
        if method.upper() not in ("GET", "HEAD"):
            out.update({"Origin": self.url, **CSRF})
        out.update(extra or {})
        return out

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self.headers(method, headers), **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def sign_in(self, link: str) -> httpx.Response:
        """What the page does with ``#signin=...``: trade it for the session cookie."""
        resp = self.post("/ui/api/session", json={"secret": secret_of(link)})
        if resp.status_code == 200:
            self.set_cookie = resp.headers["set-cookie"]
            jar: SimpleCookie = SimpleCookie()
            jar.load(self.set_cookie)
            self.cookie = jar["orbit_session"].value
        return resp
