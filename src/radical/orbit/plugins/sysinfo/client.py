"""``SysinfoClient``: the application side of the ``sysinfo`` plugin.

Imports nothing server-side. No credentials are needed, so the session is opened
lazily on the first call::

    sysinfo = BridgeClient().get_endpoint_client("ep").get_plugin("sysinfo")
    print(sysinfo.info()["hostname"])
    sysinfo.register_notification_callback(lambda topic, payload: print(payload), topic="load")
    sysinfo.watch(interval=1.0, count=3)

:meth:`SysinfoClient.echo`, :meth:`~SysinfoClient.echo_bytes` and
:meth:`~SysinfoClient.sleep` call the plugin's test routes, which an endpoint serves
only when started with ``-o sysinfo.test_routes=true`` (a NotFoundError otherwise).

After an endpoint restart the next call re-opens the session by itself (see
:class:`~radical.orbit.client.plugin.PluginClient`); a ``watch`` does not survive it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...client.plugin import PluginClient

__all__ = ["SysinfoClient"]


class SysinfoClient(PluginClient):
    """Mirrors the routes of ``PluginSysinfo`` (see its module docstring)."""

    plugin_name = "sysinfo"
    requires_credentials = False
    #: asked when the endpoint connects again: a lost session is re-opened at once
    probe_route = "info"

    def ping(self) -> bool:
        """``GET /ping`` (no session): True when the endpoint answered."""
        reply = self._ec.request("GET", self.name, "ping").json()
        return bool(reply.get("pong"))

    def info(self) -> dict[str, Any]:
        """Host name, CPU count, memory, Python version, load average, platform."""
        result: dict[str, Any] = self._call("info")
        return result

    def homedir(self) -> str:
        """The endpoint process's home directory (no session needed; the original Orbit's call)."""
        return str(self._ec.request("GET", self.name, "homedir").json()["homedir"])

    def host_role(self) -> dict[str, Any]:
        """``{role, scheduler, job_id, psij_executor, python_version}`` of the endpoint host:
        ``role`` is ``login``, ``compute`` (in a batch job) or ``standalone`` (no session needed)."""
        result: dict[str, Any] = self._ec.request("GET", self.name, "host_role").json()
        return result

    def get_metrics(self) -> dict[str, Any]:
        """``{system, cpu, memory, disks, network, gpus}`` of the endpoint host (the original Orbit's call)."""
        result: dict[str, Any] = self._call("metrics")
        return result

    def watch(self, interval: float = 1.0, count: int | None = None) -> str:
        """Emit ``load`` notifications for this session; returns the watch id.

        :param interval: seconds between notifications
        :param count: how many (None: until :meth:`unwatch` or the session closes)
        """
        return str(self._call("watch", interval=interval, count=count)["watch"])

    def unwatch(self, watch: str) -> None:
        """Stop a watch started by :meth:`watch`."""
        self._call("unwatch", watch=watch)

    def sleep(self, seconds: float) -> float:
        """Have the endpoint wait ``seconds`` before answering (slow-request tests; a test route)."""
        return float(self._call("sleep", seconds=seconds, timeout=seconds + 30.0)["slept"])

    def echo(
        self,
        method: str = "POST",
        path: str = "",
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        """Send any request to ``/echo[/path]``; returns what the plugin saw (a test route).

        The reply's ``body`` is base64; ``headers`` are lower-cased.
        """
        route = "echo" + (f"/{path.lstrip('/')}" if path else "")
        resp = self._ec.request(method, self.name, route, params=params, headers=headers, content=content, json=json)
        result: dict[str, Any] = resp.json()
        return result

    def echo_bytes(self, n: int, *, seed: int = 0) -> bytes:
        """``GET /echo/bytes?n=N``: N pseudo-random bytes (binary relay tests; a test route)."""
        return self._ec.request("GET", self.name, "echo/bytes", params={"n": n, "seed": seed}).content
