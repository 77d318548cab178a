"""Keep credentials out of log output, whatever logs them.

globus-sdk itself logs only token *hashes* at DEBUG and urllib3 logs only request
lines, so nothing we know of writes a token; this filter is the second line of
defence. Each session registers its secret strings; the filter, installed on the
root logger's handlers (and re-checked whenever a session opens, since the CLI may
configure logging after import), replaces any of them in a record's final message
and traceback text with ``***``.
"""

from __future__ import annotations

import logging
import threading

_MASK = "***"


class SecretRedactor(logging.Filter):
    """A handler filter that masks registered secrets in every record."""

    def __init__(self) -> None:
        super().__init__("radical.orbit.redact")
        self._secrets: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            for s in secrets:
                if s and len(s) >= 6:
                    self._secrets[s] = self._secrets.get(s, 0) + 1

    def remove(self, *secrets: str | None) -> None:
        with self._lock:
            for s in secrets:
                if s and s in self._secrets:
                    self._secrets[s] -= 1
                    if self._secrets[s] <= 0:
                        del self._secrets[s]

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, _MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        with self._lock:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                message = str(record.msg)
            clean = self._scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._scrub(record.exc_text)
        return True


REDACTOR = SecretRedactor()


def install(logger: logging.Logger | None = None) -> None:
    """Attach :data:`REDACTOR` to every handler of ``logger`` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
