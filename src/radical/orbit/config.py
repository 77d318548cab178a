"""Where radical.orbit finds its settings: one constant per environment variable and file.

Resolution everywhere is: explicit argument > environment variable > file under
``~/.radical/orbit/`` > default. ``~`` is ``Path.home()``, so a test (or a user)
can redirect everything with ``HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_BRIDGE_URL = "RADICAL_ORBIT_BRIDGE_URL"
ENV_BRIDGE_TOKEN = "RADICAL_ORBIT_BRIDGE_TOKEN"
ENV_BRIDGE_CERT = "RADICAL_ORBIT_BRIDGE_CERT"
ENV_GLOBUS_COLLECTION = "RADICAL_ORBIT_GLOBUS_COLLECTION"
ENV_LOG_LEVEL = "RADICAL_ORBIT_LOG_LEVEL"

DEFAULT_BRIDGE_URL = "http://127.0.0.1:8000"
DEFAULT_BRIDGE_PORT = 8000
DEFAULT_EMULATOR_PORT = 8700

BRIDGE_URL_FILE = "bridge.url"
BRIDGE_TOKEN_FILE = "bridge.token"
BRIDGE_CERT_FILE = "bridge.cert"
GLOBUS_CONFIG_FILE = "globus.json"


def orbit_home() -> Path:
    """``~/.radical/orbit`` (not created here)."""
    return Path.home() / ".radical" / "orbit"


def _read_file(name: str) -> str | None:
    path = orbit_home() / name
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def resolve_bridge_url(url: str | None = None) -> str:
    """Argument > ``RADICAL_ORBIT_BRIDGE_URL`` > ``~/.radical/orbit/bridge.url`` > default."""
    value = url or os.environ.get(ENV_BRIDGE_URL) or _read_file(BRIDGE_URL_FILE) or DEFAULT_BRIDGE_URL
    return value.rstrip("/")


def resolve_bridge_token(token: str | None = None) -> str | None:
    """Argument > ``RADICAL_ORBIT_BRIDGE_TOKEN`` > ``~/.radical/orbit/bridge.token`` > none."""
    return token or os.environ.get(ENV_BRIDGE_TOKEN) or _read_file(BRIDGE_TOKEN_FILE)


def resolve_bridge_cert(cert: str | None = None) -> str | None:
    """Argument > ``RADICAL_ORBIT_BRIDGE_CERT`` > ``~/.radical/orbit/bridge.cert`` (if present)."""
    if cert:
        return cert
    env = os.environ.get(ENV_BRIDGE_CERT)
    if env:
        return env
    path = orbit_home() / BRIDGE_CERT_FILE
    return str(path) if path.is_file() else None


def write_private_file(name: str, content: str) -> Path:
    """Write ``~/.radical/orbit/<name>`` with mode 0600 (directory 0700)."""
    home = orbit_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.chmod(path, 0o600)
    return path
