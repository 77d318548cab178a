"""``GlobusSession``: one client's Globus credential, its tracked tasks and their poller.

Threads and the event loop::

    route handler (event loop) ──await──▶ session._run(fn)  ──▶ own ThreadPoolExecutor
                                                               (bounded, sized for I/O)
                                                               globus-sdk call (blocking)

Nothing here blocks the loop: every globus-sdk call (the submission id fetch
included) runs on the session's own executor, never the default pool. Waiting
(``task_wait``, ``wait_all``) holds no thread at all: waiters sleep on an
``asyncio.Event`` the poller pulses after each cycle.

The poller (one per session, only while something is active)::

    every cycle: active ids ─chunks of the page size─▶ task_list(filter=task_id:a,b,...)
                 per task: status/nice_status changed → transfer_status
                           ACTIVE and bytes/files moved → transfer_progress
                           ACTIVE and a new fault      → task_event_list → transfer_fault
                                                          (fail_fast → cancel_task)
    interval:    ~1 s after a submission or a state change, ×1.5 per quiet cycle up to
                 ~10 s, capped by the shortest polling_interval of a current waiter;
                 429 → wait Retry-After;
                 transient errors → warning with counts, back off, keep going;
                 a rejected credential → one ``auth_error`` notification, stop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

import globus_sdk
from globus_sdk import MISSING
from globus_sdk.transport import RetryCheckResult, RetryConfig

from ...errors import (
    GlobusAuthError,
    NotFoundError,
    OrbitError,
    PermissionDeniedError,
    RateLimitedError,
    TransferError,
    UsageError,
)
from ..base import PluginSession
from . import models as m
from .errors import (
    map_globus_errors,
)
from .local import resolve_collection

if TYPE_CHECKING:
    from ..base import Plugin

log = logging.getLogger(__name__)

T = TypeVar("T")

TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
#: nice_status values that mean "nothing wrong"
HEALTHY = frozenset({None, "OK", "Queued", "QUEUED"})
STATUS_KEYS = ("task_id", "status", "label", "bytes_transferred", "files_transferred", "nice_status")


@dataclass
class PollSettings:
    """Tunables of the poller (plugin settings may override them)."""

    min_interval: float = 1.0
    max_interval: float = 10.0
    backoff: float = 1.5
    #: ids per task_list call; the API's page size, lowered by itself if a server
    #: rejects the URL as too long (414/431)
    chunk: int = m.TASK_LIST_PAGE
    #: worker threads of the session's executor (I/O bound: threads wait on sockets)
    workers: int = 16
    #: cycles a task may be missing from task_list before one get_task double-checks it
    missing_grace: int = 2

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PollSettings:
        """Settings from plugin options (``--plugin-option globus.KEY=VALUE``), checked.

        :raises UsageError: an unknown key, a wrong type or an out-of-range value
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key not in known:
                raise UsageError(
                    f"unknown globus plugin option '{key}' (known: {', '.join(sorted(known))})", option=key
                )
            integer = known[key].type in (int, "int")
            ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type:
                kind = "an integer" if integer else "a number"
                raise UsageError(f"globus plugin option '{key}' must be {kind}, got {value!r}", option=key)
            values[key] = value if integer else float(value)
        settings = cls(**values)
        problems = [
            ("min_interval", settings.min_interval > 0, "must be > 0"),
            ("max_interval", settings.max_interval >= settings.min_interval, "must be >= min_interval"),
            ("backoff", settings.backoff >= 1, "must be >= 1"),
            ("chunk", 1 <= settings.chunk <= m.TASK_LIST_PAGE, f"must be 1..{m.TASK_LIST_PAGE}"),
            ("workers", 1 <= settings.workers <= 256, "must be 1..256"),
            ("missing_grace", settings.missing_grace >= 0, "must be >= 0"),
        ]
        for key, good, rule in problems:
            if not good:
                raise UsageError(f"globus plugin option '{key}' {rule}, got {getattr(settings, key)!r}", option=key)
        return settings


