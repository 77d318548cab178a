"""What the demo tells a newcomer to do next: commands to try, and where to read on.

A first run should lead somewhere: the demo ends by pointing at ``--serve``, which
keeps the same stack running, and ``--serve`` prints what another shell needs and
the commands to try against it, then the documents that explain them. Plain lines,
never wrapped by the terminal's width, so they can be copied as they are.
"""

from __future__ import annotations

from pathlib import Path

from ..emulators.globus import TUTORIAL_1

__all__ = ["DOCS", "next_steps", "serve_help", "try_commands"]

#: where to read on, relative to the clone's root
DOCS = (
    ("README.md", "running the pieces yourself; the client API in five lines"),
    ("docs/cli.md", "every radical-orbit command"),
    ("docs/globus.md", "the globus plugin: methods, notifications, credentials"),
    ("docs/explorer.md", "the web page: two panes, live activity"),
    ("docs/emulator.md", "the Globus emulator on its own"),
)

#: the emulator's own token, read without jq (a fresh machine may not have it)
_ACCESS_TOKEN = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"


def try_commands() -> list[tuple[str, str]]:
    """``(command, what it shows)`` to run against a stack with the demo's endpoint."""
    godata = f"{TUTORIAL_1}:/home/share/godata/"
    return [
        ("radical-orbit endpoints", "the demo's endpoint and its plugins"),
        (f"radical-orbit globus ls {godata}", "a collection of the emulator"),
        (f"radical-orbit globus transfer {godata} local:/~/godata/ -r --wait", "a staging task with a live bar"),
        ("radical-orbit globus task list", "the tasks of this Globus identity"),
        ("python examples/example_globus.py", "the same from Python, with live notifications"),
        ("radical-orbit explorer", "a sign-in link to the web page"),
    ]


def _docs_lines() -> list[str]:
    width = max(len(path) for path, _ in DOCS)
    return [f"  {path:<{width}}  {what}" for path, what in DOCS]


def next_steps() -> str:
    """Printed when the demo has finished."""
    lines = [
        "What next:",
        "  radical-orbit demo --serve   the same stack, kept running until Ctrl-C: it prints what another",
        "                               shell needs, then commands to try (radical-orbit globus ls / transfer,",
        "                               python examples/example_globus.py, radical-orbit explorer)",
        "Read on:",
        *_docs_lines(),
    ]
    return "\n".join(lines)


def serve_help(bridge_url: str, emulator_url: str, local_collection: str, token_file: Path) -> str:
    """Printed by ``--serve`` once the stack is up: where the bridge is (never the token)."""
    lines = [
        "The stack is running. In another shell, in this clone (after `source .venv/bin/activate`):",
        "",
        f"  export RADICAL_ORBIT_BRIDGE_URL={bridge_url}",
        f"  # the bridge token is in {token_file} (found there automatically)",
        f"  export GLOBUS_SDK_SERVICE_URL_TRANSFER={emulator_url}/",
        f"  export GLOBUS_SDK_SERVICE_URL_AUTH={emulator_url}/",
        f"  export GLOBUS_ACCESS_TOKEN=$(radical-orbit emulator token --url {emulator_url} | {_ACCESS_TOKEN})",
        "",
        "Then try (comment lines included, the whole list can be pasted at once):",
        "",
        *(line for command, what in try_commands() for line in (f"  # {what}", f"  {command}")),
        "",
        f"Local collection (the endpoint's 'local'): {local_collection}",
        "Read on:",
        *_docs_lines(),
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
