"""``GlobusSession``: one client's Globus credential, its operations and its poller.

Parts::

    GlobusSession   the operations (submit_transfer, delete, get_task, task_wait, ls, ...),
     │              tracking (track) and waiting (task_wait, wait_all)
     ├─ tc          globus_sdk.TransferClient bound to the credential (.credentials),
     │              its HTTP session tuned by .transport
     ├─ fetch       TaskFetch (.fetch): the blocking task_list / get_task / event reads
     ├─ tracker     TaskTracker (.tracker): task state, notifications, poll interval
     │              rule; no globus-sdk in there
     ├─ poller      Poller (.poller): the background loop, only while a task is active
     └─ recorder    JournalRecorder (.recorder): every task change, to the endpoint's task
                    journal (None without one); identify() and adopt() re-adopt the
                    unfinished tasks of the credential's Globus identity from it

Threads and the event loop::

    route handler (event loop) ──await──▶ session._run(fn) ──▶ executor (injected; bounded,
                                                               sized for I/O)
                                                               globus-sdk call (blocking)

Nothing here blocks the loop: every globus-sdk call (the submission id fetch
included) runs on the executor the plugin hands in, never the default pool. Waiting
(``task_wait``, ``wait_all``) holds no thread at all: waiters sleep on an
``asyncio.Event`` the poller pulses after each cycle.

The poll loop and the waits live in :mod:`.poller`.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar

import globus_sdk
from globus_sdk import MISSING

from ...errors import NotFoundError, PermissionDeniedError
from ..base import PluginSession
from . import models as m
from .credentials import APP_NAME, Refreshes
from .errors import map_globus_errors
from .fetch import TaskFetch
from .identity import credential_identities
from .journal import AsyncJournal, JournalEntry, JournalRecorder
from .local import resolve_collection
from .options import PollSettings
from .poller import Poller
from .tracker import TERMINAL, TaskTracker, Tracked

if TYPE_CHECKING:
    from ..base import Plugin

T = TypeVar("T")


def _opt(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments minus the ones left unset (so globus-sdk omits them)."""
    return {k: v for k, v in kwargs.items() if v is not None}


