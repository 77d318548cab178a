"""``radical-orbit globus transfer``, ``delete`` and ``rm``: submit Globus tasks, optionally wait."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

import click

from .app import EXIT_ERROR, EXIT_OK, CliExit, OrbitCommand, format_option, get_runtime
from .args import (
    DEADLINE_FORMATS,
    SUBMISSION_ID,
    BatchFile,
    CollectionPath,
    batch_items,
    batch_paths,
    format_deadline,
    label_param,
    notify_options,
    ordered_filter_rules,
)
from .waiting import wait_for_task, wait_options

SYNC_LEVELS = ["exists", "size", "mtime", "checksum"]


def _print_submission(result: dict[str, Any], *, structured: bool, rt: Any) -> None:
    if structured:
        rt.emit(result)
        return
    if result.get("message"):
        click.echo(f"Message: {result['message']}")
    click.echo(f"Task ID: {result.get('task_id')}")


def _finish(ctx: click.Context, rt: Any, result: dict[str, Any], *, wait: bool, timeout: float | None, polling_interval: float, timeout_exit_code: int, label: str | None) -> None:
    task_id = str(result.get("task_id"))
    if not wait:
        _print_submission(result, structured=rt.structured, rt=rt)
        return
    if not rt.structured:  # with --wait, JSON output is the final task document only
        _print_submission(result, structured=False, rt=rt)
    code = wait_for_task(rt, task_id, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code, label=label)
    if code != EXIT_OK:
        ctx.exit(code)


@click.command(
    "transfer",
    cls=OrbitCommand,
    epilog="""\b
Examples:
  radical-orbit globus transfer 6c54cade-bde5-45c1-bdea-f4bd71dba2cc:/home/share/godata/ local:/~/godata/ -r --wait
  radical-orbit globus transfer SRC_UUID:/data/ local:/~/in/ --batch pairs.txt --sync-level checksum
