"""Endpoint and Collection Search (Globus Transfer API reference): ``GET endpoint_search``.

Full-text search matches word prefixes of a collection's names and descriptive
fields (or its exact id); ``filter_scope`` narrows by ownership, sharing (guest
collections) or use (the caller's unfinished tasks: ``in-use``; all its tasks, newest
first: ``recently-used``), the other filters by owner, host endpoint, entity type and
functional state. Paging is Globus's: ``limit``
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
from ..task import FINISHED, Task
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


#: scopes that already name the owner (the caller): ``filter_owner_id`` conflicts with them
OWNER_SCOPES = ("my-endpoints", "my-gcp-endpoints", "shared-by-me")
GUEST_TYPES = ("guest_collection", "share")


def _used(tasks: list[Task], *, unfinished: bool) -> list[str]:
    """Collections the caller's tasks name, the most recently asked for first."""
    seen: dict[str, None] = {}
    for task in sorted(tasks, key=lambda t: t.request_time, reverse=True):
        if unfinished and task.status in FINISHED:
            continue
        for cid in (task.source_endpoint_id, task.destination_endpoint_id):
            if cid is not None:
                seen.setdefault(cid, None)
    return list(seen)


def _in_scope(scope: str, doc: dict[str, Any], identity_id: str) -> bool:
    """Scopes that depend on the collection alone (the task-based two are ``_used``)."""
    mine: bool = doc["owner_id"] == identity_id
    if scope in ("my-endpoints", "administered-by-me"):
        return mine
    if scope == "my-gcp-endpoints":
        return mine and bool(doc["is_globus_connect"])
    guest = bool(doc["entity_type"].endswith(GUEST_TYPES))
    if scope == "shared-by-me":
        return guest and mine
    if scope == "shared-with-me":
        return guest and not mine
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
    if fields["owner_id"] and scope in OWNER_SCOPES:
        raise bad_request(f"filter_owner_id conflicts with filter_scope '{scope}' (that scope is your own collections); "
                          "leave one of them out")
    if fields["entity_type"] and non_functional is not None:
        raise bad_request("filter_non_functional and filter_entity_type are mutually exclusive; leave one of them out")
    emulator = emulator_of(request)
    collections = list(emulator.collections)
    if scope in ("in-use", "recently-used"):
        # in use: named by one of the caller's unfinished tasks; recently used: by any of them
        known = {c.id: c for c in collections}
        used = _used(emulator.engine.list_for(token.identity_id), unfinished=scope == "in-use")
        collections = [known[cid] for cid in used if cid in known]
    out = []
    for coll in collections:
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
