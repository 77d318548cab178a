"""The ``radical-orbit globus`` group: connection options shared by every subcommand."""

from __future__ import annotations

import logging
from typing import Any

import click

from ...config import ENV_BRIDGE_CERT, ENV_BRIDGE_TOKEN, ENV_BRIDGE_URL
from .app import JMESPATH_HELP, OrbitGroup, Runtime, jmespath_param
from .endpoint import endpoint
from .fs import ls, mkdir, rename, stat
from .render import FORMATS
from .task import task
from .transfer import delete, rm, transfer
from .whoami import whoami


@click.group(
    "globus",
    cls=OrbitGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Credentials (from the environment, never printed):
  GLOBUS_ACCESS_TOKEN                      an access token (not renewed)
  GLOBUS_REFRESH_TOKEN + GLOBUS_CLIENT_ID  renewed transparently
  GLOBUS_CLIENT_ID + GLOBUS_CLIENT_SECRET  a confidential client (pipelines, cron)
\b
Exit status: 0 ok; 1 error or task FAILED; 2 usage error or no credentials;
3 wait timeout; 4 consent required; 130 interrupted.""",
)
@click.option("--url", default=None, metavar="URL[,URL...]", help=f"Bridge URL, or several comma-separated (replicas: the first that answers) [default: ${ENV_BRIDGE_URL}, ~/.radical/orbit/bridge.url, http://127.0.0.1:8000].")
@click.option("--token", default=None, metavar="TOKEN", help=f"Bridge token [default: ${ENV_BRIDGE_TOKEN}, ~/.radical/orbit/bridge.token]. Prefer those: command lines are visible to other local users.")
@click.option("--cert", default=None, metavar="FILE", help=f"CA certificate to verify a TLS bridge [default: ${ENV_BRIDGE_CERT}, ~/.radical/orbit/bridge.cert].")
@click.option("--endpoint", "endpoint_name", default=None, metavar="NAME", help="Orbit endpoint to go through [default: the first live one with the globus plugin enabled].")
@click.option("-F", "--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default="text", show_default=True, help="Output format (unix: tab-separated, as the Globus CLI's).")
@click.option("--jmespath", "--jq", "jmespath_expr", default=None, metavar="EXPR", callback=jmespath_param, help=JMESPATH_HELP)
@click.option("--local-collection", default=None, metavar="UUID", help="The collection 'local' means for this session (overrides the endpoint's).")
@click.pass_context
def globus(
    ctx: click.Context,
    url: str | None,
    token: str | None,
    cert: str | None,
    endpoint_name: str | None,
    fmt: str,
    jmespath_expr: Any,
    local_collection: str | None,
) -> None:
    """Globus staging through Orbit: ls, transfer, delete, task wait, endpoint search ...

    Every command goes client -> bridge -> endpoint's globus plugin -> Globus.
    A collection is a UUID or 'local' (the endpoint's local collection); paths
    follow a ':' as in the Globus CLI (local:/~/data/).
    """
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # a terminal command: one line per HTTP request (httpx logs them at INFO) is noise
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    rt = Runtime(url=url, token=token, cert=cert, endpoint=endpoint_name, fmt=fmt.lower(), local_collection=local_collection, jmespath=jmespath_expr)
    ctx.obj = rt
    ctx.call_on_close(rt.close)


for _cmd in (transfer, delete, rm, ls, mkdir, rename, stat, task, endpoint, whoami):
    globus.add_command(_cmd)
