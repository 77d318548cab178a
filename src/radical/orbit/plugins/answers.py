"""Plugin answers that text UTF-8 cannot carry still reach the client.

A handler may return a lone surrogate: a file name from a non-UTF-8 file system, as
Globus or ``os.fsdecode`` hand it over. FastAPI writes JSON as UTF-8, so such an
answer used to end as a 500 (``PydanticSerializationError`` from a route with a
response model, ``UnicodeEncodeError`` from one without). JSON's ``\\u`` escapes can
carry the text, and a client's ``json.loads`` gives the same ``str`` back, so the
plugin app writes those answers with them instead; every other answer is unchanged,
byte for byte.

Two pieces, both installed by :class:`~radical.orbit.plugins.fastpath.PluginApp`:

* :class:`SafeJSONResponse`, for routes without a response model;
* :class:`PluginRoute`, the app router's route class, which puts that class in place
  of FastAPI's default ``JSONResponse`` and gives each route's response field the
  same fallback (FastAPI's fast ``dump_json`` stays the first try).

A route added through an ``APIRouter`` of the plugin's own keeps that router's route
class and so FastAPI's behaviour; ``tests/unit/plugins/test_plugin_answers.py`` fails
loudly if FastAPI's field type changes shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import PydanticSerializationError

from ..text import ascii_json

__all__ = ["PluginRoute", "SafeJSONResponse", "with_escape_fallback"]

log = logging.getLogger(__name__)


class SafeJSONResponse(JSONResponse):
    """``JSONResponse``, byte for byte, unless the content holds a lone surrogate:
    then every non-ASCII character is written as a ``\\u`` escape."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return ascii_json(content)


_safe_classes: dict[type, type] = {}


def _safe_class(cls: type) -> type | None:
    """A subclass of FastAPI's field class whose ``serialize_json`` falls back to escapes."""
    if cls in _safe_classes:
        return _safe_classes[cls]
    if not (callable(getattr(cls, "serialize_json", None)) and callable(getattr(cls, "serialize", None))):
        return None

    dump_json: Callable[..., Any] = getattr(cls, "serialize_json")  # noqa: B009 - checked above

    def serialize_json(self: Any, value: Any, **kwargs: Any) -> bytes:
        try:
            return bytes(dump_json(self, value, **kwargs))
        except PydanticSerializationError:
            # the same value as plain JSON types (the Python dump cannot fail on text),
            # then written with escapes; any other serialisation error fails here again
            return ascii_json(self.serialize(value, mode="json", **kwargs))

    safe = type(f"Escaping{cls.__name__}", (cls,), {"serialize_json": serialize_json, "__module__": __name__})
    _safe_classes[cls] = safe
    return safe


def with_escape_fallback(field: Any) -> Any:
    """``field`` itself, its class switched to one that escapes what UTF-8 cannot carry.

    The object keeps its identity (FastAPI's handler and OpenAPI hold it already) and
    its state; only ``serialize_json`` gains the fallback.
    """
    if field is None or type(field) in _safe_classes.values():
        return field
    safe = _safe_class(type(field))
    if safe is None:
        log.warning("FastAPI's response field %s has no serialize_json; answers keep FastAPI's behaviour", type(field))
        return field
    field.__class__ = safe
    return field


class PluginRoute(APIRoute):
    """``APIRoute`` that writes lone surrogates as JSON escapes: through its response
    field, or :class:`SafeJSONResponse` where FastAPI's default ``JSONResponse`` was
    to be used (a class the plugin chose itself is kept)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        chosen = kwargs.get("response_class")
        if chosen is None or (isinstance(chosen, DefaultPlaceholder) and chosen.value is JSONResponse):
            kwargs["response_class"] = Default(SafeJSONResponse)
        super().__init__(*args, **kwargs)
        with_escape_fallback(self.response_field)
