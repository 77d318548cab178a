"""``radical-orbit bridge tokens|endpoints ...``: the bridge operator's identity commands.

They edit ``~/.radical/orbit/bridge-identities.json`` on the bridge host (the running
bridge picks changes up within about a second), or, with ``--redis URL`` (or
``$RADICAL_ORBIT_REDIS_URL``), the identities bridge replicas share in Redis: there a
command returns once every running replica has applied the change. A secret is printed once, on
stdout and nowhere else, so ``TOKEN=$(radical-orbit bridge tokens add alice)`` works
and nothing secret ever has to go on a command line; everything around it goes to
stderr.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..config import (
    BRIDGE_TOKEN_FILE,
    BRIDGE_URL_FILE,
    BRIDGE_URL_FILE_FIX,
    DEFAULT_BRIDGE_URL,
    ENV_ENDPOINT_KEY,
    orbit_home,
    read_setting_file,
)
from ..errors import OrbitError

if TYPE_CHECKING:
    from ..bridge.identities import IdentityStore

__all__ = ["ENV_REDIS_URL", "endpoints_group", "tokens_group"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: the Redis replicas share (``radical-orbit bridge --redis``), also for these commands
ENV_REDIS_URL = "RADICAL_ORBIT_REDIS_URL"

_STORE: dict[str, IdentityStore] = {}


def _store() -> IdentityStore:
    """The store the current command edits (the one :func:`shared` opened, else the file)."""
    from ..bridge.identities import (
        IdentityStore,  # the bridge package imports the server: only when needed
    )

    return _STORE.get("store") or IdentityStore(orbit_home())


def shared(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command ``--redis URL``: it then edits the identities replicas share in Redis."""

    @click.option("--redis", "redis_url", envvar=ENV_REDIS_URL, show_envvar=True, default=None,
                  help="Edit the identities that bridge replicas share in this Redis (redis://HOST:PORT/DB).")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, /, *args: Any, redis_url: str | None, **kwargs: Any) -> None:
        url = redis_url or (ctx.obj or {}).get("redis_url")
        if not url:
            command(*args, **kwargs)
            return
        from ..bridge.backplane.redis_url import check_redis_url, redis_missing

        problem = redis_missing()
        if problem:
            raise click.UsageError(problem)
        try:
            url = check_redis_url(url)
        except OrbitError as exc:
            raise click.UsageError(f"--redis / ${ENV_REDIS_URL}: {exc.message}") from None
        from ..bridge.backplane.redis_identities import RedisIdentityStore

        store = RedisIdentityStore(url, orbit_home())
        _STORE["store"] = store
        try:
            command(*args, **kwargs)
        finally:
            _STORE.pop("store", None)
            store.close()
        if store.unconfirmed:
            click.echo(
                f"warning: {store.unconfirmed} bridge replica(s) did not confirm the change within a few seconds; "
                "they apply it when they next reach Redis",
                err=True,
            )

    return wrapper


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _fail(exc: OrbitError) -> click.ClickException:
    return click.ClickException(exc.message)


# -- tokens ------------------------------------------------------------------------------
@click.group("tokens")
def tokens_group() -> None:
    """Client tokens: one per user or pipeline, each its own identity.

    Sessions belong to the identity that opened them, and /events shows an identity
    only its own sessions' events (an --admin token sees all). The bridge keeps only
    a hash of each token.
    """


@tokens_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The identity sees every identity's events and sessions.")
@shared
def tokens_add(name: str, admin: bool) -> None:
    """Make a client token for NAME and print it once (on stdout)."""
    try:
        secret = _store().add_token(name, admin=admin)
    except OrbitError as exc:
        raise _fail(exc) from None
    click.echo(secret)
    click.echo(
        f"Token for {name!r}{' (admin)' if admin else ''}: shown only now, the bridge keeps its hash.\n"
        "Hand it over privately; its user sets RADICAL_ORBIT_BRIDGE_TOKEN, or saves it as "
        f"~/.radical/orbit/{BRIDGE_TOKEN_FILE} with mode 0600 (chmod 600).",
        err=True,
    )


