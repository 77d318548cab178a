"""``radical-orbit globus task ...``: show, wait for, cancel, update and list Globus tasks.

Names and options follow the Globus CLI (``task event-list``, ``task cancel --all``,
``task list --filter-*``), so its users find what they know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ...errors import OrbitError
from .app import EXIT_ERROR, CliExit, OrbitGroup, Runtime, format_option, get_runtime
from .args import DEADLINE_FORMATS, format_deadline, label_param
from .render import TASK_FIELDS, data_list, print_record, print_table
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
PAUSE_MESSAGE_FIELDS = [
    ("Source Endpoint", "source_pause_message"),
    ("Source Shared Endpoint", "source_pause_message_share"),
    ("Destination Endpoint", "destination_pause_message"),
    ("Destination Shared Endpoint", "destination_pause_message_share"),
]
PAUSE_RULE_COLUMNS = [("Operations", "operations"), ("On Endpoint", "endpoint_display_name"), ("All Users", "all_users"), ("Message", "message")]
STATUSES = ["ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED"]
IN_PROGRESS = ["ACTIVE", "INACTIVE"]
#: Globus' task_list page size
LIST_PAGE = 1000
#: at most this many marker pages for --successful-transfers / --skipped-errors
MAX_PAGES = 1000


@click.group("task", cls=OrbitGroup)
def task() -> None:
    """Show, wait for, cancel, update and list Globus tasks."""


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
        if rt.structured:
            rt.emit(result)
        else:
            print_table(rt.out, columns, data_list(result), empty="(none)")
        return
    doc = rt.call("get_task", task_id)
    if rt.structured:
        rt.emit(doc)
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


def _in_progress(rt: Runtime) -> list[str]:
    """Ids of every ACTIVE or INACTIVE task of the identity (all pages)."""
    ids: list[str] = []
    offset = 0
    for _ in range(MAX_PAGES):
        page = rt.call("list_tasks", limit=LIST_PAGE, offset=offset, status=IN_PROGRESS)
        rows = data_list(page)
        ids.extend(str(r["task_id"]) for r in rows if r.get("task_id"))
        offset += len(rows)
        if not rows or offset >= int(page.get("total") or 0):
            break
    return list(dict.fromkeys(ids))


@task.command("cancel", epilog="""\b
Examples:
  radical-orbit globus task cancel TASK_ID
  radical-orbit globus task cancel --all""")
@click.argument("task_id", required=False)
@click.option("-a", "--all", "all_", is_flag=True, default=False, help="Cancel every in-progress (ACTIVE or INACTIVE) task of this identity.")
@format_option
def cancel(task_id: str | None, all_: bool) -> None:
    """Cancel a task, or all of them (a finished task is reported as such, exit 0).

    Like the Globus CLI, --all asks for no confirmation: it cancels each in-progress
    task and prints one line per task; a task that cannot be cancelled is reported
    and the others are still cancelled (exit 1 at the end).
    """
    if bool(task_id) == all_:
        raise click.UsageError("give either a TASK_ID or --all (every in-progress task), not both and not neither")
    rt = get_runtime()
    if task_id:
        result = rt.call("cancel_task", task_id)
        if rt.structured:
            rt.emit(result)
        elif isinstance(result, dict):
            click.echo(str(result.get("message") or result.get("code") or "cancel requested"))
        else:
            click.echo("cancel requested")
        return
    _cancel_all(rt)


def _cancel_all(rt: Runtime) -> None:
    ids = _in_progress(rt)
    if not ids:
        raise CliExit(EXIT_ERROR, "You have no in-progress tasks.")
    results: list[dict[str, Any]] = []
    failed = 0
    for n, tid in enumerate(ids, start=1):
        try:
            res = dict(rt.call("cancel_task", tid))
        except OrbitError as exc:  # gone meanwhile, or Globus refused: the others still get cancelled
            failed += 1
            res = {"task_id": tid, "code": exc.code, "message": " ".join(exc.message.split()), "error": True}
            click.echo(f"{tid} ({n} of {len(ids)}): Error: {res['message']}", err=True)
        else:
            if not rt.structured:
                click.echo(f"{tid} ({n} of {len(ids)}): {res.get('message') or res.get('code')}")
        results.append(res)
    if rt.structured:
        rt.emit({"results": results, "task_ids": ids})
    if failed:
        raise CliExit(EXIT_ERROR, f"{failed} of {len(ids)} tasks could not be cancelled (see above)")


@task.command("update", epilog="""\b
Example:
  radical-orbit globus task update TASK_ID --label 'run 42' --deadline '2030-01-01 12:00:00'""")
@click.argument("task_id")
@click.option("--label", default=None, callback=label_param, help="The task's new label (at most 128 characters).")
@click.option("--deadline", type=click.DateTime(DEADLINE_FORMATS), default=None, help="The task's new deadline.")
@format_option
def update(task_id: str, label: str | None, deadline: datetime | None) -> None:
    """Change the label or deadline of a task that has not ended (exit 1 if it has)."""
    if label is None and deadline is None:
        raise click.UsageError("nothing to update: give --label and/or --deadline")
    rt = get_runtime()
    result = rt.call("update_task", task_id, label=label, deadline=format_deadline(deadline))
    if rt.structured:
        rt.emit(result)
    else:
        click.echo(str(result.get("message") or result.get("code") or "Updated"))


@task.command("pause-info", epilog="Example:\n\n  radical-orbit globus task pause-info TASK_ID")
@click.argument("task_id")
@format_option
def pause_info(task_id: str) -> None:
    """Show why a task is paused: messages of the collections' managers and the pause rules in force."""
    rt = get_runtime()
    result = rt.call("pause_info", task_id)
    if rt.structured:
        rt.emit(result)
        return
    messages = [(label, key) for label, key in PAUSE_MESSAGE_FIELDS if result.get(key)]
    rules = [r for r in result.get("pause_rules") or [] if isinstance(r, dict)]
    if not messages and not rules:
        click.echo(f"Task {task_id} is not paused.")
        return
    if messages:
        click.echo("This task has been explicitly paused.")
        print_record(rt.out, result, messages)
    if rules:
        if messages:
            click.echo()
        click.echo("The following pause rules are effective on this task:")
        rows = [
            {
                **rule,
                "operations": ", ".join(k.removeprefix("pause_") for k, v in sorted(rule.items()) if k.startswith("pause_") and v is True),
                "all_users": rule.get("identity_id") is None,
            }
            for rule in rules
        ]
        print_table(rt.out, PAUSE_RULE_COLUMNS, rows)


