"""``radical-orbit globus whoami``: whose Globus identity the credential acts as.

Useful before anything else: tasks, ``task list`` and ``task cancel --all`` are those
of this identity, and a token for the wrong account is the usual surprise.
"""

from __future__ import annotations

import click

from .app import EXIT_ERROR, CliExit, OrbitCommand, format_option, get_runtime
from .render import print_record, print_table

IDENTITY_FIELDS = [("Username", "preferred_username"), ("Name", "name"), ("ID", "sub"), ("Email", "email")]
LINKED_COLUMNS = [("Username", "username"), ("Name", "name"), ("ID", "id"), ("Email", "email")]


@click.command("whoami", cls=OrbitCommand, epilog="""\b
Examples:
  radical-orbit globus whoami
  radical-orbit globus whoami --linked-identities -v""")
@click.option("--linked-identities", is_flag=True, default=False, help="Also list the identities linked to this one.")
@click.option("-v", "--verbose", is_flag=True, default=False, help="Name, ID and e-mail too (a table with --linked-identities).")
@format_option
def whoami(linked_identities: bool, verbose: bool) -> None:
    """Show the Globus identity of the credential in the environment (its username).

    Asks Globus Auth (userinfo) through the endpoint, with the same credential the
    other commands use.
    """
    rt = get_runtime()
    info = rt.call("whoami")
    if not linked_identities:
        if rt.structured:
            rt.emit(info)
        elif verbose:
            print_record(rt.out, info, IDENTITY_FIELDS)
        else:
            click.echo(str(info.get("preferred_username") or info.get("sub")))
        return
    linked = info.get("identity_set")
    if not isinstance(linked, list):
        raise CliExit(
            EXIT_ERROR,
            "Globus Auth did not list the linked identities of this login: it needs the "
            "view_identity_set consent; log in again agreeing to it",
        )
    rows = [{**i, "id": i.get("sub") or i.get("id")} for i in linked if isinstance(i, dict)]
    if rt.structured:
        rt.emit(linked)
    elif verbose:
        print_table(rt.out, LINKED_COLUMNS, rows)
    else:
        for row in rows:
            click.echo(str(row.get("username")))
