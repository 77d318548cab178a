"""Text that UTF-8 cannot carry: the one place that finds it and the one writer that survives it.

Python strings may hold a lone surrogate (``"\\ud800"``): JSON can spell one, and
``os.fsdecode`` makes them from file names that are not UTF-8. Such a string cannot
be encoded as UTF-8, so it fails wherever it is written out (a query string, a
header, an answer). Input is checked with :func:`find_lone_surrogate` and refused
with a clear 4xx; output that may legitimately hold one (a file name) is written
with :func:`ascii_json`, whose ``\\u`` escapes carry it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ascii_json", "find_lone_surrogate", "lone_surrogate"]


def lone_surrogate(text: str) -> str | None:
    """Where ``text`` holds a lone surrogate (``"a lone surrogate U+D800 at character 3"``), else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def find_lone_surrogate(value: Any) -> str | None:
    """:func:`lone_surrogate` for the first string in ``value`` (nested lists, tuples
    and dicts, keys included) that holds one, else None."""
    if isinstance(value, str):
        return lone_surrogate(value)
    if isinstance(value, list | tuple):
        for item in value:
            found = find_lone_surrogate(item)
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = find_lone_surrogate(key) or find_lone_surrogate(item)
            if found:
                return found
    return None


def ascii_json(content: Any) -> bytes:
    """Compact JSON with every non-ASCII character escaped.

    A lone surrogate cannot be encoded as UTF-8; ``\\u`` escapes still carry it, and
    a client's ``json.loads`` gives the same ``str`` back.
    """
    return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
