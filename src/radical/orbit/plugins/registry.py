"""Find endpoint plugins through the ``radical.orbit.plugins`` entry-point group.

Only the selected plugins are imported. A plugin that fails to import, is not a
:class:`~radical.orbit.plugins.base.Plugin`, or whose ``check_enabled()`` gives a
reason (or raises) is still returned -- as ``PluginInfo(enabled=False, reason=...)``
-- so the endpoint reports it to the bridge instead of crashing::

    for entry in discover_plugins(["sysinfo", "globus"]):
        print(entry.name, entry.info.enabled, entry.info.reason)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from ..errors import UsageError
from ..models.messages import PluginInfo
from .base import Plugin

__all__ = ["PLUGIN_GROUP", "PluginEntry", "available_plugins", "discover_plugins", "load_plugin"]

log = logging.getLogger(__name__)

PLUGIN_GROUP = "radical.orbit.plugins"

#: extras that provide a plugin's optional dependencies (for a helpful reason)
_EXTRAS = {"globus": "radical.orbit[globus]"}


@dataclass
class PluginEntry:
    """One discovered plugin: its class when usable, and what to tell the bridge."""

    name: str
    cls: type[Plugin] | None
    info: PluginInfo

    @property
    def enabled(self) -> bool:
        return self.cls is not None and self.info.enabled


def _group(eps: Iterable[EntryPoint] | None) -> dict[str, EntryPoint]:
    found = entry_points(group=PLUGIN_GROUP) if eps is None else eps
    out: dict[str, EntryPoint] = {}
    for ep in found:
        out.setdefault(ep.name, ep)  # first wins, as importlib.metadata orders them
    return out


def available_plugins(eps: Iterable[EntryPoint] | None = None) -> list[str]:
    """Names of every installed plugin (nothing is imported)."""
    return sorted(_group(eps))


def _disabled(name: str, reason: str, cls: type[Plugin] | None = None) -> PluginEntry:
    version = getattr(cls, "version", "") if cls is not None else ""
    description = getattr(cls, "description", "") if cls is not None else ""
    info = PluginInfo(
        name=name,
        version=version if isinstance(version, str) else "",
        description=description if isinstance(description, str) else "",
        enabled=False,
        reason=reason,
    )
    return PluginEntry(name, None, info)


def load_plugin(ep: EntryPoint) -> PluginEntry:
    """Import one entry point and decide whether it can run here (never raises)."""
    name = ep.name
    try:
        obj = ep.load()
    except ImportError as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing and (ep.module == missing or ep.module.startswith(missing + ".")):
            return _disabled(name, f"plugin module {ep.module} is not installed")
        hint = f"; install {_EXTRAS[name]}" if name in _EXTRAS else ""
        return _disabled(name, f"cannot import {ep.value}: {exc}{hint}")
    except Exception as exc:  # a broken third-party module must not crash the endpoint
        log.debug("plugin %s failed to import", name, exc_info=True)
        return _disabled(name, f"importing {ep.value} failed: {type(exc).__name__}: {exc}")
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        return _disabled(name, f"{ep.value} is not a radical.orbit Plugin class")
    cls_name = getattr(obj, "name", None)
    if cls_name != name:
        return _disabled(name, f"{ep.value} is named {cls_name!r}, but its entry point is {name!r}", obj)
    try:
        reason = obj.check_enabled()
    except Exception as exc:  # a failing check means "cannot run here", with why
        log.debug("plugin %s: check_enabled() raised", name, exc_info=True)
        reason = f"check_enabled() failed: {type(exc).__name__}: {exc}"
    if reason:
        return _disabled(name, str(reason), obj)
    info = PluginInfo(name=name, version=obj.version, description=obj.description, enabled=True)
    return PluginEntry(name, obj, info)


def discover_plugins(
    selection: Sequence[str] | str | None = None,
    *,
    eps: Iterable[EntryPoint] | None = None,
) -> list[PluginEntry]:
    """Load the selected plugins (default: all installed), in selection order.

    :param selection: plugin names, or a comma-separated string (``"sysinfo,globus"``)
    :param eps: entry points to use instead of the installed ones (tests)
    :raises UsageError: when a selected name is not installed
    """
    group = _group(eps)
    if isinstance(selection, str):
        selection = [s.strip() for s in selection.split(",") if s.strip()]
    if selection:
        names = list(dict.fromkeys(selection))
        unknown = [n for n in names if n not in group]
        if unknown:
            raise UsageError(
                f"no plugin named {', '.join(repr(n) for n in unknown)} is installed "
                f"(available: {', '.join(sorted(group)) or 'none'})"
            )
    else:
        names = sorted(group)
    return [load_plugin(group[name]) for name in names]
