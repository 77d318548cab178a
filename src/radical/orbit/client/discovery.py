"""Find a plugin's client class through the ``radical.orbit.clients`` entry-point group.

Only the client module named by the entry point is imported (for ``sysinfo``:
``radical.orbit.plugins.sysinfo.client``), never the endpoint-side plugin, so the
SDK works on a laptop without FastAPI or a plugin's own dependencies being imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from .plugin import PluginClient

__all__ = ["CLIENT_GROUP", "find_client_class"]

log = logging.getLogger(__name__)

CLIENT_GROUP = "radical.orbit.clients"


def find_client_class(plugin: str, *, eps: Iterable[EntryPoint] | None = None) -> type[PluginClient] | None:
    """The PluginClient subclass registered for ``plugin``, or None.

    None means "use the generic PluginClient": nothing is registered under that name,
    or the registered class cannot be imported (logged as a warning with the reason).

    :param eps: entry points to search instead of the installed ones (tests)
    """
    found = entry_points(group=CLIENT_GROUP, name=plugin) if eps is None else [e for e in eps if e.name == plugin]
    for ep in found:
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken client package falls back to the generic client
            log.warning("client class for plugin %r (%s) cannot be imported: %s: %s", plugin, ep.value, type(exc).__name__, exc)
            return None
        if isinstance(obj, type) and issubclass(obj, PluginClient):
            return obj
        log.warning("entry point %r (%s) is not a PluginClient subclass; using the generic client", plugin, ep.value)
        return None
    return None
