"""``radical-orbit globus endpoint search|show``: find collections and show their details."""

from __future__ import annotations

import click

from .app import OrbitGroup, format_option, get_runtime
from .render import ENDPOINT_FIELDS, data_list, print_record, print_table

ENDPOINT_COLUMNS = [("ID", "id"), ("Owner", "owner_string"), ("Display Name", "display_name")]
SCOPES = [
    "all", "my-endpoints", "my-gcp-endpoints", "recently-used", "in-use", "shared-by-me",
    "shared-with-me", "administered-by-me", "hide-no-permissions",
]


@click.group("endpoint", cls=OrbitGroup)
def endpoint() -> None:
    """Find Globus collections (endpoints) and show their details."""


@endpoint.command("search", epilog="""\b
Examples:
  radical-orbit globus endpoint search 'Tutorial Collection'
  radical-orbit globus endpoint search --filter-scope my-endpoints""")
@click.argument("filter_text", required=False)
@click.option("--filter-scope", type=click.Choice(SCOPES), default=None, help="Search only these collections [default: all, which needs TEXT].")
@click.option("--limit", type=click.IntRange(1, 100), default=25, show_default=True, help="At most this many results.")
@format_option
def search(filter_text: str | None, filter_scope: str | None, limit: int) -> None:
    """Full-text search for collections by name, owner, description or keywords."""
    if not filter_text and filter_scope in (None, "all"):
        raise click.UsageError("give a search TEXT, or a --filter-scope other than 'all'")
    rt = get_runtime()
    result = rt.call("endpoint_search", filter_text, limit=limit, filter_scope=filter_scope)
    if rt.structured:
        rt.emit(result)
    else:
        print_table(rt.out, ENDPOINT_COLUMNS, data_list(result)[:limit], empty="No collections matched.")


@endpoint.command("show", epilog="Example:\n\n  radical-orbit globus endpoint show local")
@click.argument("endpoint_id")
@format_option
def show_endpoint(endpoint_id: str) -> None:
    """Show a collection's details (ENDPOINT_ID is a UUID or 'local')."""
    rt = get_runtime()
    doc = rt.call("get_endpoint", endpoint_id)
    if rt.structured:
        rt.emit(doc)
    else:
        print_record(rt.out, doc, ENDPOINT_FIELDS)
