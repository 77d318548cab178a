"""Globus Transfer API v0.10 routes (``/v0.10/...``), as the SDK and CLI call them.

One module per section of Globus's Transfer API reference, so a difference from
Globus is looked up where Globus documents the call:

- :mod:`.task_submission` — Task Submission: ``submission_id``, ``transfer``, ``delete``
- :mod:`.task_management` — Task Management: ``task_list``, ``task/{id}`` (GET, PUT),
  ``cancel``, ``event_list``, ``successful_transfers``, ``skipped_errors``, ``pause_info``
- :mod:`.file_operations` — File Operations: ``ls``, ``mkdir``, ``rename``, ``stat``
- :mod:`.endpoints_and_collections` — Endpoints and Collections: ``endpoint/{id}``
- :mod:`.endpoint_search` — Endpoint and Collection Search: ``endpoint_search``

:mod:`.common` holds what they share (authentication, collection access, bodies).
"""

from __future__ import annotations

from starlette.routing import Route

from . import (
    endpoint_search,
    endpoints_and_collections,
    file_operations,
    task_management,
    task_submission,
)

__all__ = ["routes"]

routes: list[Route] = [
    *task_submission.routes,
    *task_management.routes,
    *file_operations.routes,
    *endpoint_search.routes,
    *endpoints_and_collections.routes,
]