class GlobusSession(PluginSession):
    """One client's Globus session on this endpoint.

    :param transfer_client: bound to the client's credential (lives only here, in memory)
    :param auth_mode: ``access_token`` | ``refresh_token`` | ``client_credentials``
    :param local_collection: what ``"local"`` means for this session (may be None)
    :param executor: where the blocking globus-sdk calls run; its owner (the plugin)
        shuts it down, the session only submits to it
    :param stop_retrying: set on close, so calls in flight stop retrying
        (see :func:`.credentials.retry_config`)
    :param refreshes: the counter the credential's renewing authorizer calls
    :param journal: the endpoint's task journal (None: tasks are not journaled)
    """

    def __init__(
        self,
        plugin: Plugin,
        sid: str,
        *,
        transfer_client: globus_sdk.TransferClient,
        auth_mode: str,
        local_collection: str | None,
        local_source: str,
        executor: Executor,
        settings: PollSettings | None = None,
        stop_retrying: threading.Event | None = None,
        refreshes: Refreshes | None = None,
        journal: AsyncJournal | None = None,
    ) -> None:
        super().__init__(plugin, sid)
        self.stop_retrying = stop_retrying or threading.Event()
        self.tc = transfer_client
        self.auth_mode = auth_mode
        self.local_collection = local_collection
        self.local_source = local_source
        self.settings = settings or PollSettings()
        self.executor = executor
        self.refreshes = refreshes or Refreshes(sid)
        self.refreshes.arm()  # the client is built: tokens fetched from now on are renewals
        name = f"globus session {sid[:8]}..."
        self.name = name
        self.fetch = TaskFetch(transfer_client, self.settings.chunk, name=name)
        self.recorder = JournalRecorder(journal, self._want_identity) if journal is not None else None
        #: the Globus identity ids of the credential, primary first (see :meth:`identify`)
        self.identities: list[str] = []
        self._identifying: asyncio.Task[list[str]] | None = None
        #: the background re-adoption from the journal (the plugin starts it)
        self.adoption: asyncio.Task[None] | None = None
        self.tracker = TaskTracker(self.settings, self.notify, name=name, recorder=self.recorder)
        self.poller = Poller(
            self.tracker, self.fetch, self._run, cancel_task=self.tc.cancel_task, auth_mode=auth_mode, on_cycle=self.touch
        )

    def __repr__(self) -> str:
        return f"GlobusSession(sid={self.sid[:8]}..., auth={self.auth_mode}, tracked={len(self.tracker.tasks)})"

    # -- plumbing --------------------------------------------------------------
    async def _run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking globus-sdk call on the executor, errors mapped."""
        loop = asyncio.get_running_loop()
        with map_globus_errors(auth_mode=self.auth_mode, what=what):
            result = await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        self.poller.credential_works()
        return result

    def _coll(self, value: str | None, field: str = "collection") -> str:
        return resolve_collection(value, self.local_collection, field=field)

    async def adopt(self, old: GlobusSession) -> int:
        """Take over the tasks of ``old``, a session of the same owner this one replaces
        (a new credential): their last told state comes along, so nothing already told
        is told again and nothing is fetched; ``old``'s poller stops first, so no change
        is told by both. Returns how many tasks moved over."""
        await old.poller.close()
        moved = 0
        for task_id, tracked in old.tracker.tasks.items():
            if task_id not in self.tracker:
                self.tracker.tasks[task_id] = tracked
                moved += 1
        if self.tracker.active_ids():
            self.poller.kick(self.settings.min_interval)
        return moved

    async def close(self) -> None:
        for task in (self.adoption, self._identifying):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.poller.close()
        self.stop_retrying.set()
        self.tc.close()

    # -- the task journal ------------------------------------------------------
    def _want_identity(self) -> None:
        """Start the one look-up of the credential's identity, in the background, unless it ran."""
        if self._identifying is None and not self.closed:
            self._identifying = asyncio.get_running_loop().create_task(self._identify(), name=f"{self.name} identity")

    async def identify(self) -> list[str]:
        """Which Globus identity the credential acts as (:mod:`.identity`), asked once per
        session; the tasks tracked so far are journaled under it. [] when nobody says."""
        self._want_identity()
        if self._identifying is None:  # closed
            return []
        return await self._identifying

    async def _identify(self) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            self.identities = await loop.run_in_executor(self.executor, credential_identities, self.tc, self.name)
        except RuntimeError:  # the executor shut down: the endpoint is stopping
            return []
        if self.recorder is not None and self.identities:
            self.recorder.identities = self.identities
            for t in list(self.tracker.tasks.values()):
                self.tracker.record(t)
        return self.identities

    def adopt_journaled(self, entries: list[JournalEntry]) -> list[str]:
        """Track journaled tasks again, each at the status last told about it: the next poll
        (``min_interval`` away, after the register answer is out) tells what changed
        since, once. Returns the ids adopted (not those tracked already)."""
        adopted = []
        for e in entries:
            t = Tracked(
                task_id=e.task_id, label=e.label, type=e.type, status=e.told_status, nice_status=e.nice_status,
                bytes_transferred=e.bytes, files_transferred=e.files, told=e.told_status, owner=e.owner,
            )
            if self.tracker.adopt(t):
                adopted.append(e.task_id)
        if adopted:
            self.poller.kick(self.settings.min_interval)
        return adopted

    @property
    def stats(self) -> dict[str, int]:
        """The poller's counters (Globus calls by kind, errors, notifications sent)."""
        return self.poller.stats()

    def info(self) -> dict[str, Any]:
        return {
            "auth_mode": self.auth_mode,
            "local_collection": self.local_collection,
            "local_source": self.local_source,
            "tracked": len(self.tracker.tasks),
            "active": len(self.tracker.active_ids()),
            "refreshes": self.refreshes.count,
            "poller": self.poller.info(),
        }

    # -- transfers -------------------------------------------------------------
    async def submit_transfer(self, req: m.SubmitTransferRequest) -> dict[str, Any]:
        src = self._coll(req.source, "source")
        dst = self._coll(req.destination, "destination")
        options = _opt(
            label=req.label,
            sync_level=req.sync_level_int,
            verify_checksum=req.verify_checksum,
            preserve_timestamp=req.preserve_timestamp,
            encrypt_data=req.encrypt_data,
            deadline=req.deadline,
            skip_source_errors=req.skip_source_errors,
            fail_on_quota_errors=req.fail_on_quota_errors,
            delete_destination_extra=req.delete_destination_extra,
            notify_on_succeeded=req.notify_on_succeeded,
            notify_on_failed=req.notify_on_failed,
            notify_on_inactive=req.notify_on_inactive,
            source_local_user=req.source_local_user,
            destination_local_user=req.destination_local_user,
        )

        def work() -> tuple[dict[str, Any], str | None]:
            sub_id = req.submission_id or self.tc.get_submission_id()["value"]
            tdata = globus_sdk.TransferData(src, dst, submission_id=sub_id, **options)
            for item in req.items:
                tdata.add_item(
                    item.source,
                    item.destination,
                    **_opt(recursive=item.recursive, external_checksum=item.external_checksum, checksum_algorithm=item.checksum_algorithm),
                )
            for rule in req.filter_rules or []:
                tdata.add_filter_rule(rule.name, method=rule.method, type=rule.type if rule.type else MISSING)
            res = self.tc.submit_transfer(tdata).data
            status = None
            if res.get("code") == "Duplicate":
                status = self.tc.get_task(res["task_id"])["status"]
            return dict(res), status

        res, status = await self._run(f"submit_transfer {src} -> {dst}", work)
        return self._accepted(res, status, label=req.label, kind="TRANSFER", fail_fast=req.fail_fast)

    async def submission_id(self) -> str:
        """A fresh submission id from Globus (``GET /submission_id``): what globus-sdk
        itself asks for before a submission that names none."""
        res = await self._run("get_submission_id", self.tc.get_submission_id)
        return str(res["value"])

    async def delete(self, req: m.DeleteRequest) -> dict[str, Any]:
        coll = self._coll(req.collection)
        options = _opt(
            label=req.label,
            recursive=req.recursive,
            ignore_missing=req.ignore_missing,
            interpret_globs=req.interpret_globs,
            deadline=req.deadline,
            local_user=req.local_user,
        )

        def work() -> tuple[dict[str, Any], str | None]:
            sub_id = req.submission_id or self.tc.get_submission_id()["value"]
            ddata = globus_sdk.DeleteData(coll, submission_id=sub_id, **options)
            for path in req.paths:
                ddata.add_item(path)
            res = self.tc.submit_delete(ddata).data
            status = None
            if res.get("code") == "Duplicate":
                status = self.tc.get_task(res["task_id"])["status"]
            return dict(res), status

        res, status = await self._run(f"delete on {coll}", work)
        return self._accepted(res, status, label=req.label, kind="DELETE", fail_fast=False)

    def _accepted(self, res: dict[str, Any], status: str | None, *, label: str | None, kind: str, fail_fast: bool) -> dict[str, Any]:
        task_id = str(res["task_id"])
        status = status or "ACTIVE"
        if not self.tracker.accepted(task_id, status=status, label=label, kind=kind, fail_fast=fail_fast).done:
            self.poller.kick(self.settings.min_interval)
        return {
            "task_id": task_id,
            "submission_id": res.get("submission_id"),
            "status": status,
            "code": res.get("code"),
            "message": res.get("message"),
        }

    # -- task queries ----------------------------------------------------------
    async def get_task(self, task_id: str) -> dict[str, Any]:
        asked = self.tracker.clock()
        doc = await self._run(f"get_task {task_id}", self.fetch.task, task_id)
        if task_id in self.tracker:
            await self.poller.apply([doc], asked_at=asked, answered_at=self.tracker.clock())
        return doc

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        res = await self._run(f"cancel_task {task_id}", lambda: dict(self.tc.cancel_task(task_id).data))
        res.setdefault("task_id", task_id)
        if res.get("code") != "TaskComplete" or task_id in self.tracker:
            self.tracker.watch(task_id)  # its end arrives as a transfer_status
            self.poller.kick(0.2)
        return res

    async def list_tasks(self, req: m.ListTasksRequest) -> dict[str, Any]:
        flt = req.filter_clauses()
        return await self._run(
            "list_tasks",
            lambda: dict(self.tc.task_list(limit=req.limit, offset=req.offset, orderby="request_time DESC", filter=flt).data),
        )

    async def update_task(self, req: m.UpdateTaskRequest) -> dict[str, Any]:
        """A new label and/or deadline (Globus refuses, 409, once the task has ended)."""
        data = _opt(label=req.label, deadline=str(req.deadline) if req.deadline is not None else None)
        res = await self._run(f"update_task {req.task_id}", lambda: dict(self.tc.update_task(req.task_id, data).data))
        tracked = self.tracker.get(req.task_id)
        if tracked is not None and req.label is not None:  # later notifications carry the new label
            tracked.label = req.label
            self.tracker.record(tracked)
        res.setdefault("task_id", req.task_id)
        return res

    async def task_events(self, req: m.TaskEventsRequest) -> dict[str, Any]:
        return await self._run(
            f"task_events {req.task_id}", self.fetch.events, req.task_id, limit=req.limit, offset=req.offset, errors_only=req.errors_only
        )

    async def successful_transfers(self, req: m.MarkerRequest) -> dict[str, Any]:
        kw = _opt(marker=req.marker)
        return await self._run(
            f"successful_transfers {req.task_id}", lambda: dict(self.tc.task_successful_transfers(req.task_id, **kw).data)
        )

    async def skipped_errors(self, req: m.MarkerRequest) -> dict[str, Any]:
        kw = _opt(marker=req.marker)
        return await self._run(f"skipped_errors {req.task_id}", lambda: dict(self.tc.task_skipped_errors(req.task_id, **kw).data))

    async def pause_info(self, task_id: str) -> dict[str, Any]:
        return await self._run(f"pause_info {task_id}", lambda: dict(self.tc.task_pause_info(task_id).data))

    # -- filesystem ------------------------------------------------------------
    async def ls(self, req: m.LsRequest) -> dict[str, Any]:
        coll = self._coll(req.collection)
        kw = _opt(
            path=req.path,
            show_hidden=req.show_hidden,
            limit=req.limit,
            offset=req.offset,
            orderby=req.orderby,
            filter=req.filter,
            local_user=req.local_user,
        )
        return await self._run(f"ls on {coll}", lambda: dict(self.tc.operation_ls(coll, **kw).data))

    async def stat(self, req: m.StatRequest) -> dict[str, Any]:
        coll = self._coll(req.collection)
        kw = _opt(local_user=req.local_user)
        return await self._run(f"stat on {coll}", lambda: dict(self.tc.operation_stat(coll, req.path, **kw).data))

    async def mkdir(self, req: m.MkdirRequest) -> dict[str, Any]:
        coll = self._coll(req.collection)
        kw = _opt(local_user=req.local_user)
        return await self._run(f"mkdir on {coll}", lambda: dict(self.tc.operation_mkdir(coll, req.path, **kw).data))

    async def rename(self, req: m.RenameRequest) -> dict[str, Any]:
        coll = self._coll(req.collection)
        kw = _opt(local_user=req.local_user)
        return await self._run(
            f"rename on {coll}", lambda: dict(self.tc.operation_rename(coll, req.oldpath, req.newpath, **kw).data)
        )

    async def endpoint_search(self, req: m.EndpointSearchRequest) -> dict[str, Any]:
        scope = req.filter_scope or ("all" if req.filter_text else "my-endpoints")
        kw = _opt(filter_fulltext=req.filter_text, filter_scope=scope, limit=req.limit, offset=req.offset or None)
        return await self._run("endpoint_search", lambda: dict(self.tc.endpoint_search(**kw).data))

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        coll = self._coll(endpoint_id, "endpoint_id")
        return await self._run(f"get_endpoint {coll}", lambda: dict(self.tc.get_endpoint(coll).data))

    async def whoami(self) -> dict[str, Any]:
        """Globus Auth's userinfo for the session's credential: the identity it acts as
        (``sub``, ``preferred_username``, ``identity_set``)."""

        def work() -> dict[str, Any]:
            with globus_sdk.AuthClient(authorizer=self.tc.authorizer, app_name=APP_NAME) as auth:
                try:
                    return dict(auth.userinfo().data)
                except globus_sdk.AuthAPIError as exc:
                    if exc.http_status != 403:
                        raise
                    raise PermissionDeniedError(
                        "whoami: Globus Auth will not name the identity behind this credential "
                        f"({exc.code}: {exc.message}); a token issued for Transfer alone lacks the "
                        "openid scope userinfo needs: log in with the openid, profile and email scopes too",
                        globus_status=exc.http_status, globus_code=exc.code,
                    ) from exc

        return await self._run("whoami", work)

    # -- tracking and waiting --------------------------------------------------
    async def track(self, task_ids: list[str] | None, *, deadline: float = math.inf) -> dict[str, Any]:
        """Start watching existing tasks (all ACTIVE/INACTIVE ones of the identity if None).

        Ids that ``task_list`` does not show are asked for one by one, until ``deadline``
        (``time.monotonic()``); those left unasked are in ``unchecked`` (neither tracked
        nor known to be missing), so a caller with a timeout is not held past it.
        """
        unchecked: list[str] = []
        asked = self.tracker.clock()
        if task_ids is None:
            docs = await self._run("track (list active tasks)", self.fetch.active)
        else:
            fresh = [t for t in dict.fromkeys(task_ids) if t not in self.tracker]
            docs = await self._run("track", self.fetch.tasks, fresh) if fresh else []
            found = {d["task_id"] for d in docs}
            missing = [t for t in fresh if t not in found]
            for index, tid in enumerate(missing):  # not visible through task_list: ask for it directly
                if time.monotonic() >= deadline:
                    unchecked = missing[index:]
                    break
                try:
                    docs.append(await self._run(f"get_task {tid}", self.fetch.task, tid))
                except (NotFoundError, PermissionDeniedError):  # gone, or another identity's task
                    pass
        for doc in docs:
            self.tracker.watch(doc["task_id"])
        await self.poller.apply(docs, asked_at=asked, answered_at=self.tracker.clock())
        wanted = task_ids if task_ids is not None else [d["task_id"] for d in docs]
        out: dict[str, Any] = {"tracked": [], "finished": {}, "not_found": []}
        if unchecked:
            out["unchecked"] = unchecked
        skip = set(unchecked)
        for tid in wanted:
            t = self.tracker.get(tid)
            if t is None:
                if tid not in skip:
                    out["not_found"].append(tid)
            elif t.status in TERMINAL:
                out["finished"][tid] = t.status
            else:
                out["tracked"].append(tid)
        if out["tracked"]:
            self.poller.kick(self.settings.min_interval)
        return out

    async def task_wait(self, task_id: str, timeout: float, polling_interval: float) -> dict[str, Any]:
        if task_id not in self.tracker:
            await self.track([task_id])
            if task_id not in self.tracker:
                raise NotFoundError(f"task {task_id} not found on Globus", task_id=task_id)
        ok = await self.poller.wait_for([task_id], timeout, polling_interval)
        return {"task_id": task_id, "completed": ok, "status": self.tracker[task_id].status}

    async def wait_all(self, task_ids: list[str], timeout: float) -> dict[str, Any]:
        """``pending`` also lists ids not looked up yet when ``timeout`` ran out during the
        look-up (a later call goes on with them); ``not_found`` only ids Globus denied."""
        ids = list(dict.fromkeys(task_ids))
        deadline = time.monotonic() + timeout
        unknown = [t for t in ids if t not in self.tracker]
        unchecked: set[str] = set()
        if unknown:
            unchecked = set((await self.track(unknown, deadline=deadline)).get("unchecked", ()))
        known = [t for t in ids if t in self.tracker]
        ok = await self.poller.wait_for(known, max(0.0, deadline - time.monotonic()), self.settings.max_interval)
        statuses = {t: self.tracker[t].status for t in known}
        pending = [t for t in ids if (t in self.tracker and not self.tracker[t].done) or t in unchecked]
        not_found = [t for t in ids if t not in self.tracker and t not in unchecked]
        completed = ok and not not_found and not unchecked
        return {"completed": completed, "tasks": statuses, "pending": pending, "not_found": not_found}
