#!/usr/bin/env python3
"""Stage files with Globus through RADICAL Orbit: the seed's snippet, runnable end to end.

By default it copies the public Globus Tutorial Collection 1's ``/home/share/godata/``
to the endpoint's *local* collection (``/~/orbit-example/``), waits for the task and
lists the result. It runs unchanged

* against a running demo stack (``radical-orbit demo``, or emulator + bridge +
  endpoint): the bridge URL/token are found like every Orbit client finds them, and
  with no Globus credential in the environment a dev token is fetched from the
  emulator (``RADICAL_ORBIT_EMULATOR_URL``, default ``http://127.0.0.1:8700``);
* against real Globus, with an endpoint that talks to Globus and a real credential:
  ``GLOBUS_ACCESS_TOKEN``, or ``GLOBUS_REFRESH_TOKEN`` + ``GLOBUS_CLIENT_ID``, or
  ``GLOBUS_CLIENT_ID`` + ``GLOBUS_CLIENT_SECRET`` (a confidential client).

Usage::

    python examples/example_globus.py [--endpoint NAME] [--source UUID] [--source-path P]
                                      [--destination local|UUID] [--destination-path P]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import httpx

from radical.orbit import BridgeClient
from radical.orbit.errors import ConsentRequiredError, OrbitError

TUTORIAL_COLLECTION_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
DEFAULT_EMULATOR = "http://127.0.0.1:8700"


def credentials() -> dict[str, str]:
    """register_session() keyword arguments from the environment (or the emulator)."""
    env = os.environ
    if env.get("GLOBUS_ACCESS_TOKEN"):
        return {"access_token": env["GLOBUS_ACCESS_TOKEN"]}
    if env.get("GLOBUS_REFRESH_TOKEN") and env.get("GLOBUS_CLIENT_ID"):
        creds = {"refresh_token": env["GLOBUS_REFRESH_TOKEN"], "client_id": env["GLOBUS_CLIENT_ID"]}
        if env.get("GLOBUS_CLIENT_SECRET"):
            creds["client_secret"] = env["GLOBUS_CLIENT_SECRET"]
        return creds
    if env.get("GLOBUS_CLIENT_ID") and env.get("GLOBUS_CLIENT_SECRET"):
        return {"client_id": env["GLOBUS_CLIENT_ID"], "client_secret": env["GLOBUS_CLIENT_SECRET"]}
    emulator = env.get("RADICAL_ORBIT_EMULATOR_URL", DEFAULT_EMULATOR).rstrip("/")
    try:
        health = httpx.get(f"{emulator}/health", timeout=3).json()
        if health.get("service") == "globus-emulator":
            tok = httpx.post(f"{emulator}/_emulator/token", json={"refresh": True}, timeout=10).json()
            print(f"no Globus credential in the environment: using a dev token from the emulator at {emulator}")
            return {"refresh_token": tok["refresh_token"], "client_id": tok["client_id"]}
    except (httpx.HTTPError, ValueError):
        pass
    sys.exit(
        "no Globus credential: set GLOBUS_ACCESS_TOKEN, or GLOBUS_REFRESH_TOKEN + GLOBUS_CLIENT_ID, "
        "or GLOBUS_CLIENT_ID + GLOBUS_CLIENT_SECRET (or run the demo stack's emulator)"
    )


def pick_endpoint(bc: BridgeClient, wanted: str | None) -> Any:
    if wanted:
        return bc.get_endpoint_client(wanted)
    for info in bc.endpoints():
        for plugin in info.get("plugins", []):
            if plugin.get("name") == "globus" and plugin.get("enabled"):
                return bc.get_endpoint_client(info["name"])
    sys.exit(f"no connected endpoint has the globus plugin enabled (endpoints: {bc.list_endpoints()})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", help="endpoint name [default: the first with globus enabled]")
    ap.add_argument("--source", default=TUTORIAL_COLLECTION_1, help="source collection UUID")
    ap.add_argument("--source-path", default="/home/share/godata/")
    ap.add_argument("--destination", default="local", help="'local' or a collection UUID")
    ap.add_argument("--destination-path", default="/~/orbit-example/")
    ap.add_argument("--local-collection", help="override the endpoint's local collection")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the transfer")
    args = ap.parse_args()

    bc = BridgeClient()
    ec = pick_endpoint(bc, args.endpoint)
    globus = ec.get_plugin("globus")

    def on_event(topic: str, payload: dict[str, Any]) -> None:
        if topic == "transfer_status":
            print(f"  [{topic}] {payload['task_id'][:8]} {payload['status']} "
                  f"files={payload['files_transferred']} bytes={payload['bytes_transferred']} ({payload['nice_status']})")
        elif topic == "transfer_fault":
            print(f"  [{topic}] {payload['task_id'][:8]} {payload['code']}: {payload['description']}")

    globus.register_notification_callback(on_event)
    try:
        globus.register_session(local_collection=args.local_collection, **credentials())
        print(f"endpoint {ec.name}: session open; listing {args.source}:{args.source_path}")
        for entry in globus.ls(args.source, args.source_path)["DATA"]:
            print(f"  {entry['type']:4} {entry['size']:>10} {entry['name']}")
        sub = globus.submit_transfer(
            source=args.source,
            destination=args.destination,
            items=[{"source": args.source_path, "destination": args.destination_path, "recursive": True}],
            label="orbit example",
            sync_level="checksum",
        )
        print(f"submitted task {sub['task_id']} (submission {sub['submission_id']}): {sub['status']}")
        deadline = time.monotonic() + args.timeout
        while not globus.task_wait(sub["task_id"], timeout=60)["completed"]:
            if time.monotonic() > deadline:
                print(f"task {sub['task_id']} still running after {args.timeout:.0f} s; it continues in Globus")
                return 1
        status = globus.get_task(sub["task_id"])["status"]
        print(f"task {sub['task_id']}: {status}")
        if status == "SUCCEEDED":
            for entry in globus.ls(args.destination, args.destination_path)["DATA"]:
                print(f"  {args.destination}:{args.destination_path}{entry['name']}")
        return 0 if status == "SUCCEEDED" else 1
    except ConsentRequiredError as exc:
        print(f"consent needed: {exc.message}", file=sys.stderr)
        return 4
    except OrbitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        globus.close()
        bc.close()


if __name__ == "__main__":
    sys.exit(main())
