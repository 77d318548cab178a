"""``radical-orbit globus ls|mkdir|rename|stat``: filesystem operations on a collection."""

from __future__ import annotations

import posixpath
import time
from typing import Any

import click

from .app import OrbitCommand, format_option, get_runtime
from .args import CollectionPath, orderby_param
from .render import data_list, print_record, print_table

LS_LONG_COLUMNS = [
    ("Permissions", "permissions"),
    ("User", "user"),
    ("Group", "group"),
    ("Size", "size"),
    ("Last Modified", "last_modified"),
    ("File Type", "type"),
    ("Filename", "name"),
]

STAT_FIELDS = [
    ("Name", "name"),
    ("Type", "type"),
    ("Size", "size"),
    ("Permissions", "permissions"),
    ("User", "user"),
    ("Group", "group"),
    ("Last Modified", "last_modified"),
    ("Link Target", "link_target"),
]


LOCAL_USER = click.option("--local-user", default=None, help="Local account on the collection (GCSv5 mapped collections).")


def _message(result: Any, default: str) -> str:
    if isinstance(result, dict):
        return str(result.get("message") or result.get("code") or default)
    return default


#: ``ls -r`` pauses this long after every RECURSIVE_BURST listings: Globus meters about
#: 20 requests a second per identity, and a deep tree must not trip it for other work
RECURSIVE_BURST = 25
RECURSIVE_PAUSE = 1.0


@click.command(
    "ls",
    cls=OrbitCommand,
    epilog="""\b
Examples:
  radical-orbit globus ls local:/~/
  radical-orbit globus ls 6c54cade-bde5-45c1-bdea-f4bd71dba2cc:/home/share/godata/ -l
  radical-orbit globus ls local --filter '~*.txt' -F json
  radical-orbit globus ls local:/~/data/ -r --recursive-depth-limit 1""",
)
@click.argument("target", type=CollectionPath("optional"), metavar="COLLECTION[:PATH]")
@click.option("-l", "--long", "long_", is_flag=True, default=False, help="Long listing (permissions, owner, size, time).")
@click.option("-a", "--all", "show_all", is_flag=True, default=False, help="Show entries whose name starts with '.'.")
@click.option("--filter", "filter_", default=None, metavar="PATTERN", help="Names matching PATTERN ('=' exact, '~' glob, '!' / '!~' negated).")
@click.option("-r", "--recursive", is_flag=True, default=False, help="List subdirectories too, up to --recursive-depth-limit (like ls -R).")
@click.option("--recursive-depth-limit", type=click.IntRange(0), default=3, show_default=True, help="How many directory levels -r descends (0: none).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many entries.")
@click.option("--offset", type=click.IntRange(0), default=None, help="Skip this many entries.")
@click.option("--orderby", multiple=True, metavar="FIELD[:ASC|DESC]", help="Sort by name, size, type, last_modified, ... (repeatable).")
@LOCAL_USER
@format_option
def ls(
    target: tuple[str, str | None],
    long_: bool,
    show_all: bool,
    filter_: str | None,
    recursive: bool,
    recursive_depth_limit: int,
    limit: int | None,
    offset: int | None,
    orderby: tuple[str, ...],
    local_user: str | None,
) -> None:
    """List a directory (default: the collection's default directory).

    Text output prints one name a line, directories with a trailing '/', like the
    Globus CLI; -l prints a table. With -r, names are relative to the listed
    directory and every directory is shown (--filter selects the other entries).
    """
    rt = get_runtime()
    coll, path = target
    if filter_ and "/" in filter_:
        raise click.UsageError("--filter cannot contain '/' (it separates Globus filter clauses; names hold none)")
    if recursive and (limit is not None or offset is not None):
        raise click.UsageError("--limit and --offset apply to one directory: they cannot be combined with --recursive")
    flt = None
    if filter_:
        flt = filter_ if filter_.startswith("name:") else f"name:{filter_}"
    try:
        order = orderby_param(orderby)
    except click.BadParameter as exc:
        raise click.UsageError(exc.message) from None
    kwargs: dict[str, Any] = {"show_hidden": show_all, "orderby": order, "local_user": local_user}
    if recursive:
        # repeated filters are ORed: directories always come back, to descend into
        entries = _walk(rt, coll, path, depth_limit=recursive_depth_limit, filter=["type:dir", flt] if flt else None, **kwargs)
        result: Any = {"DATA": entries}
    else:
        result = rt.call("ls", coll, path=path, filter=flt, limit=limit, offset=offset, **kwargs)
        entries = data_list(result)
    if rt.structured:
        rt.emit(result)
        return
    if not show_all:  # in case the plugin ignored show_hidden
        entries = [e for e in entries if not posixpath.basename(str(e.get("name", ""))).startswith(".")]
    if long_:
        print_table(rt.out, LS_LONG_COLUMNS, entries)
        return
    for entry in entries:
        name = str(entry.get("name", ""))
        click.echo(name + "/" if entry.get("type") == "dir" else name)


