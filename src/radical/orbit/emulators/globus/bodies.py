"""Reading JSON request bodies: the one gate for the Transfer and admin routes.

Python's ``json`` module takes input a JSON API should refuse and that would break the
emulator later: nesting deep enough to raise RecursionError (or, once stored, to exceed
pydantic's serialisation depth), the ``NaN``/``Infinity`` literals, and ``"\\ud800"``
escapes that decode to lone surrogates, strings that cannot be encoded as UTF-8. All
are answered here with 400, naming the field where there is one, before anything is
stored.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from starlette.requests import Request

from .errors import bad_request

__all__ = ["MAX_DEPTH", "NOT_JSON", "check_json", "read_json"]

NOT_JSON = "Request body is not valid JSON"
#: deepest nesting of objects and arrays accepted; Globus documents need about four
MAX_DEPTH = 32


def _non_json_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (json pairs the valid ones itself)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field(loc: tuple[str, ...]) -> str:
    return ".".join(loc) or "body"


def check_json(data: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and any string or key with a lone surrogate.

    Iterative, so it cannot itself run out of stack on what the parser accepted.
    """
    stack: list[tuple[Any, tuple[str, ...], int]] = [(data, (), 1)]
    while stack:
        value, loc, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise bad_request(f"Invalid request: {_field(loc)}: string contains a lone surrogate, which is not valid Unicode")
            continue
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        if depth > MAX_DEPTH:
            raise bad_request(f"{NOT_JSON}: nested more than {MAX_DEPTH} levels deep")
        for key, item in reversed(items):  # reversed: the first bad field in the body is reported
            if isinstance(key, str) and not _is_unicode(key):
                raise bad_request(f"Invalid request: {_field(loc)}: a key contains a lone surrogate, which is not valid Unicode")
            stack.append((item, (*loc, str(key)), depth + 1))


async def read_json(request: Request, *, allow_empty: bool = False) -> Any:
    """The parsed body, checked by :func:`check_json`; ``{}`` for a blank body when ``allow_empty``."""
    raw = await request.body()
    if allow_empty and not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_non_json_constant)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise bad_request(NOT_JSON) from None
    check_json(data)
    return data
