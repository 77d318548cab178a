"""``GlobusClient``: the application-side helper of the ``globus`` plugin.

Mirrors the session's methods one to one (names, parameters, defaults and return
shapes of the seed), each a ``POST /{endpoint}/globus/{method}``. It imports nothing
server-side: no FastAPI, no globus-sdk.

    globus = ec.get_plugin("globus")
    globus.register_session(access_token="...", local_collection="...")
    sub = globus.submit_transfer(src, "local", [{"source": "/a/", "destination": "/~/b/", "recursive": True}])
    globus.task_wait(sub["task_id"], timeout=60)

Credentials travel in the ``register_session`` body. So that the client can open its
session again by itself after an endpoint restart, they stay in this process's memory
(:class:`~radical.orbit.client.plugin.SessionArgs`): never in a repr, a log line, an
error message or a pickle, never on disk; ``register_session(..., reopen=False)``
keeps nothing. Each submission carries a ``submission_id`` (fetched from Globus unless given),
so a retry after a timeout returns the task the first attempt made, never a second.

Results are Globus's own documents (``DATA``, ``total``, ...). Each also carries the
keys the original Orbit's results had (``ls``: ``collection``, ``path``, ``entries``;
``list_tasks``: ``tasks``; ``endpoint_search``: ``endpoints``), added here so scripts
written for it run unchanged while nothing extra crosses the wire (docs/compat.md).
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ...client.bridge import seconds_arg
from ...client.events import RECONNECT
from ...client.plugin import PluginClient
from ...errors import (
    BridgeUnavailableError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    OrbitError,
)
from .recall import TaskMemory, may_still_run
from .shapes import (
    ORIGINAL_KEYS,
    body,
    globus_document,
    jsonable,
    listed,
    records,
    strings,
    task_id_text,
)

__all__ = ["MAX_SLICE", "ORIGINAL_KEYS", "WAIT_MARGIN", "GlobusClient", "globus_document"]

log = logging.getLogger(__name__)

#: seconds the bridge/HTTP timeouts exceed a server-side wait
WAIT_MARGIN = 30.0
#: the bridge caps X-Orbit-Timeout at 3600 s; longer waits are split into slices
MAX_SLICE = 3000.0
#: a wait that comes back unfinished with less than this left is over
WAIT_SLACK = 0.5
#: errors that mean the endpoint (or the bridge) is away for now: a wait rides them out
AWAY = (EndpointUnavailableError, EndpointNotFoundError, BridgeUnavailableError)


class GlobusClient(PluginClient):
    """Client of the endpoint's ``globus`` plugin (see docs/globus.md)."""

    plugin_name: ClassVar[str] = "globus"
    requires_credentials: ClassVar[bool] = True
    secret_fields: ClassVar[frozenset[str]] = frozenset({"access_token", "refresh_token", "client_secret"})
    probe_route: ClassVar[str | None] = "session_info"

    def __init__(self, endpoint_client: Any, name: str | None = None, **session_kwargs: Any) -> None:
        #: the tasks this client submitted or tracked, with the last status it learned
        self._tasks = TaskMemory()
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
        reopen: bool | None = None,
    ) -> str:
        """Open a session with one Globus credential; returns the session id.

        Give ``access_token`` (not renewed: re-register when it lapses), or
        ``refresh_token`` + ``client_id`` (renewed transparently), or ``client_id`` +
        ``client_secret`` (a confidential client, client-credentials grant). Calling it
        again (e.g. with a fresh token) hands the session's tasks over to the new one
        on the endpoint (nothing is told twice) and re-attaches the tasks this client
        has not seen end, so their notifications continue.

        :param local_collection: what ``"local"`` means for this session (overrides the
            endpoint's discovered collection)
        :param track: task ids to watch from the start (re-attach after a restart)
        :param reopen: re-open the session by itself when the endpoint loses it (a
            restart), with this credential kept in this process's memory only
            (default True; False keeps nothing)
        """
        tracked = strings(track, "track", "a task id") if track is not None else []
        self._set_reopen(reopen)
        for task_id in tracked:
            self._tasks.learn(task_id)
        args = {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "client_id": jsonable(client_id),
            "client_secret": client_secret,
            "local_collection": jsonable(local_collection),
        }
        with self._lock:  # the session to replace is the current one, even if re-opened meanwhile
            old = self._sid
            ids = self._tasks.unfinished(tracked) if old else tracked
            # ``replaces``: the endpoint moves the old session's tasks to the new one and closes it
            return self._open(args, {"track": ids or None, "replaces": old}, close_old=False)

    def _reattach(self) -> dict[str, Any]:
        return {"track": self._tasks.unfinished() or None}

    def _observe(self, topic: str, payload: dict[str, Any]) -> None:
        if topic == "transfer_status" and isinstance(payload.get("task_id"), str):
            self._tasks.learn_known({payload["task_id"]: payload.get("status")})

    def _wait_call(self, route: str, wait: float, **kwargs: Any) -> Any:
        # the bridge waits ``wait + WAIT_MARGIN`` (X-Orbit-Timeout); the HTTP timeout adds its own margin
        return self._send(route, kwargs, timeout=wait + WAIT_MARGIN)

    def _wait(self, route: str, timeout: float, ask: Callable[[float], dict[str, Any]]) -> dict[str, Any]:
        """Repeat ``ask(seconds)`` until it says ``completed`` or ``timeout`` passes.

        Waits beyond the bridge's cap go in slices; a wait cut short (its session
        handed over to a new one) goes on with the time left; and while the endpoint
        or the bridge is away (a restart) it waits for them to come back, unless
        re-opening is off. A call that failed on the way is raised at the deadline.
        """
        deadline = time.monotonic() + timeout
        left, attempt = timeout, 0
        while True:
            try:
                res = ask(min(left, MAX_SLICE))
            except AWAY as exc:
                left = deadline - time.monotonic()
                if not self.reopen or left <= 0:
                    raise
                pause = min(left, RECONNECT.delay(attempt))
                log.info("%s/%s/%s: %s; asking again in %.1f s (%.0f s left)", self._ec.name, self.name, route, exc.message, pause, left)
                time.sleep(pause)
                attempt += 1
            else:
                attempt = 0
                if res.get("completed") or deadline - time.monotonic() < WAIT_SLACK:
                    return res
            left = max(0.0, deadline - time.monotonic())

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
        :param submission_id: Globus's idempotency key; when not given, one is fetched
            from Globus first (as globus-sdk does), so the client holds it before it submits. After an error whose outcome is open (502/503/504: the request may
            still run) the error's message and ``details["submission_id"]`` name it:
            retrying with it returns the same task (Globus answers ``Duplicate``)
        :param fail_fast: cancel the task as soon as Globus reports a fault on it
        """
        return self._submit(
            "submit_transfer",
            "transfer",
            body(
                source=source,
                destination=destination,
                items=records(items, "items", "{'source': '/data/in/', 'destination': '/~/out/', 'recursive': True}"),
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
                    records(filter_rules, "filter_rules", "{'name': '*.tmp', 'method': 'exclude'}")
                    if filter_rules is not None else None
                ),
                submission_id=submission_id,
                fail_fast=fail_fast or None,
            ),
        )

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
        """Submit a Globus delete task; returns ``{task_id, submission_id, status}``.

        ``submission_id`` as for :meth:`submit_transfer`: fetched first unless given, named
        by an error that leaves the outcome open, and a retry with it returns the same task.
        """
        return self._submit(
            "delete",
            "delete",
            body(
                collection=collection,
                paths=strings(paths, "paths", "a path"),
                recursive=recursive,
                label=label,
                ignore_missing=ignore_missing,
                interpret_globs=interpret_globs,
                deadline=deadline,
                local_user=local_user,
                submission_id=submission_id,
            ),
        )

    def _submit(self, route: str, what: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send a task submission; an error that leaves its outcome open names the ``submission_id``.

        Without a given id, the endpoint first checks the request and fetches one from
        Globus (``GET /submission_id``, as globus-sdk does for a submission without one):
        the client holds it before the submission goes out, and bad input costs no
        Globus call. A submission that reuses an id gets the task it already made.
        """
        submission_id = str(request.get("submission_id") or self._call("submission_id", kind=what, request=request)["value"])
        request["submission_id"] = submission_id
        try:
            res = dict(self._call(route, **request))
        except OrbitError as exc:
            raise may_still_run(exc, what, submission_id) from None
        self._tasks.learn(str(res["task_id"]), res.get("status"))
        return res

    # -- tasks -----------------------------------------------------------------
    def get_task(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """The Globus task document (``status`` is ACTIVE / INACTIVE / SUCCEEDED / FAILED)."""
        tid = task_id_text(task_id)
        doc = dict(self._call("get_task", task_id=tid))
        if tid in self._tasks:
            self._tasks.learn(tid, doc.get("status"))
        return doc

    def task_wait(self, task_id: str | uuid.UUID, timeout: float = 60, polling_interval: float = 10) -> dict[str, Any]:
        """Wait until the task is no longer ACTIVE; returns ``{task_id, completed}`` (plus ``status``).

        Like globus-sdk's ``task_wait``, INACTIVE counts as completed. The endpoint
        holds no thread while waiting; ``polling_interval`` caps how stale its view
        of the task may get. An endpoint restart meanwhile only makes it take longer:
        the wait goes on once the endpoint is back (the session re-opened by itself).
        """
        seconds = seconds_arg(timeout, "timeout", "task_wait", allow_zero=True)
        tid = task_id_text(task_id)

        def ask(part: float) -> dict[str, Any]:
            return dict(self._wait_call("task_wait", part, task_id=tid, timeout=part, polling_interval=polling_interval))

        res = self._wait("task_wait", seconds, ask)
        if tid in self._tasks:
            self._tasks.learn(tid, res.get("status"))
        return res

    def wait_all(self, task_ids: Iterable[str | uuid.UUID], timeout: float = 60) -> dict[str, Any]:
        """Wait for many tasks in one call: ``{completed, tasks: {id: status}, pending, not_found}``."""
        ids = strings(task_ids, "task_ids", "a task id")
        seconds = seconds_arg(timeout, "timeout", "wait_all", allow_zero=True)
        res = self._wait("wait_all", seconds, lambda part: dict(self._wait_call("wait_all", part, task_ids=ids, timeout=part)))
        if isinstance(res.get("tasks"), dict):
            self._tasks.learn_known(res["tasks"])
        return res

    def cancel_task(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """Cancel a task; Globus' result (``code``: Canceled / CancelAccepted / TaskComplete)."""
        return dict(self._call("cancel_task", task_id=task_id_text(task_id)))

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
        return listed(
            self._call(
                "list_tasks",
                **body(
                    limit=limit,
                    offset=offset,
                    status=strings(status, "status", "a task status") if status else None,
                    type=strings(type, "type", "a task type") if type else None,
                    label=label,
                ),
            ),
            "tasks",
        )

    def task_events(self, task_id: str | uuid.UUID, limit: int = 10, *, offset: int = 0, errors_only: bool = False) -> dict[str, Any]:
        """The task's event list, newest first."""
        return dict(self._call("task_events", task_id=task_id_text(task_id), limit=limit, offset=offset, errors_only=errors_only))

    def successful_transfers(self, task_id: str | uuid.UUID, marker: int | None = None) -> dict[str, Any]:
        """One page of the task's successful transfers (``DATA``, ``next_marker``)."""
        return dict(self._call("successful_transfers", **body(task_id=task_id_text(task_id), marker=marker)))

    def skipped_errors(self, task_id: str | uuid.UUID, marker: int | None = None) -> dict[str, Any]:
        """One page of the task's skipped errors (``DATA``, ``next_marker``)."""
        return dict(self._call("skipped_errors", **body(task_id=task_id_text(task_id), marker=marker)))

    def pause_info(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        """Pause rules and messages that affect the task."""
        return dict(self._call("pause_info", task_id=task_id_text(task_id)))

    def track(self, task_ids: Iterable[str | uuid.UUID] | None = None, timeout: float = 60) -> dict[str, Any]:
        """Watch existing tasks (all ACTIVE/INACTIVE ones of the identity if None) and get
        their notifications: ``{tracked, finished: {id: status}, not_found}``.

        Ids Globus' task list does not show are looked up one by one for at most
        ``timeout`` seconds; those not reached are listed in ``unchecked``.
        """
        ids = None if task_ids is None else strings(task_ids, "task_ids", "a task id")
        wait = seconds_arg(timeout, "timeout", "track", allow_zero=True)
        res = dict(self._wait_call("track", wait, task_ids=ids, timeout=wait))
        for tid in [*(ids or []), *res.get("tracked", ())]:
            self._tasks.learn(str(tid))
        if isinstance(res.get("finished"), dict):
            self._tasks.learn_known(res["finished"])
        return res

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
        res = listed(
            self._call(
                "ls",
                **body(
                    collection=collection,
                    path=path,
                    show_hidden=show_hidden,
                    filter=filter if isinstance(filter, str) or filter is None else strings(filter, "filter", "a filter"),
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
        return dict(self._call("stat", **body(collection=collection, path=path, local_user=local_user)))

    def mkdir(self, collection: str | uuid.UUID | None, path: str, *, local_user: str | None = None) -> dict[str, Any]:
        """Create a directory; Globus' result (``code`` DirectoryCreated)."""
        return dict(self._call("mkdir", **body(collection=collection, path=path, local_user=local_user)))

    def rename(self, collection: str | uuid.UUID | None, oldpath: str, newpath: str, *, local_user: str | None = None) -> dict[str, Any]:
        """Rename a file or directory; Globus' result (``code`` FileRenamed)."""
        return dict(self._call("rename", **body(collection=collection, oldpath=oldpath, newpath=newpath, local_user=local_user)))

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
        return listed(
            self._call("endpoint_search", **body(filter_text=filter_text, limit=limit, filter_scope=filter_scope, offset=offset)),
            "endpoints",
        )

    def get_endpoint(self, endpoint_id: str | uuid.UUID) -> dict[str, Any]:
        """A collection/endpoint document (``"local"`` works too)."""
        return dict(self._call("get_endpoint", endpoint_id=str(endpoint_id)))

    # -- added for the CLI's Globus CLI parity (task update, whoami, task list --filter-*) --
    def update_task(self, task_id: str | uuid.UUID, *, label: str | None = None, deadline: str | _dt.datetime | None = None) -> dict[str, Any]:
        """Give a task that has not ended a new label and/or deadline; Globus' result (``code`` Updated)."""
        return dict(self._call("update_task", **body(task_id=task_id_text(task_id), label=label, deadline=deadline)))

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
                **body(
                    limit=limit,
                    offset=offset,
                    task_id=strings(task_id, "task_id", "a task id") if task_id is not None else None,
                    type=strings(type, "type", "a task type") if type else None,
                    status=strings(status, "status", "a task status") if status else None,
                    label=label if isinstance(label, str) or label is None else strings(label, "label", "a label pattern"),
                    requested_after=requested_after,
                    requested_before=requested_before,
                    completed_after=completed_after,
                    completed_before=completed_before,
                ),
            )
        )
