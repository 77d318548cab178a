"""``GlobusClient``: the application-side helper of the ``globus`` plugin.

Mirrors the session's methods one to one (names, parameters, defaults and return
shapes of the seed), each a ``POST /{endpoint}/globus/{method}``. It imports nothing
server-side: no FastAPI, no globus-sdk.

    globus = ec.get_plugin("globus")
    globus.register_session(access_token="...", local_collection="...")
    sub = globus.submit_transfer(src, "local", [{"source": "/a/", "destination": "/~/b/", "recursive": True}])
    globus.task_wait(sub["task_id"], timeout=60)

Credentials are sent once, in the ``register_session`` body, and kept nowhere on
this side: not in attributes, reprs, log lines or error messages.

Results are Globus's own documents (``DATA``, ``total``, ...). Each also carries the
keys the original Orbit's results had (``ls``: ``collection``, ``path``, ``entries``;
``list_tasks``: ``tasks``; ``endpoint_search``: ``endpoints``), added here so scripts
written for it run unchanged while nothing extra crosses the wire (docs/compat.md).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ...client.bridge import seconds_arg
from ...client.plugin import PluginClient
from ...errors import UsageError

#: seconds the bridge/HTTP timeouts exceed a server-side wait
WAIT_MARGIN = 30.0
#: the bridge caps X-Orbit-Timeout at 3600 s; longer waits are split into slices
MAX_SLICE = 3000.0
_REMEMBER = 10_000
#: the keys the original Orbit's results had, added client-side, by Globus document type
ORIGINAL_KEYS: dict[str, tuple[str, ...]] = {
    "file_list": ("entries", "collection"),
    "task_list": ("tasks",),
    "endpoint_list": ("endpoints",),
}


def globus_document(result: Any) -> Any:
    """``result`` without the original Orbit's keys: the document as Globus sent it.

    For printing it (the CLI's JSON output mirrors the Globus CLI's), where the added
    keys would only repeat ``DATA``.
    """
    if not isinstance(result, dict):
        return result
    added = ORIGINAL_KEYS.get(str(result.get("DATA_TYPE")), ())
    return {k: v for k, v in result.items() if k not in added}


def _listed(doc: Any, key: str) -> dict[str, Any]:
    """Globus's list document plus the original's name for its ``DATA`` (the same list)."""
    out = dict(doc)
    out.setdefault(key, out.get("DATA", []))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _body(**kwargs: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in kwargs.items() if v is not None}


# Arguments are shaped here (lists built, ids turned into strings) before they are sent;
# a value of the wrong shape is a UsageError naming the argument, not a TypeError from
# the shaping itself. Values of the right shape but wrong content are the endpoint's to
# judge (a 422 naming the field).


def _records(value: Any, name: str, example: str) -> list[dict[str, Any]]:
    """A list of dicts (``items``, ``filter_rules``); one dict alone is the usual slip."""
    if isinstance(value, Mapping):
        raise UsageError(f"{name} must be a list of dicts; wrap the single one in a list: {name}=[{example}]")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UsageError(f"{name} must be a list of dicts such as [{example}], got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise UsageError(f"{name}[{index}] must be a dict such as {example}, got {type(item).__name__}")
        out.append(dict(item))
    return out


def _strings(value: Any, name: str, what: str) -> list[str]:
    """One string or a list of them (paths, statuses, ids): always a list of strings."""
    if isinstance(value, (str, uuid.UUID)):
        return [str(value)]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise UsageError(f"{name} must be {what} or a list of them, got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, (str, uuid.UUID)):
            raise UsageError(f"{name}[{index}] must be {what}, got {type(item).__name__}")
        out.append(str(item))
    return out


class GlobusClient(PluginClient):
    """Client of the endpoint's ``globus`` plugin (see docs/globus.md)."""

    plugin_name: ClassVar[str] = "globus"
    requires_credentials: ClassVar[bool] = True
    secret_fields: ClassVar[frozenset[str]] = frozenset({"access_token", "refresh_token", "client_secret"})

    def __init__(self, endpoint_client: Any, name: str | None = None, **session_kwargs: Any) -> None:
        self._submitted: OrderedDict[str, None] = OrderedDict()
        super().__init__(endpoint_client, name, **session_kwargs)

    def __repr__(self) -> str:  # never the credential: only where and which session
        sid = f"{self._sid[:8]}..." if self._sid else None
        return f"GlobusClient(endpoint={self._ec.name!r}, sid={sid!r})"

    # -- sessions --------------------------------------------------------------
    def register_session(  # type: ignore[override]
        self,
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
        local_collection: str | None = None,
        *,
        client_secret: str | None = None,
        track: Sequence[str] | None = None,
    ) -> str:
        """Open a session with one Globus credential; returns the session id.

        Give ``access_token`` (not renewed: re-register when it lapses), or
        ``refresh_token`` + ``client_id`` (renewed transparently), or ``client_id`` +
        ``client_secret`` (a confidential client, client-credentials grant). Calling it
        again (e.g. with a fresh token) replaces the session and re-attaches the tasks
        this client submitted, so their notifications continue.

        :param local_collection: what ``"local"`` means for this session (overrides the
            endpoint's discovered collection)
        :param track: task ids to watch from the start (re-attach after a restart)
        """
        tracked = _strings(track, "track", "a task id") if track is not None else []
        ids = list(dict.fromkeys([*tracked, *(self._submitted if self._sid else [])]))
        return super().register_session(
            access_token=access_token,
            refresh_token=refresh_token,
            client_id=_jsonable(client_id),
            client_secret=client_secret,
            local_collection=_jsonable(local_collection),
            track=[str(t) for t in ids] or None,
        )

    def _remember(self, task_id: str) -> None:
        self._submitted[task_id] = None
        while len(self._submitted) > _REMEMBER:
            self._submitted.popitem(last=False)

    def _wait_call(self, route: str, wait: float, **kwargs: Any) -> Any:
        sid = self._ensure_session()
        # the bridge waits ``wait + WAIT_MARGIN`` (X-Orbit-Timeout); the HTTP timeout adds its own margin
        return self._ec.call(self.name, route, {"sid": sid, **kwargs}, timeout=wait + WAIT_MARGIN)

    # -- transfers -------------------------------------------------------------
    def submit_transfer(
        self,
        source: str | uuid.UUID | None,
        destination: str | uuid.UUID | None,
        items: Iterable[Mapping[str, Any]],
        label: str | None = None,
        sync_level: str | int | None = None,
        *,
        verify_checksum: bool | None = None,
        preserve_timestamp: bool | None = None,
        encrypt_data: bool | None = None,
        deadline: str | _dt.datetime | None = None,
        skip_source_errors: bool | None = None,
        fail_on_quota_errors: bool | None = None,
        delete_destination_extra: bool | None = None,
        notify_on_succeeded: bool | None = None,
        notify_on_failed: bool | None = None,
        notify_on_inactive: bool | None = None,
        source_local_user: str | None = None,
        destination_local_user: str | None = None,
        filter_rules: Iterable[Mapping[str, Any]] | None = None,
        submission_id: str | uuid.UUID | None = None,
        fail_fast: bool = False,
    ) -> dict[str, Any]:
        """Submit a transfer; returns ``{task_id, submission_id, status}`` (plus ``code``, ``message``).

        :param source: collection UUID, or ``"local"``/None for the local collection
        :param items: ``[{"source", "destination", "recursive"?}]`` (non-empty)
        :param sync_level: ``exists``/``size``/``mtime``/``checksum`` or 0-3
        :param filter_rules: ``[{"name": "*.tmp", "method": "exclude", "type": "file"}]``
        :param submission_id: reuse one for an idempotent retry (Globus answers ``Duplicate``)
        :param fail_fast: cancel the task as soon as Globus reports a fault on it
        """
        res = self._call(
            "submit_transfer",
            **_body(
                source=source,
                destination=destination,
                items=_records(items, "items", "{'source': '/data/in/', 'destination': '/~/out/', 'recursive': True}"),
                label=label,
                sync_level=sync_level,
                verify_checksum=verify_checksum,
                preserve_timestamp=preserve_timestamp,
                encrypt_data=encrypt_data,
                deadline=deadline,
                skip_source_errors=skip_source_errors,
                fail_on_quota_errors=fail_on_quota_errors,
                delete_destination_extra=delete_destination_extra,
                notify_on_succeeded=notify_on_succeeded,
                notify_on_failed=notify_on_failed,
                notify_on_inactive=notify_on_inactive,
                source_local_user=source_local_user,
                destination_local_user=destination_local_user,
                filter_rules=(
                    _records(filter_rules, "filter_rules", "{'name': '*.tmp', 'method': 'exclude'}")
                    if filter_rules is not None else None
                ),
                submission_id=submission_id,
                fail_fast=fail_fast or None,
            ),
        )
        self._remember(res["task_id"])
        return dict(res)

    def delete(
        self,
        collection: str | uuid.UUID | None,
        paths: str | Sequence[str],
        recursive: bool = False,
        label: str | None = None,
        *,
        ignore_missing: bool | None = None,
        interpret_globs: bool | None = None,
        deadline: str | _dt.datetime | None = None,
        local_user: str | None = None,
        submission_id: str | uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Submit a Globus delete task; returns ``{task_id, submission_id, status}``."""
        res = self._call(
            "delete",
            **_body(
                collection=collection,
                paths=_strings(paths, "paths", "a path"),
                recursive=recursive,
                label=label,
                ignore_missing=ignore_missing,
                interpret_globs=interpret_globs,
                deadline=deadline,
                local_user=local_user,
                submission_id=submission_id,
            ),
        )
        self._remember(res["task_id"])
        return dict(res)

    # -- tasks -----------------------------------------------------------------
    def get_task(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """The Globus task document (``status`` is ACTIVE / INACTIVE / SUCCEEDED / FAILED)."""
        return dict(self._call("get_task", task_id=str(task_id)))

    def task_wait(self, task_id: str | uuid.UUID, timeout: float = 60, polling_interval: float = 10) -> dict[str, Any]:
        """Wait until the task is no longer ACTIVE; returns ``{task_id, completed}`` (plus ``status``).

        Like globus-sdk's ``task_wait``, INACTIVE counts as completed. The endpoint
        holds no thread while waiting; ``polling_interval`` caps how stale its view
        of the task may get.
        """
        remaining = seconds_arg(timeout, "timeout", "task_wait", allow_zero=True)
        while True:
            part = min(remaining, MAX_SLICE)
            res = dict(self._wait_call("task_wait", part, task_id=str(task_id), timeout=part, polling_interval=polling_interval))
            remaining -= part
            if res.get("completed") or remaining <= 0:
                return res

    def wait_all(self, task_ids: Iterable[str | uuid.UUID], timeout: float = 60) -> dict[str, Any]:
        """Wait for many tasks in one call: ``{completed, tasks: {id: status}, pending, not_found}``."""
        ids = _strings(task_ids, "task_ids", "a task id")
        remaining = seconds_arg(timeout, "timeout", "wait_all", allow_zero=True)
        while True:
            part = min(remaining, MAX_SLICE)
            res = dict(self._wait_call("wait_all", part, task_ids=ids, timeout=part))
            remaining -= part
            if res.get("completed") or remaining <= 0:
                return res

    def cancel_task(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """Cancel a task; Globus' result (``code``: Canceled / CancelAccepted / TaskComplete)."""
        return dict(self._call("cancel_task", task_id=str(task_id)))

    def list_tasks(
        self,
        limit: int = 100,
        *,
        status: str | Sequence[str] | None = None,
        offset: int = 0,
        type: str | Sequence[str] | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """The identity's tasks, newest first (Globus ``task_list`` document: ``DATA``, ``total``...;
        ``tasks`` is ``DATA``, the original Orbit's key)."""
        return _listed(
            self._call(
                "list_tasks",
                **_body(
                    limit=limit,
                    offset=offset,
                    status=_strings(status, "status", "a task status") if status else None,
                    type=_strings(type, "type", "a task type") if type else None,
                    label=label,
                ),
            ),
            "tasks",
        )

    def task_events(self, task_id: str | uuid.UUID, limit: int = 10, *, offset: int = 0, errors_only: bool = False) -> dict[str, Any]:
        """The task's event list, newest first."""
        return dict(self._call("task_events", task_id=str(task_id), limit=limit, offset=offset, errors_only=errors_only))

    def successful_transfers(self, task_id: str | uuid.UUID, marker: int | None = None) -> dict[str, Any]:
        """One page of the task's successful transfers (``DATA``, ``next_marker``)."""
        return dict(self._call("successful_transfers", **_body(task_id=str(task_id), marker=marker)))

    def skipped_errors(self, task_id: str | uuid.UUID, marker: int | None = None) -> dict[str, Any]:
        """One page of the task's skipped errors (``DATA``, ``next_marker``)."""
        return dict(self._call("skipped_errors", **_body(task_id=str(task_id), marker=marker)))

    def pause_info(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """Pause rules and messages that affect the task."""
        return dict(self._call("pause_info", task_id=str(task_id)))

    def track(self, task_ids: Iterable[str | uuid.UUID] | None = None, timeout: float = 60) -> dict[str, Any]:
        """Watch existing tasks (all ACTIVE/INACTIVE ones of the identity if None) and get
        their notifications: ``{tracked, finished: {id: status}, not_found}``.

        Ids Globus' task list does not show are looked up one by one for at most
        ``timeout`` seconds; those not reached are listed in ``unchecked``.
        """
        ids = None if task_ids is None else _strings(task_ids, "task_ids", "a task id")
        wait = seconds_arg(timeout, "timeout", "track", allow_zero=True)
        for tid in ids or []:
            self._remember(tid)
        return dict(self._wait_call("track", wait, task_ids=ids, timeout=wait))

    def session_info(self) -> dict[str, Any]:
        """Auth mode, local collection, tracked tasks and poller counters of this session."""
        return dict(self._call("session_info"))

    # -- filesystem ------------------------------------------------------------
    def ls(
        self,
        collection: str | uuid.UUID | None,
        path: str | None = None,
        *,
        show_hidden: bool | None = None,
        filter: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        orderby: str | None = None,
        local_user: str | None = None,
    ) -> dict[str, Any]:
        """List a directory (Globus ``file_list`` document: ``DATA`` entries, ``path``...).

        The original Orbit's keys too: ``entries`` (``DATA``), ``collection`` (the
        collection's UUID, ``"local"`` resolved) and ``path``.
        """
        res = _listed(
            self._call(
                "ls",
                **_body(
                    collection=collection,
                    path=path,
                    show_hidden=show_hidden,
                    filter=filter if isinstance(filter, str) or filter is None else _strings(filter, "filter", "a filter"),
                    limit=limit,
                    offset=offset,
                    orderby=orderby,
                    local_user=local_user,
                ),
            ),
            "entries",
        )
        given = None if collection in (None, "", "local") else str(collection)
        res.setdefault("collection", res.get("endpoint") or given)
        res.setdefault("path", path)
        return res

    def stat(self, collection: str | uuid.UUID | None, path: str, *, local_user: str | None = None) -> dict[str, Any]:
        """One file document (name, type, size, last_modified, permissions...)."""
        return dict(self._call("stat", **_body(collection=collection, path=path, local_user=local_user)))

    def mkdir(self, collection: str | uuid.UUID | None, path: str, *, local_user: str | None = None) -> dict[str, Any]:
        """Create a directory; Globus' result (``code`` DirectoryCreated)."""
        return dict(self._call("mkdir", **_body(collection=collection, path=path, local_user=local_user)))

    def rename(self, collection: str | uuid.UUID | None, oldpath: str, newpath: str, *, local_user: str | None = None) -> dict[str, Any]:
        """Rename a file or directory; Globus' result (``code`` FileRenamed)."""
        return dict(self._call("rename", **_body(collection=collection, oldpath=oldpath, newpath=newpath, local_user=local_user)))

    # -- collections -----------------------------------------------------------
    def endpoint_search(
        self,
        filter_text: str | None = None,
        limit: int = 25,
        *,
        filter_scope: str | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Search collections (``DATA``, ``has_next_page``; ``endpoints`` is ``DATA``, the
        original Orbit's key); without text, your own ones."""
        return _listed(
            self._call("endpoint_search", **_body(filter_text=filter_text, limit=limit, filter_scope=filter_scope, offset=offset)),
            "endpoints",
        )

    def get_endpoint(self, endpoint_id: str | uuid.UUID) -> dict[str, Any]:
        """A collection/endpoint document (``"local"`` works too)."""
        return dict(self._call("get_endpoint", endpoint_id=str(endpoint_id)))

    # -- added for the CLI's Globus CLI parity (task update, whoami, task list --filter-*) --
    def update_task(self, task_id: str | uuid.UUID, *, label: str | None = None, deadline: str | _dt.datetime | None = None) -> dict[str, Any]:
        """Give a task that has not ended a new label and/or deadline; Globus' result (``code`` Updated)."""
        return dict(self._call("update_task", **_body(task_id=str(task_id), label=label, deadline=deadline)))

    def whoami(self) -> dict[str, Any]:
        """Globus Auth's userinfo for this session's credential (``sub``, ``preferred_username``,
        ``identity_set``): whose identity the session's tasks belong to."""
        return dict(self._call("whoami"))

    def task_list(
        self,
        limit: int = 10,
        *,
        offset: int = 0,
        task_id: str | uuid.UUID | Sequence[str | uuid.UUID] | None = None,
        type: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        label: str | Sequence[str] | None = None,
        requested_after: str | _dt.datetime | None = None,
        requested_before: str | _dt.datetime | None = None,
        completed_after: str | _dt.datetime | None = None,
        completed_before: str | _dt.datetime | None = None,
    ) -> dict[str, Any]:
        """:meth:`list_tasks` with every filter of Globus' ``task_list``, newest first.

        :param label: patterns (``=`` exact, ``!`` not, ``~`` glob ignoring case, ``!~``);
            several are ORed
        :param requested_after: times are ISO 8601; without a zone they are UTC
        """
        return dict(
            self._call(
                "list_tasks",
                **_body(
                    limit=limit,
                    offset=offset,
                    task_id=_strings(task_id, "task_id", "a task id") if task_id is not None else None,
                    type=_strings(type, "type", "a task type") if type else None,
                    status=_strings(status, "status", "a task status") if status else None,
                    label=label if isinstance(label, str) or label is None else _strings(label, "label", "a label pattern"),
                    requested_after=requested_after,
                    requested_before=requested_before,
                    completed_after=completed_after,
                    completed_before=completed_before,
                ),
            )
        )
