"""Endpoints and Collections (Globus Transfer API reference): ``GET endpoint/{id}``.

Only the read: the emulator's collections come from its configuration, so the
reference's create, update and delete calls are not served.
The document is the collection's own :meth:`~..collections.Collection.endpoint_document`,
the same one endpoint search lists.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import emulator_of
from ..errors import endpoint_not_found, json_response
from .common import PREFIX, authenticate

__all__ = ["routes"]


async def get_endpoint(request: Request) -> Response:
    """Any collection by id; unlike the other calls it needs no data_access consent."""
    authenticate(request)
    endpoint_id = request.path_params["endpoint_id"]
    coll = emulator_of(request).collections.get(endpoint_id)
    if coll is None:
        raise endpoint_not_found(endpoint_id)
    return json_response(coll.endpoint_document())


routes = [
    Route(f"{PREFIX}/endpoint/{{endpoint_id}}", get_endpoint, methods=["GET"]),
]
