"""The plugins one endpoint hosts: found, started, routed to, stopped.

Contract:

* :meth:`PluginHost.start` never fails because of a plugin. One the registry found
  disabled (it says why) or one that fails to start (its error says why) is reported
  as disabled with that reason; requests to it are answered 503 by the dispatcher
  and the endpoint serves the others. A broken plugin must not take the endpoint
  (and every other plugin on it) off the bridge.
* After ``start()``, :attr:`PluginHost.infos` is what the endpoint registers with the
  bridge and :attr:`PluginHost.dispatcher` answers relayed requests.
* :meth:`PluginHost.stop` stops each started plugin once (closing its sessions, which
  may still notify), carrying on past a plugin that fails to stop.
"""

from __future__ import annotations

import contextlib
import gc
import logging

from ..errors import OrbitError
from ..models.messages import PluginInfo
from ..plugins.base import NotifyFn, Plugin, PluginContext
from ..plugins.registry import PluginEntry, discover_plugins
from .dispatch import Dispatcher, HostedPlugin
from .settings import EndpointSettings

__all__ = ["Notify", "PluginHost"]

log = logging.getLogger(__name__)

#: ``PluginContext.notify``: ``(plugin, sid, topic, payload, owner)``, callable from any thread
Notify = NotifyFn


class PluginHost:
    """Start the endpoint's plugins and route relayed requests to them.

    :param settings: the endpoint's settings (its name, plugin selection and options)
    :param notify: what each plugin's context uses to send notifications
    :param entries: discovered plugins (default: :func:`discover_plugins` with
        ``settings.plugins``)
    """

    def __init__(self, settings: EndpointSettings, notify: Notify, entries: list[PluginEntry] | None = None) -> None:
        self.settings = settings
        self._notify = notify
        self._entries = entries
        #: started plugins by name
        self.plugins: dict[str, Plugin] = {}
        #: every plugin as registered with the bridge, enabled or not
        self.infos: list[PluginInfo] = []
        self.dispatcher = Dispatcher({})
        self._stopped = False

    def __repr__(self) -> str:
        return f"PluginHost(endpoint={self.settings.name!r}, started={sorted(self.plugins)})"

    async def start(self) -> None:
        """Start every plugin that can run here; report the others as disabled."""
        entries = self._entries if self._entries is not None else discover_plugins(self.settings.plugins)
        unknown = sorted(set(self.settings.plugin_options) - {entry.name for entry in entries})
        if unknown:
            log.warning("options given for plugins that are not loaded: %s", ", ".join(unknown))
        hosted: dict[str, HostedPlugin] = {}
        infos: list[PluginInfo] = []
        for entry in entries:
            info = entry.info
            if entry.cls is not None and info.enabled:
                info = await self._start_one(entry, hosted)
            if not info.enabled:
                hosted[entry.name] = HostedPlugin(entry.name, None, info.reason)
                log.warning("plugin %s is disabled: %s", entry.name, info.reason)
            infos.append(info)
        self.infos = infos
        self.dispatcher = Dispatcher(hosted)
        # plugins, their apps and imports live as long as the process: keep the cyclic
        # GC from re-scanning them on every full collection (p99 latency spikes)
        gc.collect()
        gc.freeze()

    async def _start_one(self, entry: PluginEntry, hosted: dict[str, HostedPlugin]) -> PluginInfo:
        """Start one plugin; its info comes back disabled (with the reason) if it fails."""
        assert entry.cls is not None
        plugin: Plugin | None = None
        ctx = PluginContext(
            endpoint=self.settings.name,
            notify=self._notify,
            settings=dict(self.settings.plugin_options.get(entry.name, {})),
            max_sessions_per_identity=self.settings.max_sessions_per_identity,
            state_dir=self.settings.state_path,
        )
        try:
            plugin = entry.cls(ctx)
            await plugin.start()
            app = plugin.app
        except Exception as exc:  # one broken plugin must not take the endpoint down
            if isinstance(exc, OrbitError):  # e.g. a bad option: the message says it all
                log.error("plugin %s cannot start (reported as disabled): %s", entry.name, exc.message)
            else:
                log.exception("plugin %s failed to start; reporting it as disabled", entry.name)
            if plugin is not None:
                with contextlib.suppress(Exception):
                    await plugin.stop()  # release whatever start() got going
            return entry.info.model_copy(update={"enabled": False, "reason": f"failed to start: {type(exc).__name__}: {exc}"})
        self.plugins[entry.name] = plugin
        hosted[entry.name] = HostedPlugin(entry.name, app)
        log.info("plugin %s %s started", entry.name, entry.info.version)
        return entry.info

    async def stop(self) -> None:
        """Stop every started plugin, once; later calls do nothing."""
        if self._stopped:
            return
        self._stopped = True
        for name, plugin in self.plugins.items():
            try:
                await plugin.stop()
            except Exception:  # keep stopping the others
                log.exception("plugin %s failed to stop cleanly", name)
            else:
                log.info("plugin %s stopped", name)