@dataclass
class Tracked:
    """What the poller knows about one task."""

    task_id: str
    label: str | None = None
    type: str | None = None
    status: str | None = None
    nice_status: str | None = None
    bytes_transferred: int = 0
    files_transferred: int = 0
    faults: int = 0
    fail_fast: bool = False
    missing: int = 0
    seen_faults: set[str] = field(default_factory=set)
    last_progress: tuple[float, int] | None = None
    fault_cancelled: bool = False
    reported_nice: str | None = None

    @property
    def done(self) -> bool:
        """Globus' own task_wait rule: anything but ACTIVE counts as finished."""
        return self.status is not None and self.status != "ACTIVE"

    def status_payload(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "label": self.label,
            "bytes_transferred": self.bytes_transferred,
            "files_transferred": self.files_transferred,
            "nice_status": self.nice_status,
        }


def _opt(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments minus the ones left unset (so globus-sdk omits them)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _retry_config(stop: threading.Event | None) -> RetryConfig:
    """The SDK's retry policy, except that nothing is retried once ``stop`` is set.

    A closed session (or a stopping endpoint) should not keep a worker thread in the
    SDK's retry loop for half a minute; the check is registered before the SDK's own,
    so it decides first.
    """
    config = RetryConfig()
    if stop is not None:

        def stop_retrying(ctx: Any) -> RetryCheckResult:
            return RetryCheckResult.do_not_retry if stop.is_set() else RetryCheckResult.no_decision

        config.checks.register_check(stop_retrying)
    return config


def build_transfer_client(
    req: m.RegisterGlobusSession,
    on_refresh: Callable[[Any], None] | None = None,
    *,
    stop: threading.Event | None = None,
) -> globus_sdk.TransferClient:
    """A TransferClient bound to the credential in ``req`` (blocking: may fetch a token).

    Base URLs come from globus-sdk itself (``GLOBUS_SDK_SERVICE_URL_TRANSFER`` /
    ``..._AUTH``, or ``GLOBUS_SDK_ENVIRONMENT``). Once ``stop`` is set, failed calls
    are not retried.
    """
    authorizer: globus_sdk.authorizers.GlobusAuthorizer
    if req.access_token is not None:
        authorizer = globus_sdk.AccessTokenAuthorizer(req.access_token.get_secret_value())
    elif req.refresh_token is not None:
        assert req.client_id is not None
        auth_client: globus_sdk.AuthLoginClient
        if req.client_secret is not None:
            auth_client = globus_sdk.ConfidentialAppAuthClient(req.client_id, req.client_secret.get_secret_value(), app_name="radical.orbit")
        else:
            auth_client = globus_sdk.NativeAppAuthClient(req.client_id, app_name="radical.orbit")
        authorizer = globus_sdk.RefreshTokenAuthorizer(req.refresh_token.get_secret_value(), auth_client, on_refresh=on_refresh)
    else:
        assert req.client_id is not None and req.client_secret is not None
        cc = globus_sdk.ConfidentialAppAuthClient(req.client_id, req.client_secret.get_secret_value(), app_name="radical.orbit")
        authorizer = globus_sdk.ClientCredentialsAuthorizer(cc, globus_sdk.TransferClient.scopes.all, on_refresh=on_refresh)
    return globus_sdk.TransferClient(authorizer=authorizer, app_name="radical.orbit", retry_config=_retry_config(stop))


def _tune_transport(tc: globus_sdk.TransferClient, size: int) -> None:
    """Let the SDK's requests session keep one connection per worker thread, and read
    the proxy settings from the environment once instead of on every call.

    requests re-scans ``os.environ`` for ``*_proxy`` variables on each send when
    ``trust_env`` is on (about a tenth of the endpoint's CPU per Globus call here).
    All of this client's calls go to one host, so resolving once is equivalent; a
    proxy set or changed after the session was registered needs a new session.
    """
    import requests.adapters
    import requests.utils

    session = getattr(tc.transport, "session", None)
    if session is None:
        return
    for prefix in ("https://", "http://"):
        session.mount(prefix, requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=size))
    base_url = str(getattr(tc, "base_url", "") or "")
    if session.trust_env and base_url:
        probe = requests.Request("GET", base_url).prepare()
        session.proxies = requests.utils.resolve_proxies(probe, session.proxies, True)
        session.trust_env = False


