#!/usr/bin/env python3
"""A user's script for the original Orbit (0.2.x): host facts, waits and errors.

BridgeClient(url, cert) with both positional, imports from radical.orbit.client,
list_plugins() as a dict, sysinfo's homedir/host_role/get_metrics, wait_for_endpoint
with a list of names and its TimeoutError, RuntimeError for a failed call.
"""

import os

from radical.orbit.client import BridgeClient, EndpointClient, PluginClient

url = os.environ["RADICAL_BRIDGE_URL"]
cert = os.path.expanduser("~/.radical/orbit/bridge_cert.pem")  # only read for https
bc = BridgeClient(url, cert)

name = bc.wait_for_endpoint(["not-there", "ep1"], timeout=60, poll=0.5)
ec = bc.get_endpoint_client(name)
plugins = ec.list_plugins()
print("endpoint:", name, isinstance(ec, EndpointClient), sorted(plugins))
print("sysinfo:", "sysinfo" in plugins, plugins["sysinfo"]["enabled"], plugins["sysinfo"]["namespace"])

si = ec.get_plugin("sysinfo")
print("client:", isinstance(si, PluginClient), type(si).__name__)
print("homedir:", si.homedir())
role = si.host_role()
print("role:", role["role"], role["scheduler"], role["job_id"])
metrics = si.get_metrics()
print("metrics:", sorted(metrics), metrics["cpu"]["cores_logical"], metrics["memory"]["total"] > 0, si.sid is not None)
si.unregister_session()
print("session after unregister:", si.sid)

try:
    bc.wait_for_endpoint(["never-comes"], timeout=1, poll=0.2)
except TimeoutError as exc:
    print("timeout:", type(exc).__name__)
try:
    ec.get_plugin("no-such-plugin")
except RuntimeError as exc:
    print("no plugin:", exc)

si.close()
bc.close()