def _walk(rt: Any, coll: str, path: str | None, *, depth_limit: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Entries of ``path`` and of its subdirectories down to ``depth_limit`` levels, each
    directory's listing whole and followed by those of its subdirectories (depth first,
    in listing order, as the Globus CLI's ``ls -r``); names relative to ``path``."""
    out: list[dict[str, Any]] = []
    stack: list[tuple[str | None, str, int]] = [(path, "", 0)]
    calls = 0
    while stack:
        where, prefix, depth = stack.pop()
        if calls and calls % RECURSIVE_BURST == 0:
            time.sleep(RECURSIVE_PAUSE)
        listing = rt.call("ls", coll, path=where, **kwargs)
        calls += 1
        base = str(listing.get("path") or where or "/") if isinstance(listing, dict) else str(where or "/")
        base = base if base.endswith("/") else base + "/"
        rows = data_list(listing)
        if depth < depth_limit:
            subdirs = [r for r in rows if r.get("type") == "dir" and r.get("name")]
            stack.extend((base + str(r["name"]) + "/", prefix + str(r["name"]) + "/", depth + 1) for r in reversed(subdirs))
        out.extend({**r, "name": prefix + str(r.get("name", ""))} for r in rows)
    return out


@click.command("mkdir", cls=OrbitCommand, epilog="Example:\n\n  radical-orbit globus mkdir local:/~/results/")
@click.argument("target", type=CollectionPath("required"), metavar="COLLECTION:PATH")
@LOCAL_USER
@format_option
def mkdir(target: tuple[str, str], local_user: str | None) -> None:
    """Make a directory on a collection."""
    rt = get_runtime()
    coll, path = target
    result = rt.call("mkdir", coll, path, local_user=local_user)
    if rt.structured:
        rt.emit(result)
    else:
        click.echo(_message(result, "The directory was created successfully"))


@click.command("rename", cls=OrbitCommand, epilog="Example:\n\n  radical-orbit globus rename local /~/old.txt /~/new.txt")
@click.argument("collection", type=CollectionPath("forbidden"), metavar="COLLECTION")
@click.argument("old_path")
@click.argument("new_path")
@LOCAL_USER
@format_option
def rename(collection: tuple[str, None], old_path: str, new_path: str, local_user: str | None) -> None:
    """Rename or move a file or directory within a collection."""
    rt = get_runtime()
    result = rt.call("rename", collection[0], old_path, new_path, local_user=local_user)
    if rt.structured:
        rt.emit(result)
    else:
        click.echo(_message(result, "File or directory renamed successfully"))


@click.command("stat", cls=OrbitCommand, epilog="Example:\n\n  radical-orbit globus stat local:/~/godata/file1.txt")
@click.argument("target", type=CollectionPath("required"), metavar="COLLECTION:PATH")
@LOCAL_USER
@format_option
def stat(target: tuple[str, str], local_user: str | None) -> None:
    """Show one file's or directory's metadata (exit 1 if it does not exist)."""
    rt = get_runtime()
    coll, path = target
    result = rt.call("stat", coll, path, local_user=local_user)
    if rt.structured:
        rt.emit(result)
    else:
        print_record(rt.out, result if isinstance(result, dict) else {}, STAT_FIELDS, skip_none=True)
