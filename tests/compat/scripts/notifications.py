#!/usr/bin/env python3
"""A user's script for the original Orbit (0.2.x): follow a transfer through notifications.

Callbacks take (endpoint, plugin, topic, data), as the original called them, and are
registered its ways: BridgeClient.register_callback with keyword filters (None: any),
and PluginClient.register_notification_callback with a bound method. Errors are
caught as RuntimeError. Prints what each callback saw as JSON, last.
"""

import json
import os
import sys
import threading

from radical.orbit.client import BridgeClient

SOURCE = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
ITEMS = [{"source": "/home/share/godata/", "destination": "/~/compat-notes/", "recursive": True}]

seen = {"any": [], "filtered": [], "method": [], "errors": []}
finished = threading.Event()


def on_anything(endpoint, plugin, topic, data):
    seen["any"].append([endpoint, plugin, topic, data.get("status")])


def on_transfer(endpoint, plugin, topic, data):
    seen["filtered"].append([endpoint, plugin, topic, data.get("status")])


class Progress:
    def on_status(self, endpoint, plugin, topic, data):
        seen["method"].append([endpoint, plugin, topic, data.get("status")])
        if data.get("status") in ("SUCCEEDED", "FAILED"):
            finished.set()


def transfer(globus, label):
    finished.clear()
    sub = globus.submit_transfer(SOURCE, "local", ITEMS, label=label)
    globus.task_wait(sub["task_id"], timeout=60, polling_interval=1)
    return finished.wait(60)


def main():
    bc = BridgeClient()
    print("listener connected:", bc.wait_for_listener(timeout=30))
    endpoint = bc.list_endpoints()[0]
    bc.register_callback(callback=on_anything)
    bc.register_callback(endpoint_id=endpoint, plugin_name="globus", topic="transfer_status", callback=on_transfer)

    globus = bc.get_endpoint_client(endpoint).get_plugin("globus")
    progress = Progress()
    globus.register_notification_callback(progress.on_status, topic="transfer_status")
    globus.register_session(access_token=os.environ["GLOBUS_ACCESS_TOKEN"])
    print("first transfer notified:", transfer(globus, "compat 1"))

    try:
        globus.get_task("00000000-0000-4000-8000-000000000000")
    except RuntimeError as exc:
        seen["errors"].append(str(exc))

    bc.unregister_callback(endpoint_id=endpoint, plugin_name="globus", topic="transfer_status", callback=on_transfer)
    before = len(seen["filtered"])
    print("second transfer notified:", transfer(globus, "compat 2"))
    print("filtered callback silent after unregister:", len(seen["filtered"]) == before)

    globus.unregister_notification_callback(progress.on_status, topic="transfer_status")
    globus.close()
    bc.close()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
