"""Redis URLs: checked before anything connects, shown without their password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ...errors import UsageError

__all__ = ["SCHEMES", "check_redis_url", "redacted_url", "redis_missing"]
SCHEMES = ("redis", "rediss", "unix")


def redis_missing() -> str | None:
    """Why the Redis backplane cannot be used here (the ``redis`` package is not
    installed), or None."""
    import importlib.util

    if importlib.util.find_spec("redis") is None:
        return "the Redis backplane needs the redis package: pip install 'radical.orbit[redis]'"
    return None


def check_redis_url(url: str) -> str:
    """``url`` if it is a Redis URL this bridge can use; a :class:`UsageError` naming the fix if not."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unclosed "[" of an IPv6 address
        raise UsageError(
            f"{redacted_url(url)!r} is not a Redis URL: use redis://HOST:PORT/DB (an IPv6 host in brackets: redis://[::1]:6379/0)",
            field="redis",
        ) from None
    if parts.scheme not in SCHEMES or not (parts.hostname or parts.path):
        raise UsageError(
            f"{redacted_url(url)!r} is not a Redis URL: use redis://HOST:PORT/DB "
            "(rediss:// for TLS, unix:///path/to/socket)",
            field="redis",
        )
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise UsageError(f"the port in {redacted_url(url)!r} is not a number", field="redis") from None
    return url.strip()


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs, errors and /health)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    netloc = f"{user}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
