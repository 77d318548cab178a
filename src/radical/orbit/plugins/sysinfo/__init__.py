"""``sysinfo``: a small built-in plugin that exercises every framework feature.

Endpoint side: :class:`radical.orbit.plugins.sysinfo.plugin.PluginSysinfo`;
client side: :class:`radical.orbit.plugins.sysinfo.client.SysinfoClient`. This
package imports neither, so loading the client never imports the server side.
"""

from __future__ import annotations