@tokens_group.command("list")
@shared
def tokens_list() -> None:
    """Every client identity: name, admin, created (never a token)."""
    try:
        data = _store().read()
    except OrbitError as exc:
        raise _fail(exc) from None
    rows = [("admin", "yes", f"(the default token, ~/.radical/orbit/{BRIDGE_TOKEN_FILE})")]
    rows += [(t.name, "yes" if t.admin else "no", t.created) for t in sorted(data.tokens, key=lambda t: t.name)]
    _table(rows, ("NAME", "ADMIN", "CREATED"))


@tokens_group.command("revoke")
@click.argument("name")
@shared
def tokens_revoke(name: str) -> None:
    """Revoke NAME's token (a running bridge refuses it within about a second)."""
    if name == "admin":
        raise click.ClickException(
            f"'admin' is the default token in ~/.radical/orbit/{BRIDGE_TOKEN_FILE}: to replace it, "
            "delete that file and restart the bridge (it generates a new one)"
        )
    try:
        _store().revoke_token(name)
    except OrbitError as exc:
        raise _fail(exc) from None
    click.echo(f"revoked the token of {name!r}", err=True)


# -- endpoints -----------------------------------------------------------------------------
@click.group("endpoints")
def endpoints_group() -> None:
    """Endpoint keys and the names they hold.

    An endpoint proves who it is with an endpoint key (client tokens cannot register
    one). A name belongs to the key that first registered it until it is forgotten
    here. An endpoint started in the bridge's HOME uses the local key
    (~/.radical/orbit/endpoint.key) and needs no enrolment.
    """


def _bridge_url() -> str:
    """The bridge's URL as ``bridge.url`` says (else the default), for the lines to run.

    :raises UsageError: ``bridge.url`` is not UTF-8 text, or too large
    """
    return read_setting_file(BRIDGE_URL_FILE, BRIDGE_URL_FILE_FIX) or DEFAULT_BRIDGE_URL


@endpoints_group.command("enroll")
@click.argument("name")
@shared
def endpoints_enroll(name: str) -> None:
    """Make an endpoint key that may register NAME (and claim NAME for it now).

    Prints, once, the two lines to run on the endpoint host: the key goes into the
    environment, never onto a command line. To keep it in a file instead, save the
    key alone in a file with mode 0600 and start the endpoint with --key-file FILE.
    """
    try:
        url = _bridge_url()  # first: a key enrolled and then not shown would only hold the name
        secret = _store().enroll(name)
    except OrbitError as exc:
        raise _fail(exc) from None
    click.echo(
        f"Enrolled endpoint {name!r}. On the endpoint host, run these two lines (the key is shown only now; "
        "the bridge keeps its hash):",
        err=True,
    )
    click.echo(f"export {ENV_ENDPOINT_KEY}={secret}")
    click.echo(f"radical-orbit endpoint --name {name} --url {url}")
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        click.echo(
            f"Note: {url} is this host's loopback address; from another machine use the address it "
            "reaches the bridge at (start the bridge with --host 0.0.0.0 and, off a trusted network, --cert/--key).",
            err=True,
        )


@endpoints_group.command("list")
@shared
def endpoints_list() -> None:
    """Every claimed endpoint name: name, owner key, claimed (never a key)."""
    try:
        data = _store().read()
    except OrbitError as exc:
        raise _fail(exc) from None
    rows = [(c.name, c.owner, c.claimed) for c in sorted(data.claims.values(), key=lambda c: c.name.casefold())]
    _table(rows, ("NAME", "OWNER KEY", "CLAIMED"))
    claimed = {c.owner.casefold() for c in data.claims.values()}
    idle = sorted(k.name for k in data.endpoint_keys if k.name.casefold() not in claimed and k.name != "local")
    if idle:
        click.echo(f"enrolled keys holding no name: {', '.join(idle)}", err=True)


@endpoints_group.command("forget")
@click.argument("name")
@shared
def endpoints_forget(name: str) -> None:
    """Release NAME (and revoke a key enrolled for it); a connected endpoint of that
    name is disconnected within about a second."""
    try:
        claim, key = _store().forget(name)
    except OrbitError as exc:
        raise _fail(exc) from None
    what = [f"released the name {claim.name!r} (held by key {claim.owner!r})"] if claim else []
    if key is not None:
        what.append(f"revoked the endpoint key enrolled for {key.name!r}")
    click.echo("; ".join(what), err=True)
