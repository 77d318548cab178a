"""Endpoint and Collection Search (Globus Transfer API reference): ``GET endpoint_search``.

Full-text search matches word prefixes of a collection's names and descriptive
fields (or its exact id); ``filter_scope`` narrows by ownership, the other filters by
owner, host endpoint, entity type and functional state. Paging is Globus's: ``limit``
at most 100, ``offset`` at most 999, ``has_next_page``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..collections import Collection
from ..context import emulator_of
from ..errors import bad_request, json_response
from .common import PREFIX, authenticate, int_param

__all__ = ["routes"]

SCOPES = (
    "all",
    "my-endpoints",
    "my-gcp-endpoints",
    "recently-used",
    "in-use",
    "shared-by-me",
    "shared-with-me",
    "administered-by-me",
    "hide-no-permissions",
)


def _in_scope(scope: str, doc: dict[str, Any], identity_id: str) -> bool:
    mine: bool = doc["owner_id"] == identity_id
    if scope in ("my-endpoints", "administered-by-me"):
        return mine
    if scope == "my-gcp-endpoints":
        return mine and bool(doc["is_globus_connect"])
    if scope in ("shared-by-me", "shared-with-me"):
        return bool(doc["entity_type"].endswith(("guest_collection", "share")))
    return True


def _matches_text(coll: Collection, words: list[str]) -> bool:
    """Every word is a prefix of some word of the collection, or one word is its id."""
    if not words:
        return True
    haystack = coll.search_text()
    return coll.id in words or all(any(h.startswith(w) for h in haystack) for w in words)


async def endpoint_search(request: Request) -> Response:
    token = authenticate(request)
    q = request.query_params
    scope = q.get("filter_scope") or "all"
    if scope not in SCOPES:
        raise bad_request(f"Invalid filter_scope '{scope}'; valid scopes: {', '.join(SCOPES)}")
    text = (q.get("filter_fulltext") or "").strip()
    if scope == "all" and not text:
        raise bad_request("filter_fulltext is required when filter_scope is 'all'")
    limit = int_param(request, "limit", 25, maximum=100, minimum=1)
    offset = int_param(request, "offset", 0, maximum=999)
    words = [w.lower() for w in text.replace(",", " ").split() if w]
    raw_nf = q.get("filter_non_functional")
    non_functional = None if raw_nf in (None, "") else raw_nf.lower() in ("1", "true", "t", "yes")
    fields = {"owner_id": q.get("filter_owner_id"), "host_endpoint_id": q.get("filter_host_endpoint"), "entity_type": q.get("filter_entity_type")}
    out = []
    for coll in emulator_of(request).collections:
        doc = coll.endpoint_document()
        if not _in_scope(scope, doc, token.identity_id):
            continue
        if any(wanted and doc[key] != wanted for key, wanted in fields.items()):
            continue
        if non_functional is not None and non_functional != doc["non_functional"]:
            continue
        if not _matches_text(coll, words):
            continue
        out.append(doc)
    page = out[offset : offset + limit]
    return json_response({"DATA_TYPE": "endpoint_list", "offset": offset, "limit": limit, "has_next_page": offset + limit < len(out), "DATA": page})


routes = [
    Route(f"{PREFIX}/endpoint_search", endpoint_search, methods=["GET"]),
]
