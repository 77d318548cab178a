#!/usr/bin/env python3
"""A user's script for the original Orbit (0.2.x): watch endpoints come and go.

register_topology_callback(cb) calls cb({name: {"plugins": {...}, ...}}) on every
connect and disconnect. Talks to whoever runs it on stdin/stdout: prints READY, waits
for an endpoint named on the command line to come and go, prints the maps it saw.
"""

import json
import sys
import threading

from radical.orbit import BridgeClient

name = sys.argv[1]
maps = []
came, went = threading.Event(), threading.Event()


def on_topology(endpoints):
    maps.append({ep: sorted(info.get("plugins", {})) for ep, info in endpoints.items()})
    if name in endpoints:
        came.set()
    elif came.is_set():
        went.set()


bc = BridgeClient()
bc.register_topology_callback(on_topology)
print("READY", flush=True)
print("came:", came.wait(60), "waited for:", bc.wait_for_endpoint([name], timeout=30, poll=0.5), flush=True)
print("went:", went.wait(60), flush=True)
bc.unregister_topology_callback(on_topology)
bc.close()
print(json.dumps(maps))
