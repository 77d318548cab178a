"""Plugin answers that text UTF-8 cannot carry still reach the client.

A handler may return a lone surrogate: a file name from a non-UTF-8 file system, as
Globus or ``os.fsdecode`` hand it over. FastAPI writes JSON as UTF-8, so such an
answer ends as a 500 in a plain FastAPI app. JSON's ``\\u`` escapes can carry the
text, and a client's ``json.loads`` gives the same ``str`` back.

Every plugin app is ``FastAPI(default_response_class=SafeJSONResponse)`` (FastAPI's
public response-class setting), so every route that does not choose a class of its
own answers through :class:`SafeJSONResponse`: with a response model (FastAPI then
serialises the model to JSON-compatible data and hands it to the class) or without.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from ..text import ascii_json

__all__ = ["SafeJSONResponse"]


class SafeJSONResponse(JSONResponse):
    """``JSONResponse``, byte for byte, unless the content holds a lone surrogate:
    then every non-ASCII character is written as a ``\\u`` escape."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return ascii_json(content)