@task.command("list", epilog="""\b
Examples:
  radical-orbit globus task list --filter-status ACTIVE --limit 5
  radical-orbit globus task list --filter-label 'nightly*' --filter-requested-after 2030-01-01
  radical-orbit globus task list -F unix --jq 'DATA[].[task_id, status]'""")
@click.option("--limit", type=click.IntRange(1, LIST_PAGE), default=10, show_default=True, help="At most this many tasks (newest first).")
@click.option("--offset", type=click.IntRange(0), default=None, help="Skip this many tasks.")
@click.option("--filter-task-id", "task_ids", type=click.UUID, multiple=True, help="Only this task (repeatable).")
@click.option("--filter-type", "types", type=click.Choice(["TRANSFER", "DELETE"], case_sensitive=False), multiple=True, help="Only TRANSFER or DELETE tasks.")
@click.option("--filter-status", "--status", "statuses", type=click.Choice(STATUSES, case_sensitive=False), multiple=True, help="Only tasks in this status (repeatable).")
@click.option("--filter-label", "labels", multiple=True, metavar="PATTERN", help="Only tasks whose label matches (repeatable: any of them).")
@click.option("--filter-not-label", "not_labels", multiple=True, metavar="PATTERN", help="Only tasks whose label does not match (repeatable).")
@click.option("--inexact/--exact", default=True, show_default=True, help="Label patterns may use '*' and ignore case / must match exactly.")
@click.option("--filter-requested-after", "requested_after", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Only tasks requested after this time (UTC).")
@click.option("--filter-requested-before", "requested_before", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Only tasks requested before this time (UTC).")
@click.option("--filter-completed-after", "completed_after", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Only tasks completed after this time (UTC).")
@click.option("--filter-completed-before", "completed_before", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Only tasks completed before this time (UTC).")
@format_option
def list_(
    limit: int,
    offset: int | None,
    task_ids: tuple[Any, ...],
    types: tuple[str, ...],
    statuses: tuple[str, ...],
    labels: tuple[str, ...],
    not_labels: tuple[str, ...],
    inexact: bool,
    requested_after: datetime | None,
    requested_before: datetime | None,
    completed_after: datetime | None,
    completed_before: datetime | None,
) -> None:
    """List recent tasks of this Globus identity, newest first (filters as the Globus CLI's)."""
    for value in (*labels, *not_labels):
        if "/" in value or "," in value:
            raise click.UsageError(f"label pattern {value!r}: '/' and ',' cannot be matched (they separate Globus filter clauses and alternatives)")
    yes, no = ("~", "!~") if inexact else ("=", "!")
    patterns = [yes + v for v in labels] + [no + v for v in not_labels]
    rt = get_runtime()
    result = rt.call(
        "task_list",
        limit,
        offset=offset,
        task_id=[str(t) for t in task_ids] or None,
        type=[t.upper() for t in types] or None,
        status=[s.upper() for s in statuses] or None,
        label=patterns or None,
        requested_after=_iso(requested_after),
        requested_before=_iso(requested_before),
        completed_after=_iso(completed_after),
        completed_before=_iso(completed_before),
    )
    if rt.structured:
        rt.emit(result)
    else:
        print_table(rt.out, TASK_LIST_COLUMNS, data_list(result), empty="No tasks.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@task.command("events", epilog="""\b
Examples:
  radical-orbit globus task events TASK_ID --errors-only
  radical-orbit globus task event-list TASK_ID --filter-errors""")
@click.argument("task_id")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="At most this many events (newest first).")
@click.option("--errors-only", "--filter-errors", "errors_only", is_flag=True, default=False, help="Only error events.")
@click.option("--filter-non-errors", "non_errors", is_flag=True, default=False, help="Only events that are not errors.")
@format_option
def events(task_id: str, limit: int, errors_only: bool, non_errors: bool) -> None:
    """Show a task's event log (faults, retries, progress), newest first (alias: event-list)."""
    if errors_only and non_errors:
        raise click.UsageError("--filter-errors and --filter-non-errors exclude each other; give one")
    rt = get_runtime()
    if non_errors:
        result = _non_error_events(rt, task_id, limit)
    else:
        result = rt.call("task_events", task_id, limit=limit, errors_only=True if errors_only else None)
    if rt.structured:
        rt.emit(result)
        return
    rows = data_list(result)
    if errors_only:
        rows = [r for r in rows if r.get("is_error")]
    print_table(rt.out, EVENT_COLUMNS, rows, empty="No events.")


def _non_error_events(rt: Runtime, task_id: str, limit: int) -> dict[str, Any]:
    """The newest ``limit`` events that are not errors (the plugin filters only for errors:
    read pages, newest first, until enough are found or the log ends)."""
    kept: list[dict[str, Any]] = []
    offset = 0
    doc: dict[str, Any] = {}
    for _ in range(MAX_PAGES):
        doc = dict(rt.call("task_events", task_id, limit=LIST_PAGE, offset=offset))
        rows = data_list(doc)
        kept.extend(r for r in rows if not r.get("is_error"))
        offset += len(rows)
        if len(kept) >= limit or not rows or offset >= int(doc.get("total") or 0):
            break
    doc["DATA"] = kept[:limit]
    doc["length"] = len(doc["DATA"])
    return doc


task.add_command(events, "event-list")
