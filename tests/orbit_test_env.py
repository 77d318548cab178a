"""The environment a test (or a process a test starts) runs in: no developer settings.

Importable from every test module (``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import os
from pathlib import Path

_PREFIXES = ("RADICAL_ORBIT_", "RADICAL_BRIDGE_", "GLOBUS_")
#: proxy and certificate settings that httpx, websockets and our endpoint read
#: (either case; urllib reads both)
_NETWORK = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WS_PROXY", "WSS_PROXY",
                 "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    for name in (base, base.lower())
)


def scrubbed(key: str) -> bool:
    """True for a variable no test may inherit."""
    return key.startswith(_PREFIXES) or key in _NETWORK


def scrubbed_environ(home: Path | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``os.environ`` without Orbit, Globus, proxy or CA settings, for child processes."""
    env = {k: v for k, v in os.environ.items() if not scrubbed(k)}
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env
