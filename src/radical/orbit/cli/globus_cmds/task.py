"""``radical-orbit globus task show|wait|cancel|list|events`` and ``endpoint search|show``."""

from __future__ import annotations

from typing import Any

import click

from .app import OrbitGroup, Runtime, format_option, get_runtime
from .render import ENDPOINT_FIELDS, TASK_FIELDS, data_list, print_record, print_table
from .waiting import wait_for_task, wait_options

TASK_LIST_COLUMNS = [
    ("Task ID", "task_id"),
    ("Status", "status"),
    ("Type", "type"),
    ("Source", "source_endpoint_display_name"),
    ("Destination", "destination_endpoint_display_name"),
    ("Label", "label"),
]
EVENT_COLUMNS = [("Time", "time"), ("Code", "code"), ("Error", "is_error"), ("Description", "description"), ("Details", "details")]
SUCCESS_COLUMNS = [("Source Path", "source_path"), ("Destination Path", "destination_path"), ("Size", "size")]
SKIPPED_COLUMNS = [("Source Path", "source_path"), ("Destination Path", "destination_path"), ("Error Code", "error_code")]
ENDPOINT_COLUMNS = [("ID", "id"), ("Owner", "owner_string"), ("Display Name", "display_name")]
STATUSES = ["ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED"]
SCOPES = [
    "all", "my-endpoints", "my-gcp-endpoints", "recently-used", "in-use", "shared-by-me",
    "shared-with-me", "administered-by-me", "hide-no-permissions",
]


@click.group("task", cls=OrbitGroup)
def task() -> None:
    """Show, wait for, cancel and list Globus tasks."""


#: at most this many marker pages for --successful-transfers / --skipped-errors
MAX_PAGES = 1000


def _all_pages(rt: Runtime, method: str, task_id: str) -> dict[str, Any]:
    """Every page of a marker-paged list, as one document (``DATA`` concatenated)."""
    doc = dict(rt.call(method, task_id))
    data = list(doc.get("DATA") or [])
    pages = 1
    while doc.get("next_marker") is not None and pages < MAX_PAGES:
        doc = dict(rt.call(method, task_id, marker=doc["next_marker"]))
        data.extend(doc.get("DATA") or [])
        pages += 1
    doc["DATA"] = data
    return doc


@task.command("show", epilog="Example:\n\n  radical-orbit globus task show TASK_ID --skipped-errors")
@click.argument("task_id")
@click.option("-t", "--successful-transfers", is_flag=True, default=False, help="List the files the task transferred (finished transfers).")
@click.option("--skipped-errors", is_flag=True, default=False, help="List the paths skipped with --skip-source-errors.")
@format_option
def show(task_id: str, successful_transfers: bool, skipped_errors: bool) -> None:
    """Show a task's status, counts and options."""
    rt = get_runtime()
    if successful_transfers or skipped_errors:
        method, columns = ("successful_transfers", SUCCESS_COLUMNS) if successful_transfers else ("skipped_errors", SKIPPED_COLUMNS)
        result = _all_pages(rt, method, task_id)
        if rt.json:
            rt.print_json(result)
        else:
            print_table(rt.out, columns, data_list(result), empty="(none)")
        return
    doc = rt.call("get_task", task_id)
    if rt.json:
        rt.print_json(doc)
    else:
        print_record(rt.out, doc, TASK_FIELDS)


@task.command("wait", epilog="""\b
Exit status: 0 SUCCEEDED, 1 FAILED or INACTIVE, 3 (--timeout-exit-code) on timeout.
Example:
  radical-orbit globus task wait TASK_ID --timeout 600""")
@click.argument("task_id")
@wait_options
@format_option
@click.pass_context
def wait(ctx: click.Context, task_id: str, timeout: float | None, polling_interval: float, timeout_exit_code: int) -> None:
    """Wait for a task to end, with a live progress bar (files, bytes, rate)."""
    code = wait_for_task(get_runtime(), task_id, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code)
    ctx.exit(code)


@task.command("cancel", epilog="Example:\n\n  radical-orbit globus task cancel TASK_ID")
@click.argument("task_id")
@format_option
def cancel(task_id: str) -> None:
    """Cancel a task (a finished task is reported as such, exit 0)."""
    rt = get_runtime()
    result = rt.call("cancel_task", task_id)
    if rt.json:
        rt.print_json(result)
    elif isinstance(result, dict):
        click.echo(str(result.get("message") or result.get("code") or "cancel requested"))
    else:
        click.echo("cancel requested")


@task.command("list", epilog="Example:\n\n  radical-orbit globus task list --status ACTIVE --limit 5")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="At most this many tasks (newest first).")
@click.option("--offset", type=click.IntRange(0), default=None, help="Skip this many tasks.")
@click.option("--status", "statuses", type=click.Choice(STATUSES, case_sensitive=False), multiple=True, help="Only tasks in this status (repeatable).")
@format_option
def list_(limit: int, offset: int | None, statuses: tuple[str, ...]) -> None:
    """List recent tasks of this Globus identity."""
    rt = get_runtime()
    status = [s.upper() for s in statuses] or None
    result = rt.call("list_tasks", limit=limit, status=status, offset=offset)
    if rt.json:
        rt.print_json(result)
    else:
        print_table(rt.out, TASK_LIST_COLUMNS, data_list(result), empty="No tasks.")


@task.command("events", epilog="Example:\n\n  radical-orbit globus task events TASK_ID --errors-only")
@click.argument("task_id")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="At most this many events (newest first).")
@click.option("--errors-only", is_flag=True, default=False, help="Only error events.")
@format_option
def events(task_id: str, limit: int, errors_only: bool) -> None:
    """Show a task's event log (faults, retries, progress), newest first."""
    rt = get_runtime()
    kwargs: dict[str, object] = {"limit": limit}
    if errors_only:
        kwargs["errors_only"] = True
    result = rt.call("task_events", task_id, **kwargs)
    if rt.json:
        rt.print_json(result)
        return
    rows = data_list(result)
    if errors_only:
        rows = [r for r in rows if r.get("is_error")]
    print_table(rt.out, EVENT_COLUMNS, rows, empty="No events.")


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
    if rt.json:
        rt.print_json(result)
    else:
        print_table(rt.out, ENDPOINT_COLUMNS, data_list(result)[:limit], empty="No collections matched.")


@endpoint.command("show", epilog="Example:\n\n  radical-orbit globus endpoint show local")
@click.argument("endpoint_id")
@format_option
def show_endpoint(endpoint_id: str) -> None:
    """Show a collection's details (ENDPOINT_ID is a UUID or 'local')."""
    rt = get_runtime()
    doc = rt.call("get_endpoint", endpoint_id)
    if rt.json:
        rt.print_json(doc)
    else:
        print_record(rt.out, doc, ENDPOINT_FIELDS)
