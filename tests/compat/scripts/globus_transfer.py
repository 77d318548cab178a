#!/usr/bin/env python3
"""A user's script for the original Orbit (0.2.x): copy the tutorial data with Globus.

Written against the original's client API and nothing else: BridgeClient() found
through the environment, list_endpoints()[0], the plugin's dict results read with
the original's keys (ls()['entries']), a Globus token from GLOBUS_ACCESS_TOKEN.
"""

import os
import sys
import time

from radical.orbit import BridgeClient

SOURCE = os.environ.get("GLOBUS_SRC", "6c54cade-bde5-45c1-bdea-f4bd71dba2cc")  # Tutorial Collection 1
TARGET = os.environ.get("GLOBUS_DST", "31ce9ba0-176d-45a5-add3-f37d233ba47d")  # Tutorial Collection 2
SOURCE_PATH = os.environ.get("GLOBUS_SRC_PATH", "/home/share/godata/")
TARGET_PATH = os.environ.get("GLOBUS_DST_PATH", "/~/orbit-globus-demo/")


def main():
    bc = BridgeClient()
    names = bc.list_endpoints()
    if not names:
        print("no endpoint is connected")
        bc.close()
        return 1

    ec = bc.get_endpoint_client(names[0])
    if "globus" not in ec.list_plugins():
        print(f"endpoint {names[0]} has no globus plugin: {list(ec.list_plugins())}")
        bc.close()
        return 1
    globus = ec.get_plugin("globus")
    globus.register_session(access_token=os.environ["GLOBUS_ACCESS_TOKEN"])

    try:
        sub = globus.submit_transfer(
            source=SOURCE, destination=TARGET,
            items=[{"source": SOURCE_PATH, "destination": TARGET_PATH, "recursive": True}],
            label="orbit compat example")
        task_id = sub["task_id"]
        print(f"submitted {task_id} ({sub['status']})")

        give_up = time.time() + 120
        while time.time() < give_up:
            if globus.task_wait(task_id, timeout=10, polling_interval=1)["completed"]:
                break
            print("  still transferring")

        task = globus.get_task(task_id)
        print(f"final status: {task.get('status')} ({task.get('files_transferred')} files)")

        listing = globus.ls(TARGET, TARGET_PATH)
        names = sorted(entry.get("name") for entry in listing.get("entries", []))
        print(f"{listing['collection']}:{listing['path']} now has {len(names)} entries: {names}")

        tasks = globus.list_tasks(limit=10)["tasks"]
        print(f"recent tasks: {len(tasks)}, newest {tasks[0]['task_id']}")
        found = globus.endpoint_search("Tutorial")["endpoints"]
        print(f"search: {sorted(e['display_name'] for e in found)}")
    finally:
        globus.close()
        bc.close()
    return 0 if task.get("status") == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
