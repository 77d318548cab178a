"""``EndpointClient``: one endpoint as seen through a :class:`BridgeClient`.

    ec = bc.get_endpoint_client("my-dtn")
    ec.list_plugins()                     # {"sysinfo": {"name", "version", "enabled", "reason", "namespace"}, ...}
    "globus" in ec.list_plugins()         # the original Orbit's shape: a dict by name
    info = ec.get_plugin("sysinfo").info()
    ec.request("GET", "sysinfo", "")      # raw relay, an httpx.Response

``get_plugin`` returns the plugin's own client class (found through the
``radical.orbit.clients`` entry-point group) or the generic
:class:`~radical.orbit.client.plugin.PluginClient`. It only checks that the endpoint
hosts the plugin and has it enabled; sessions that need credentials are opened later
with ``register_session(...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import PluginDisabledError, PluginNotFoundError, UsageError
from . import discovery
from .compat import CallbackStyle, plugins_by_name
from .plugin import PluginClient

if TYPE_CHECKING:
    from .bridge import BridgeClient

__all__ = ["EndpointClient"]

log = logging.getLogger(__name__)

class EndpointClient:
    """Requests to, and plugins of, one endpoint.

    :param bridge: the :class:`BridgeClient` to go through
    :param name: the endpoint's name
    :param info: its last known info (from ``GET /endpoints/{name}``), if at hand
    """

    def __init__(self, bridge: BridgeClient, name: str, *, info: Mapping[str, Any] | None = None) -> None:
        self._bridge = bridge
        self.name = name
        self.info: dict[str, Any] = dict(info or {})

    def __repr__(self) -> str:
        return f"EndpointClient({self.name!r}, bridge={self._bridge.url!r})"

    @property
    def bridge(self) -> BridgeClient:
        return self._bridge

    def refresh(self) -> dict[str, Any]:
        """Fetch this endpoint's info again (plugins, liveness)."""
        self.info = self._bridge.endpoint_info(self.name)
        return self.info

    def list_plugins(self) -> dict[str, dict[str, Any]]:
        """Every plugin the endpoint registered, disabled ones included, by name.

        ``{name: {"name", "version", "enabled", "reason", "namespace", ...}}``: the
        original Orbit's shape, so ``"globus" in ec.list_plugins()`` works; iterate
        ``.values()`` for the info dicts (``reason`` says why one is disabled).
        """
        return plugins_by_name(self.name, self.refresh().get("plugins", []))

    def get_plugin(self, name: str, **session_kwargs: Any) -> PluginClient:
        """The client for plugin ``name``; opens a session now if ``session_kwargs`` are given.

        :raises PluginNotFoundError: the endpoint does not host it (lists the ones it does)
        :raises PluginDisabledError: the endpoint has it but cannot run it (says why)
        """
        if not isinstance(name, str) or not name:
            raise UsageError(f"the plugin name must be a non-empty string such as 'globus', got {name!r}")
        # the info fetched by get_endpoint_client is seconds old: use it, refetch only on a miss
        fresh = not self.info
        plugins = list((self.info if self.info else self.refresh()).get("plugins", []))
        info = next((p for p in plugins if p.get("name") == name), None)
        if info is None and not fresh:
            plugins = list(self.refresh().get("plugins", []))
            info = next((p for p in plugins if p.get("name") == name), None)
        if info is None:
            have = ", ".join(sorted(str(p.get("name")) for p in plugins)) or "none"
            raise PluginNotFoundError(
                f"endpoint '{self.name}' has no plugin '{name}' (it has: {have})",
                endpoint=self.name,
                plugin=name,
                available=sorted(str(p.get("name")) for p in plugins),
            )
        if not info.get("enabled", True):
            reason = info.get("reason") or "no reason given"
            raise PluginDisabledError(
                f"plugin '{name}' on endpoint '{self.name}' is disabled: {reason}",
                endpoint=self.name,
                plugin=name,
                reason=reason,
            )
        cls = discovery.find_client_class(name) or PluginClient
        log.debug("endpoint %s: plugin %s uses %s", self.name, name, cls.__name__)
        return cls(self, name, **session_kwargs)

    def request(
        self,
        method: str,
        plugin: str,
        route: str = "",
        *,
        json: Any = None,
        params: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Relay ``METHOD /{plugin}/{route}`` to this endpoint; returns the 2xx response.

        :param timeout: seconds the bridge waits for the endpoint (``X-Orbit-Timeout``;
            default: the BridgeClient's ``timeout``); past it the bridge answers 504
        :raises OrbitError: the server's error class for a non-2xx answer, its message
            prefixed with ``endpoint/plugin/route``;
            :class:`~radical.orbit.errors.BridgeUnavailableError` when the bridge
            cannot be reached
        """
        return self._bridge.relay(
            method, self.name, plugin, route,
            json=json, params=params, content=content, headers=headers, timeout=timeout,
        )

    def call(self, plugin: str, route: str, body: Any, *, timeout: float | None = None) -> Any:
        """POST ``body`` as JSON to ``/{plugin}/{route}``; returns the decoded JSON answer.

        The same request and exceptions as ``request("POST", ..., json=body).json()``
        (:meth:`BridgeClient.call`).
        """
        return self._bridge.call(self.name, plugin, route, body, timeout=timeout)

    def register_callback(
        self,
        plugin: str,
        topic: str,
        callback: Callable[..., object],
        *,
        session: str | None = None,
        style: CallbackStyle | None = None,
    ) -> str:
        """:meth:`BridgeClient.register_callback` for this endpoint's events."""
        return self._bridge.register_callback(self.name, plugin, topic, callback, session=session, style=style)