\b
Batch lines (file or - for stdin):  SRC_PATH DST_PATH [--recursive|--no-recursive]
relative paths are joined to the command line's paths; '#' starts a comment.""",
)
@click.argument("source", type=CollectionPath("optional"), metavar="SRC_COLLECTION[:PATH]")
@click.argument("destination", type=CollectionPath("optional"), metavar="DST_COLLECTION[:PATH]")
@click.option("--recursive/--no-recursive", "-r", default=None, help="Paths are directories (-r) or files (--no-recursive); default: auto-detect.")
@click.option("--batch", type=BatchFile(), default=None, metavar="FILE|-", help="Read 'SRC_PATH DST_PATH [--recursive]' lines from FILE (- for stdin).")
@click.option("-s", "--sync-level", type=click.Choice(SYNC_LEVELS, case_sensitive=False), default=None, help="Only copy files that are missing / differ in size / are newer / differ in checksum.")
@click.option("--label", default=None, callback=label_param, help="A label for the task (at most 128 characters).")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True, help="Verify checksums after the copy.")
@click.option("--preserve-timestamp", "--preserve-mtime", is_flag=True, default=False, help="Preserve file modification times.")
@click.option("--encrypt-data", "--encrypt", is_flag=True, default=False, help="Encrypt the data channel.")
@click.option("--skip-source-errors", is_flag=True, default=False, help="Skip source paths that are missing or denied.")
@click.option("--fail-on-quota-errors", is_flag=True, default=False, help="Fail the task on a quota error.")
@click.option("--delete-destination-extra", is_flag=True, default=False, help="Delete destination files absent from the source (recursive items).")
@click.option("--include", multiple=True, metavar="GLOB", help="Include matching files (recursive; first matching --include/--exclude wins).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Exclude matching files (recursive).")
@click.option("--external-checksum", default=None, metavar="SUM", help="Checksum the source file must have (single-item mode; per line in --batch).")
@click.option("--checksum-algorithm", default=None, metavar="ALG", help="Algorithm of --external-checksum / --verify-checksum (e.g. MD5, SHA256).")
@click.option("--deadline", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Cancel the task if not done by then.")
@click.option("--submission-id", default=None, type=SUBMISSION_ID, help="Reuse a submission id (a UUID) for an idempotent retry.")
@click.option("--notify", default=None, metavar="on|off|succeeded,failed,inactive", help="Which task events Globus e-mails you about [default: all].")
@click.option("--source-local-user", default=None, help="Local account on the source (GCSv5 mapped collections).")
@click.option("--destination-local-user", default=None, help="Local account on the destination (GCSv5 mapped collections).")
@click.option("--fail-fast", is_flag=True, default=False, help="Cancel the task at its first fault instead of letting Globus retry.")
@click.option("--dry-run", is_flag=True, default=False, help="Print what would be submitted; submit nothing.")
@click.option("--wait", is_flag=True, default=False, help="Wait for the task with a progress bar (exit 0 SUCCEEDED, 1 FAILED, 3 timeout).")
@wait_options
@format_option
@click.pass_context
def transfer(
    ctx: click.Context,
    source: tuple[str, str | None],
    destination: tuple[str, str | None],
    recursive: bool | None,
    batch: IO[bytes] | None,
    sync_level: str | None,
    label: str | None,
    verify_checksum: bool,
    preserve_timestamp: bool,
    encrypt_data: bool,
    skip_source_errors: bool,
    fail_on_quota_errors: bool,
    delete_destination_extra: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    external_checksum: str | None,
    checksum_algorithm: str | None,
    deadline: datetime | None,
    submission_id: str | None,
    notify: str | None,
    source_local_user: str | None,
    destination_local_user: str | None,
    fail_fast: bool,
    dry_run: bool,
    wait: bool,
    timeout: float | None,
    polling_interval: float,
    timeout_exit_code: int,
) -> None:
    """Copy a file or directory (or a --batch of them) between two collections.

    SRC and DST are COLLECTION:PATH, where COLLECTION is a UUID or 'local' (the
    endpoint's local collection). Globus copies collection to collection; no byte
    passes through Orbit. Prints the task id; --wait follows the task to its end.
    """
    rt = get_runtime()
    (src, src_path), (dst, dst_path) = source, destination
    if batch is not None:
        if external_checksum:
            raise click.UsageError("--external-checksum is per file: put it on the --batch lines")
        items = batch_items(batch, source_prefix=src_path, dest_prefix=dst_path, recursive=recursive, checksum_algorithm=checksum_algorithm)
    else:
        if external_checksum and recursive:
            raise click.UsageError("--external-checksum is the checksum of one file: it cannot go with -r/--recursive")
        if src_path is None or dst_path is None:
            which = " and ".join(n for n, p in (("SRC", src_path), ("DST", dst_path)) if p is None)
            raise click.UsageError(
                f"{which} {'has' if ' and ' not in which else 'have'} no path: give SRC_COLLECTION:PATH and "
                "DST_COLLECTION:PATH (e.g. local:/~/data/), or --batch FILE"
            )
        item: dict[str, Any] = {"source": src_path, "destination": dst_path}
        if recursive is not None:
            item["recursive"] = recursive
        if external_checksum:
            item["external_checksum"] = external_checksum
        if checksum_algorithm:
            item["checksum_algorithm"] = checksum_algorithm
        items = [item]
    try:
        notify_flags = notify_options(notify)
    except click.BadParameter as exc:
        raise click.UsageError(exc.message) from None
    options: dict[str, Any] = {
        "label": label,
        "sync_level": sync_level.lower() if sync_level else None,
        "verify_checksum": verify_checksum,
        "preserve_timestamp": preserve_timestamp or None,
        "encrypt_data": encrypt_data or None,
        "skip_source_errors": skip_source_errors or None,
        "fail_on_quota_errors": fail_on_quota_errors or None,
        "delete_destination_extra": delete_destination_extra or None,
        "deadline": format_deadline(deadline),
        "submission_id": submission_id,
        "source_local_user": source_local_user,
        "destination_local_user": destination_local_user,
        "fail_fast": fail_fast or None,
        **notify_flags,
    }
    if include or exclude:
        options["filter_rules"] = ordered_filter_rules(ctx.meta.get("globus.argv", []), include, exclude)
    if dry_run:
        doc = {"source": src, "destination": dst, "items": items, **{k: v for k, v in options.items() if v is not None}}
        if rt.structured:
            rt.emit(doc)
        else:
            click.echo(f"Source:      {src}\nDestination: {dst}")
            for k, v in doc.items():
                if k not in ("source", "destination", "items"):
                    click.echo(f"{k}: {v}")
            for it in items:
                rec = it.get("recursive")
                flag = " (recursive)" if rec is True else " (file)" if rec is False else ""
                click.echo(f"  {it['source']} -> {it['destination']}{flag}")
        return
    result = rt.call("submit_transfer", src, dst, items, **options)
    _finish(ctx, rt, result, wait=wait, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code, label=label)


@click.command(
    "delete",
    cls=OrbitCommand,
    epilog="""\b
Examples:
  radical-orbit globus delete local:/~/godata/ -r --wait
  printf '/~/a.txt\\n/~/b.txt\\n' | radical-orbit globus delete local --batch -""",
)
@click.argument("target", type=CollectionPath("optional"), metavar="COLLECTION:PATH")
@click.option("-r", "--recursive", is_flag=True, default=False, help="Delete directories and their contents.")
@click.option("--batch", type=BatchFile(), default=None, metavar="FILE|-", help="Read one PATH a line from FILE (- for stdin).")
@click.option("-f", "--ignore-missing", is_flag=True, default=False, help="No error for paths that do not exist.")
@click.option("--label", default=None, callback=label_param, help="A label for the task (at most 128 characters).")
@click.option("--deadline", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Cancel the task if not done by then.")
@click.option("--submission-id", default=None, type=SUBMISSION_ID, help="Reuse a submission id (a UUID) for an idempotent retry.")
@click.option("--local-user", default=None, help="Local account on the collection (GCSv5 mapped collections).")
@click.option("--wait", is_flag=True, default=False, help="Wait for the task (exit 0 SUCCEEDED, 1 FAILED, 3 timeout).")
@wait_options
@format_option
@click.pass_context
def delete(
    ctx: click.Context,
    target: tuple[str, str | None],
    recursive: bool,
    batch: IO[bytes] | None,
    ignore_missing: bool,
    label: str | None,
    deadline: datetime | None,
    submission_id: str | None,
    local_user: str | None,
    wait: bool,
    timeout: float | None,
    polling_interval: float,
    timeout_exit_code: int,
) -> None:
    """Delete files or directories on a collection (a Globus delete task)."""
    rt = get_runtime()
    coll, path = target
    if batch is not None:
        paths = batch_paths(batch, prefix=path)
    elif path is None:
        raise click.UsageError(f"{coll} has no path: give COLLECTION:PATH (e.g. local:/~/old/), or --batch FILE")
    else:
        paths = [path]
    result = rt.call(
        "delete", coll, paths, recursive=recursive, label=label, ignore_missing=ignore_missing or None,
        deadline=format_deadline(deadline), submission_id=submission_id, local_user=local_user,
    )
    _finish(ctx, rt, result, wait=wait, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code, label=label)


@click.command(
    "rm",
    cls=OrbitCommand,
    epilog="""\b
Exit status: 0 deleted, 1 the delete FAILED, 3 (--timeout-exit-code) on timeout.
Examples:
  radical-orbit globus rm local:/~/old.txt
  radical-orbit globus rm local:/~/scratch/ -r --timeout 600
  radical-orbit globus rm local:/~/logs/*.tmp -f""",
)
@click.argument("target", type=CollectionPath("required"), metavar="COLLECTION:PATH")
@click.option("-r", "--recursive", is_flag=True, default=False, help="Delete a directory and its contents.")
@click.option("-f", "--ignore-missing", is_flag=True, default=False, help="No error if the path does not exist.")
@click.option("--enable-globs/--no-enable-globs", default=True, show_default=True, help="'*', '?' and '[ ]' in the last path component match names (escape them with '\\').")
@click.option("--star-silent", "--unsafe", is_flag=True, default=False, help="Do not ask before deleting a path that ends in '*'.")
@click.option("--label", default=None, callback=label_param, help="A label for the task (at most 128 characters).")
@click.option("--deadline", type=click.DateTime(DEADLINE_FORMATS), default=None, help="Cancel the task if not done by then.")
@click.option("--submission-id", default=None, type=SUBMISSION_ID, help="Reuse a submission id (a UUID) for an idempotent retry.")
@click.option("--local-user", default=None, help="Local account on the collection (GCSv5 mapped collections).")
@click.option("--dry-run", is_flag=True, default=False, help="Print what would be deleted; submit nothing.")
@wait_options
@format_option
@click.pass_context
def rm(
    ctx: click.Context,
    target: tuple[str, str],
    recursive: bool,
    ignore_missing: bool,
    enable_globs: bool,
    star_silent: bool,
    label: str | None,
    deadline: datetime | None,
    submission_id: str | None,
    local_user: str | None,
    dry_run: bool,
    timeout: float | None,
    polling_interval: float,
    timeout_exit_code: int,
) -> None:
    """Delete a file or directory and wait until Globus has (as `globus rm`).

    A delete task, then a `task wait`: the task id goes to stderr, so -F json prints
    only the final task document. A timed-out rm keeps deleting; wait for it again
    with `radical-orbit globus task wait TASK_ID`.
    """
    rt = get_runtime()
    coll, path = target
    ask = path.endswith("*") and enable_globs and not star_silent and not dry_run
    if ask and sys.stdin.isatty() and sys.stderr.isatty() and not click.confirm(f"Delete everything matching {path!r}?", err=True):
        raise CliExit(EXIT_ERROR, "Aborted.")
    options: dict[str, Any] = {
        "recursive": recursive,
        "label": label,
        "ignore_missing": ignore_missing,
        "interpret_globs": enable_globs,
        "deadline": format_deadline(deadline),
        "submission_id": submission_id,
        "local_user": local_user,
    }
    if dry_run:
        doc = {"collection": coll, "paths": [path], **{k: v for k, v in options.items() if v is not None}}
        if rt.structured:
            rt.emit(doc)
        else:
            click.echo(f"Path: {path}")
        return
    result = rt.call("delete", coll, [path], **options)
    task_id = str(result.get("task_id"))
    click.echo(f'Delete task submitted under ID "{task_id}"', err=True)
    code = wait_for_task(rt, task_id, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code, label=label)
    if code != EXIT_OK:
        ctx.exit(code)