class GlobusSession(PluginSession):
    """One client's Globus session on this endpoint.

    :param transfer_client: bound to the client's credential (lives only here, in memory)
    :param auth_mode: ``access_token`` | ``refresh_token`` | ``client_credentials``
    :param local_collection: what ``"local"`` means for this session (may be None)
    :param executor: the session's own pool (shut down on close)
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
        executor: ThreadPoolExecutor,
        settings: PollSettings | None = None,
        stop_retrying: threading.Event | None = None,
    ) -> None:
        super().__init__(plugin, sid)
        #: set on close: calls still in flight stop retrying (see build_transfer_client)
        self.stop_retrying = stop_retrying or threading.Event()
        self.tc = transfer_client
        self.auth_mode = auth_mode
        self.local_collection = local_collection
        self.local_source = local_source
        self.settings = settings or PollSettings()
        self._executor = executor
        _tune_transport(self.tc, self.settings.workers)
        self.tasks: dict[str, Tracked] = {}
        self.refreshes = 0
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._next_poll = math.inf
        self._kick_at = math.inf
        self._interval = self.settings.min_interval
        self._chunk = max(1, self.settings.chunk)
        self._waiter_hints: list[float] = []
        self._auth_failure: GlobusAuthError | None = None
        self.stats: dict[str, int] = {
            "cycles": 0,
            "task_list_calls": 0,
            "get_task_calls": 0,
            "event_list_calls": 0,
            "errors": 0,
            "consecutive_errors": 0,
            "rate_limited": 0,
            "notifications": 0,
        }

    def __repr__(self) -> str:
        return f"GlobusSession(sid={self.sid[:8]}..., auth={self.auth_mode}, tracked={len(self.tasks)})"

    # -- plumbing --------------------------------------------------------------
    def on_refresh(self, _response: Any) -> None:
        """Called by the renewing authorizer (on an executor thread); the token stays inside it."""
        self.refreshes += 1
        log.info("globus session %s...: access token renewed (%d so far)", self.sid[:8], self.refreshes)

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking globus-sdk call on the session's executor, errors mapped."""
        loop = asyncio.get_running_loop()
        with map_globus_errors(auth_mode=self.auth_mode, what=what):
            result = await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        if self._auth_failure is not None:  # the credential works again: resume polling
            self._auth_failure = None
            self._ensure_poller()
        return result

    def _coll(self, value: str | None, field: str = "collection") -> str:
        return resolve_collection(value, self.local_collection, field=field)

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.stats["notifications"] += 1
        self.notify(topic, payload)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass
            self._poller = None
        self._changed.set()
        self.stop_retrying.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.tc, "close", None)
        if callable(close):
            close()

    def info(self) -> dict[str, Any]:
        active = sum(1 for t in self.tasks.values() if t.status not in TERMINAL)
        return {
            "auth_mode": self.auth_mode,
            "local_collection": self.local_collection,
            "local_source": self.local_source,
            "tracked": len(self.tasks),
            "active": active,
            "refreshes": self.refreshes,
            "poller": {
                **self.stats,
                "running": self._poller is not None and not self._poller.done(),
                "interval": self._interval,
                "chunk": self._chunk,
                "auth_failed": self._auth_failure is not None,
            },
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
        known = self.tasks.get(task_id)
        if known is None:
            known = Tracked(task_id=task_id, label=label, type=kind, status=status, fail_fast=fail_fast)
            self.tasks[task_id] = known
            self._emit("transfer_status", known.status_payload())
        if not known.done:
            self._kick(self.settings.min_interval)
        return {
            "task_id": task_id,
            "submission_id": res.get("submission_id"),
            "status": status,
            "code": res.get("code"),
            "message": res.get("message"),
        }

    # -- task queries ----------------------------------------------------------
    async def get_task(self, task_id: str) -> dict[str, Any]:
        self.stats["get_task_calls"] += 1
        doc = await self._run(f"get_task {task_id}", lambda: dict(self.tc.get_task(task_id).data))
        if task_id in self.tasks:
            await self._apply([doc])
        return doc

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        res = await self._run(f"cancel_task {task_id}", lambda: dict(self.tc.cancel_task(task_id).data))
        res.setdefault("task_id", task_id)
        if res.get("code") != "TaskComplete" or task_id in self.tasks:
            if task_id not in self.tasks:
                self.tasks[task_id] = Tracked(task_id=task_id)
            self._kick(0.2)
        return res

    async def list_tasks(self, req: m.ListTasksRequest) -> dict[str, Any]:
        clauses = ["type:" + ",".join(req.type or ["TRANSFER", "DELETE"])]
        if req.status:
            clauses.append("status:" + ",".join(req.status))
        if req.label:
            clauses.append("label:" + req.label)
        flt = "/".join(clauses)
        return await self._run(
            "list_tasks",
            lambda: dict(self.tc.task_list(limit=req.limit, offset=req.offset, orderby="request_time DESC", filter=flt).data),
        )

    async def task_events(self, req: m.TaskEventsRequest) -> dict[str, Any]:
        qp = {"filter": "is_error:1"} if req.errors_only else None
        self.stats["event_list_calls"] += 1
        return await self._run(
            f"task_events {req.task_id}",
            lambda: dict(self.tc.task_event_list(req.task_id, limit=req.limit, offset=req.offset, query_params=qp).data),
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

    # -- tracking and waiting --------------------------------------------------
    async def track(self, task_ids: list[str] | None, *, deadline: float = math.inf) -> dict[str, Any]:
        """Start watching existing tasks (all ACTIVE/INACTIVE ones of the identity if None).

        Ids that ``task_list`` does not show are asked for one by one, until ``deadline``
        (``time.monotonic()``); those left unasked are in ``unchecked`` (neither tracked
        nor known to be missing), so a caller with a timeout is not held past it.
        """
        unchecked: list[str] = []
        if task_ids is None:
            docs = await self._run("track (list active tasks)", self._list_active)
        else:
            fresh = [t for t in dict.fromkeys(task_ids) if t not in self.tasks]
            docs = await self._run("track", self._fetch_docs, fresh) if fresh else []
            found = {d["task_id"] for d in docs}
            missing = [t for t in fresh if t not in found]
            for index, tid in enumerate(missing):  # not visible through task_list: ask for it directly
                if time.monotonic() >= deadline:
                    unchecked = missing[index:]
                    break
                try:
                    self.stats["get_task_calls"] += 1
                    docs.append(await self._run(f"get_task {tid}", lambda tid=tid: dict(self.tc.get_task(tid).data)))
                except (NotFoundError, PermissionDeniedError):  # gone, or another identity's task
                    pass
        for doc in docs:
            self.tasks.setdefault(doc["task_id"], Tracked(task_id=doc["task_id"]))
        await self._apply(docs)
        wanted = task_ids if task_ids is not None else [d["task_id"] for d in docs]
        out: dict[str, Any] = {"tracked": [], "finished": {}, "not_found": []}
        if unchecked:
            out["unchecked"] = unchecked
        skip = set(unchecked)
        for tid in wanted:
            t = self.tasks.get(tid)
            if t is None:
                if tid not in skip:
                    out["not_found"].append(tid)
            elif t.status in TERMINAL:
                out["finished"][tid] = t.status
            else:
                out["tracked"].append(tid)
        if out["tracked"]:
            self._kick(self.settings.min_interval)
        return out

    def _list_active(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        offset = 0
        while True:
            self.stats["task_list_calls"] += 1
            page = self.tc.task_list(
                limit=m.TASK_LIST_PAGE, offset=offset, filter="type:TRANSFER,DELETE/status:ACTIVE,INACTIVE"
            ).data
            docs.extend(page.get("DATA", []))
            offset += len(page.get("DATA", []))
            if not page.get("DATA") or offset >= int(page.get("total", 0)):
                return docs

    async def task_wait(self, task_id: str, timeout: float, polling_interval: float) -> dict[str, Any]:
        if task_id not in self.tasks:
            await self.track([task_id])
            if task_id not in self.tasks:
                raise NotFoundError(f"task {task_id} not found on Globus", task_id=task_id)
        ok = await self._wait_for([task_id], timeout, polling_interval)
        t = self.tasks[task_id]
        return {"task_id": task_id, "completed": ok, "status": t.status}

    async def wait_all(self, task_ids: list[str], timeout: float) -> dict[str, Any]:
        """``pending`` also lists ids not looked up yet when ``timeout`` ran out during the
        look-up (a later call goes on with them); ``not_found`` only ids Globus denied."""
        ids = list(dict.fromkeys(task_ids))
        deadline = time.monotonic() + timeout
        unknown = [t for t in ids if t not in self.tasks]
        unchecked: set[str] = set()
        if unknown:
            unchecked = set((await self.track(unknown, deadline=deadline)).get("unchecked", ()))
        known = [t for t in ids if t in self.tasks]
        ok = await self._wait_for(known, max(0.0, deadline - time.monotonic()), self.settings.max_interval)
        statuses = {t: self.tasks[t].status for t in known}
        pending = [t for t in ids if (t in self.tasks and not self.tasks[t].done) or t in unchecked]
        not_found = [t for t in ids if t not in self.tasks and t not in unchecked]
        completed = ok and not not_found and not unchecked
        return {"completed": completed, "tasks": statuses, "pending": pending, "not_found": not_found}

    async def _wait_for(self, task_ids: list[str], timeout: float, polling_interval: float) -> bool:
        """Wait (holding no thread) until every task is done or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        self._waiter_hints.append(polling_interval)
        try:
            while True:
                if all(self.tasks[t].done for t in task_ids if t in self.tasks):
                    return True
                if self._auth_failure is not None:
                    failure = self._auth_failure
                    raise GlobusAuthError(failure.message, **failure.details)
                if self.closed:
                    return False
                self._ensure_poller()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                event = self._changed
                try:
                    await asyncio.wait_for(event.wait(), timeout=remaining)
                except TimeoutError:
                    pass
        finally:
            self._waiter_hints.remove(polling_interval)

    # -- the poller ------------------------------------------------------------
    def _active_ids(self) -> list[str]:
        """Tasks to poll: everything not finished (INACTIVE ones can resume)."""
        return [t.task_id for t in self.tasks.values() if t.status not in TERMINAL]

    def _kick(self, delay: float) -> None:
        """Poll within ``delay`` s and restart the back-off at the fast interval."""
        self._interval = self.settings.min_interval
        self._kick_at = min(self._kick_at, time.monotonic() + delay)
        self._ensure_poller()
        self._wake.set()

    def _poller_running(self) -> bool:
        return self._poller is not None and not self._poller.done()

    def _ensure_poller(self) -> None:
        if self.closed or self._auth_failure is not None or self._poller_running():
            return
        if not self._active_ids():
            return
        if self._next_poll == math.inf and self._kick_at == math.inf:
            self._next_poll = time.monotonic() + self._interval
        self._poller = asyncio.get_running_loop().create_task(self._poll_loop(), name=f"globus-poller-{self.sid[:8]}")

    def _pulse(self) -> None:
        """Wake every waiter (they re-check their tasks)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _poll_loop(self) -> None:
        try:
            while not self.closed:
                # sleep until the next poll, re-evaluating when kicked
                while True:
                    now = time.monotonic()
                    target = min(self._next_poll, self._kick_at)
                    if now >= target:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=target - now)
                    except TimeoutError:
                        pass
                self._kick_at = math.inf  # consumed; a kick during the cycle sets it again
                active = self._active_ids()
                if not active:
                    break
                try:
                    delay = await self._cycle(active)
                except Exception:  # a bug must not silently end notifications: log it, keep polling
                    self.stats["errors"] += 1
                    log.exception("globus session %s...: unexpected error in the poller; continuing", self.sid[:8])
                    delay = self.settings.max_interval
                if delay is None:
                    break
                self._next_poll = time.monotonic() + delay
        finally:
            self._next_poll = math.inf
            self._pulse()
            log.debug("globus session %s...: poller stopped", self.sid[:8])

    async def _cycle(self, active: list[str]) -> float | None:
        """One poll cycle; returns the delay to the next one (None: stop)."""
        self.stats["cycles"] += 1
        self.touch()  # a session watching live tasks is not idle: keep it from being reaped
        try:
            docs = await self._run("poll task_list", self._fetch_docs, active)
        except RateLimitedError as exc:
            self.stats["rate_limited"] += 1
            wait = exc.details.get("retry_after") or self.settings.max_interval
            log.warning("globus session %s...: rate limited by Globus, waiting %.1f s", self.sid[:8], wait)
            return float(wait)
        except GlobusAuthError as exc:
            self._auth_failure = exc
            log.warning("globus session %s...: credential rejected while polling; poller stopped", self.sid[:8])
            self._emit(
                "auth_error",
                {
                    "code": exc.code,
                    "message": exc.message,
                    "auth_mode": self.auth_mode,
                    "active_tasks": self._active_ids(),
                },
            )
            return None
        except OrbitError as exc:
            self.stats["errors"] += 1
            self.stats["consecutive_errors"] += 1
            self._interval = min(self._interval * self.settings.backoff, self.settings.max_interval)
            log.warning(
                "globus session %s...: poll failed (%s: %s); %d in a row, %d in total; retrying in %.1f s",
                self.sid[:8],
                exc.code,
                exc.message,
                self.stats["consecutive_errors"],
                self.stats["errors"],
                self._interval,
            )
            return self._interval
        self.stats["consecutive_errors"] = 0
        changed = await self._apply(docs)
        await self._check_missing(active, {d["task_id"] for d in docs})
        if changed:  # a task finished or changed state: queued ones start now, look again soon
            self._interval = self.settings.min_interval
        else:
            self._interval = min(self._interval * self.settings.backoff, self.settings.max_interval)
        hint = min(self._waiter_hints) if self._waiter_hints else math.inf
        return max(0.05, min(self._interval, hint))

    def _fetch_docs(self, ids: list[str]) -> list[dict[str, Any]]:
        """Task documents for ``ids``: one task_list call per chunk (runs on the executor)."""
        docs: list[dict[str, Any]] = []
        i = 0
        while i < len(ids):
            chunk = ids[i : i + self._chunk]
            flt = "task_id:" + ",".join(chunk) + "/type:TRANSFER,DELETE"
            self.stats["task_list_calls"] += 1
            try:
                page = self.tc.task_list(limit=len(chunk), filter=flt).data
            except globus_sdk.GlobusAPIError as exc:
                # a URL or filter Globus finds too long: 414/431 from a proxy, 413, or a 400 for
                # our otherwise well-formed filter -- halve the chunk (learned for the session)
                too_long = exc.http_status in (400, 413, 414, 431)
                if too_long and len(chunk) > 1:
                    self._chunk = max(1, len(chunk) // 2)
                    log.info("globus session %s...: task_list URL too long; %d ids per call from now on", self.sid[:8], self._chunk)
                    continue
                raise
            docs.extend(dict(d) for d in page.get("DATA", []))
            i += len(chunk)
        return docs

    async def _check_missing(self, asked: list[str], found: set[str]) -> None:
        for tid in asked:
            t = self.tasks.get(tid)
            if t is None or tid in found:
                if t is not None:
                    t.missing = 0
                continue
            t.missing += 1
            if t.missing < self.settings.missing_grace:
                continue
            t.missing = 0
            try:
                self.stats["get_task_calls"] += 1
                doc = await self._run(f"get_task {tid}", lambda tid=tid: dict(self.tc.get_task(tid).data))
            except NotFoundError:
                log.warning("globus session %s...: task %s no longer exists on Globus; untracking it", self.sid[:8], tid)
                self.tasks.pop(tid, None)
                continue
            except OrbitError as exc:
                log.warning("globus session %s...: get_task %s failed: %s", self.sid[:8], tid, exc.message)
                continue
            await self._apply([doc])

    async def _apply(self, docs: list[dict[str, Any]]) -> bool:
        """Fold task documents into the tracked state and emit notifications; True if a status changed."""
        changed = False
        for doc in docs:
            tid = str(doc.get("task_id"))
            t = self.tasks.get(tid)
            if t is None:
                continue
            if t.label is None and doc.get("label"):
                t.label = doc.get("label")
            t.type = doc.get("type") or t.type
            status = doc.get("status")
            nice = doc.get("nice_status")
            moved = (int(doc.get("bytes_transferred") or 0), int(doc.get("files_transferred") or 0))
            faults = int(doc.get("faults") or 0)
            status_changed = status != t.status
            nice_changed = nice != t.nice_status and t.nice_status is not None
            progress = moved != (t.bytes_transferred, t.files_transferred)
            prev_bytes = t.bytes_transferred
            t.status, t.nice_status = status, nice
            t.bytes_transferred, t.files_transferred = moved
            new_fault = faults > t.faults
            t.faults = faults
            if status_changed or nice_changed:
                changed = True
                self._emit("transfer_status", t.status_payload())
            if status == "ACTIVE" and progress:
                self._emit("transfer_progress", self._progress_payload(t, doc, prev_bytes))
            unhealthy = nice not in HEALTHY or doc.get("is_ok") is False
            if status == "ACTIVE" and (new_fault or (unhealthy and nice != t.reported_nice)):
                t.reported_nice = nice
                await self._report_faults(t, nice)
        if changed:
            self._pulse()
        return changed

    def _progress_payload(self, t: Tracked, doc: dict[str, Any], prev_bytes: int) -> dict[str, Any]:
        now = time.monotonic()
        rate = None
        if t.last_progress is not None:
            dt = now - t.last_progress[0]
            if dt > 0:
                rate = max(0.0, (t.bytes_transferred - t.last_progress[1]) / dt)
        t.last_progress = (now, t.bytes_transferred)
        return {
            "task_id": t.task_id,
            "label": t.label,
            "status": t.status,
            "bytes_transferred": t.bytes_transferred,
            "files_transferred": t.files_transferred,
            "files": doc.get("files"),
            "subtasks_total": doc.get("subtasks_total"),
            "subtasks_succeeded": doc.get("subtasks_succeeded"),
            "bytes_per_second": rate,
            "effective_bytes_per_second": doc.get("effective_bytes_per_second"),
        }

    async def _report_faults(self, t: Tracked, nice: str | None) -> None:
        """Read the task's newest error events; notify each new one (and cancel if fail_fast)."""
        try:
            self.stats["event_list_calls"] += 1
            page = await self._run(
                f"task_event_list {t.task_id}",
                lambda: dict(self.tc.task_event_list(t.task_id, limit=10, query_params={"filter": "is_error:1"}).data),
            )
        except OrbitError as exc:
            log.warning("globus session %s...: cannot read events of task %s: %s", self.sid[:8], t.task_id, exc.message)
            return
        events = [e for e in page.get("DATA", []) if e.get("is_error", True)]
        fresh = []
        for ev in reversed(events):  # oldest first
            key = f"{ev.get('time')}|{ev.get('code')}|{ev.get('description')}"
            if key not in t.seen_faults:
                t.seen_faults.add(key)
                fresh.append(ev)
        if not fresh and nice not in HEALTHY and f"nice|{nice}" not in t.seen_faults:
            t.seen_faults.add(f"nice|{nice}")
            fresh.append({"code": nice, "description": nice, "details": None, "time": None})
        for ev in fresh:
            cancel = t.fail_fast and not t.fault_cancelled
            self._emit(
                "transfer_fault",
                {
                    "task_id": t.task_id,
                    "label": t.label,
                    "code": ev.get("code"),
                    "description": ev.get("description"),
                    "details": ev.get("details"),
                    "time": ev.get("time"),
                    "nice_status": nice,
                    "faults": t.faults,
                    "fail_fast": t.fail_fast,
                    "cancelling": cancel,
                },
            )
            if cancel:
                t.fault_cancelled = True
                log.info("globus session %s...: fail_fast: cancelling task %s after fault %s", self.sid[:8], t.task_id, ev.get("code"))
                try:
                    await self._run(f"cancel_task {t.task_id}", lambda: self.tc.cancel_task(t.task_id))
                except (TransferError, OrbitError) as exc:
                    log.warning("globus session %s...: fail_fast cancel of %s failed: %s", self.sid[:8], t.task_id, exc.message)
                self._kick_at = min(self._kick_at, time.monotonic() + 0.2)
