"""``PluginGlobus``: the endpoint-side ``globus`` plugin (routes + per-client sessions).

Enabled only where ``globus-sdk`` 4.x imports; never loaded on the bridge. Every
method is ``POST /{endpoint}/globus/{method}`` with a JSON body validated by the
models in :mod:`.models` (422 naming the field before Globus is called), answered
with JSON; Globus failures are mapped once by :func:`.errors.map_globus_errors`.

Routes: register_session, unregister_session (base), submit_transfer, get_task,
task_wait, wait_all, cancel_task, list_tasks, update_task, task_events,
successful_transfers, skipped_errors, pause_info, track, ls, stat, mkdir, rename,
delete, endpoint_search, get_endpoint, whoami, session_info; for the Explorer:
sessions (the caller's own), login_start and login_finish (:mod:`.login`).

Options (``radical-orbit endpoint -o globus.KEY=VALUE``): :class:`.options.PollSettings`
(``min_interval``, ``max_interval``, ``backoff``, ``chunk``, ``workers``,
``workers_per_identity``, ``missing_grace``), checked by
:meth:`..base.Plugin.validate_options` before the plugin starts.

Every session's blocking globus-sdk calls run on ONE thread pool of the plugin, of
``workers`` threads, started lazily and shut down in :meth:`PluginGlobus.stop`: an
idle session holds no thread, and a thousand clients cannot make a thousand threads.
The price is sharing: at most ``workers`` Globus calls run at once on the endpoint,
the others queue (waits hold no thread, see :mod:`.session`), and each client
identity's sessions submit through that identity's share of the pool
(:mod:`.pool`, ``workers_per_identity``), so one whose calls hang cannot take every thread.

The endpoint's task journal (:mod:`.journal`, under its state directory) keeps every
task the sessions track. Once a session is open, the plugin asks in the background
which Globus identity its credential acts as (:mod:`.identity`; only when there is
something to re-adopt, or a task whose owner is not known yet) and hands it that
identity's unfinished tasks an earlier run of the endpoint journaled, those no live
session tracks: after an endpoint restart they are polled again and what changed
meanwhile is told once.

Per session the plugin builds the credential's TransferClient (:mod:`.credentials`,
tuned by :mod:`.transport`) on that pool and owns what must be released when the
session closes: the secrets registered with :mod:`.redact`. A closed session's calls
still in the pool stop retrying (its ``stop_retrying``); the pool stays up for the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from fastapi import APIRouter
from pydantic import BaseModel, SecretStr
from pydantic import ValidationError as PydanticValidationError

from ...errors import (
    OrbitError,
    UsageError,
    ValidationError,
    describe_validation_errors,
)
from ..base import Plugin, PluginContext, PluginSession, SessionRequest, to_completion
from ..caller import current_identity
from . import models as m
from .journal import JOURNAL_FILE, AsyncJournal
from .local import SOURCE_SESSION, LocalCollection, discover_local_collection
from .options import PollSettings
from .pool import ShareOfPool, default_share

if TYPE_CHECKING:  # these modules import globus-sdk, which may be missing here
    from .login import GlobusLogins
    from .session import GlobusSession

log = logging.getLogger(__name__)

#: how long ``register_session(track=[...])`` may spend looking up tasks one by one
REGISTER_TRACK_SECONDS = 30.0


class PluginGlobus(Plugin):
    """Orchestrates Globus transfers: submits tasks and watches them; bytes never pass here."""

    name: ClassVar[str] = "globus"
    description: ClassVar[str] = "Globus Transfer: submit and monitor collection-to-collection transfers"
    register_model: ClassVar[type[BaseModel]] = m.RegisterGlobusSession
    options_model: ClassVar[type[BaseModel] | None] = PollSettings

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.local = LocalCollection(None, "not discovered yet")
        #: per session: the secrets it registered with the redactor (removed when it closes)
        self._secrets: dict[str, tuple[str, ...]] = {}
        #: where every session's blocking globus-sdk calls run (made on first use)
        self._pool: ThreadPoolExecutor | None = None
        #: each client identity's share of that pool (see :mod:`.pool`)
        self._shares: dict[str | None, ShareOfPool] = {}
        self._logins: GlobusLogins | None = None
        #: the endpoint's task journal (None: the endpoint keeps no state, or it cannot be kept)
        self.journal: AsyncJournal | None = None
        #: one re-adoption at a time: two sessions of one identity never adopt the same task
        self._adopting = asyncio.Lock()

    @property
    def poll_settings(self) -> PollSettings:
        """The plugin's validated options."""
        assert isinstance(self.options, PollSettings)
        return self.options

    @classmethod
    def check_enabled(cls) -> str | None:
        try:
            import globus_sdk
        except ImportError:
            return "globus-sdk is not installed: pip install 'radical.orbit[globus]'"
        version = getattr(globus_sdk, "__version__", "0")
        if not version.startswith("4."):
            return f"globus-sdk {version} is installed but 4.x is required: pip install 'globus-sdk>=4,<5'"
        return None

    async def start(self) -> None:
        from . import redact

        redact.install()
        self.local = discover_local_collection()
        if self.local.collection_id:
            log.info("globus: local collection %s (from %s)", self.local.collection_id, self.local.source)
        else:
            log.info("globus: no local collection configured; 'local' needs register_session(local_collection=...)")
        if self.ctx.state_dir is not None:
            self.journal = await AsyncJournal.open(Path(self.ctx.state_dir) / JOURNAL_FILE)
        await super().start()

    async def stop(self) -> None:
        await super().stop()  # closes every session first: their pollers stop submitting
        for share in self._shares.values():
            share.shutdown(wait=False, cancel_futures=True)
        self._shares.clear()
        if self._pool is not None:
            # calls still running finish on their own (their sessions stopped retrying);
            # waiting for one stuck in a slow Globus request would hold up the endpoint's exit
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._logins is not None:
            self._logins.close()
        if self.journal is not None:  # after the sessions: their last changes are written
            await self.journal.close()
            self.journal = None

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(self.local.as_dict())
        return out

    async def create_session(self, sid: str, request: BaseModel) -> PluginSession:
        from . import redact
        from .credentials import Refreshes, build_transfer_client, secrets_of
        from .errors import map_globus_errors
        from .session import GlobusSession
        from .transport import tune_transport

        assert isinstance(request, m.RegisterGlobusSession)
        settings = self.poll_settings
        redact.install()
        secrets = secrets_of(request)
        redact.REDACTOR.add(*secrets)
        try:
            executor = self._session_executor(current_identity())
            refreshes = Refreshes(sid)
            stop_retrying = threading.Event()
            with map_globus_errors(auth_mode=request.auth_mode, what="register_session"):
                tc = await asyncio.get_running_loop().run_in_executor(
                    executor, functools.partial(build_transfer_client, request, refreshes, stop=stop_retrying)
                )
            tune_transport(tc, settings.workers)
        except BaseException:
            redact.REDACTOR.remove(*secrets)
            raise
        local: str | None
        if request.local_collection:
            local, source = request.local_collection, SOURCE_SESSION
        else:
            local, source = self.local.collection_id, self.local.source
        session = GlobusSession(
            self,
            sid,
            transfer_client=tc,
            auth_mode=request.auth_mode,
            local_collection=local,
            local_source=source,
            executor=executor,
            settings=settings,
            stop_retrying=stop_retrying,
            refreshes=refreshes,
            journal=self.journal,
        )
        self._secrets[sid] = secrets
        log.info("globus: session %s... uses %s auth, local collection %s (%s)", sid[:8], request.auth_mode, local, source)
        return session

    def _session_executor(self, owner: str | None) -> Executor:
        """Where a session's blocking globus-sdk calls run: ``owner``'s share of the
        plugin's one pool of ``workers`` threads (threads start as calls need them, not
        per session); every session of one identity shares that identity's share."""
        settings = self.poll_settings
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="globus")
        share = self._shares.get(owner)
        if share is None:
            limit = settings.workers_per_identity or default_share(settings.workers)
            share = self._shares[owner] = ShareOfPool(self._pool, limit)
        return share

    async def open_session(self, request: BaseModel) -> PluginSession:
        """Open a session; hand the tasks of the one it ``replaces`` over, then re-attach ``track``.

        Everything the new session tells before the reply (the re-attached tasks' state)
        is scoped to the new sid; the client SDK holds such events until the reply
        names the sid (:mod:`radical.orbit.client.feed`).
        """
        replaces = getattr(request, "replaces", None)
        old = self.owned(replaces) if replaces else None  # the caller's own live session, else nothing
        session = await super().open_session(request)
        gsession = cast("GlobusSession", session)
        if old is not None and old.sid in self.sessions:
            moved = await gsession.adopt(cast("GlobusSession", old))
            await self.close_session(old.sid)
            log.info("globus: session %s... replaces %s... (%d tasks handed over)", session.sid[:8], old.sid[:8], moved)
        track = getattr(request, "track", None)
        if track:
            try:
                res = await gsession.track(list(track), deadline=time.monotonic() + REGISTER_TRACK_SECONDS)
                if res.get("unchecked"):
                    log.warning(
                        "globus: session %s...: %d of %d tasks to re-attach were not looked up within %g s; "
                        "call track() with them",
                        session.sid[:8], len(res["unchecked"]), len(track), REGISTER_TRACK_SECONDS,
                    )
            except OrbitError as exc:  # re-attaching is best effort; the new session is fine
                log.warning("globus: session %s...: re-attaching %d tasks failed: %s", session.sid[:8], len(track), exc.message)
        if self.journal is not None:
            gs = cast("GlobusSession", session)
            gs.adoption = asyncio.create_task(self._adopt(gs), name=f"globus session {session.sid[:8]}... adoption")
        return session

    async def _adopt(self, session: GlobusSession) -> None:
        """Give the session the unfinished tasks an earlier run journaled for its Globus
        identity, those no live session tracks (in the background: never a failure).

        The identity is asked for only when an earlier run left something to adopt.
        """
        journal = self.journal
        if journal is None:
            return
        try:
            if not await journal.left_over():
                return
            identities = await session.identify()
            if not identities:
                log.info("globus: session %s...: Globus does not say which identity its credential is; no task re-adopted", session.sid[:8])
                return
            async with self._adopting:
                entries = await journal.unfinished(identities)
                held = {tid for other in self.sessions.values() for tid in cast("GlobusSession", other).tracker.tasks}
                fresh = [e for e in entries if e.task_id not in held]
                adopted = session.adopt_journaled(fresh) if fresh and not session.closed else []
            if adopted:
                log.info("globus: session %s... re-adopted %d unfinished task(s) of its Globus identity from the journal",
                         session.sid[:8], len(adopted))
            else:
                log.debug("globus: session %s...: no journaled task to re-adopt for identity %s", session.sid[:8], identities[0])
        except Exception:  # a background helper: the session works without it
            log.exception("globus: session %s...: re-adopting journaled tasks failed", session.sid[:8])

    async def close_session(self, sid: str) -> bool:
        from . import redact

        closed = await super().close_session(sid)
        secrets = self._secrets.pop(sid, None)
        if secrets is not None:
            redact.REDACTOR.remove(*secrets)
        return closed

    def gsession(self, sid: str) -> GlobusSession:
        """The live :class:`.session.GlobusSession` for ``sid`` (404/410 otherwise)."""
        return cast("GlobusSession", self.session(sid))

    def add_routes(self, router: APIRouter) -> None:
        plugin = self

        @router.post("/submit_transfer")
        async def submit_transfer(body: m.SubmitTransferRequest) -> dict[str, Any]:
            """POST /submit_transfer -> {task_id, submission_id, status}; 400/401/403/404/429/502."""
            return await to_completion(plugin.gsession(body.sid).submit_transfer(body))

        @router.post("/delete")
        async def delete(body: m.DeleteRequest) -> dict[str, Any]:
            """POST /delete -> {task_id, submission_id, status} (a Globus delete task)."""
            return await to_completion(plugin.gsession(body.sid).delete(body))

        @router.post("/get_task")
        async def get_task(body: m.TaskRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).get_task(body.task_id)

        @router.post("/task_wait")
        async def task_wait(body: m.TaskWaitRequest) -> dict[str, Any]:
            """POST /task_wait -> {task_id, completed, status}; holds no thread while waiting."""
            return await plugin.gsession(body.sid).task_wait(body.task_id, body.timeout, body.polling_interval)

        @router.post("/wait_all")
        async def wait_all(body: m.WaitAllRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).wait_all(body.task_ids, body.timeout)

        @router.post("/cancel_task")
        async def cancel_task(body: m.TaskRequest) -> dict[str, Any]:
            return await to_completion(plugin.gsession(body.sid).cancel_task(body.task_id))

        @router.post("/list_tasks")
        async def list_tasks(body: m.ListTasksRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).list_tasks(body)

        @router.post("/update_task")
        async def update_task(body: m.UpdateTaskRequest) -> dict[str, Any]:
            """POST /update_task -> Globus' result (code Updated); 409 once the task has ended."""
            return await to_completion(plugin.gsession(body.sid).update_task(body))

        @router.post("/task_events")
        async def task_events(body: m.TaskEventsRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).task_events(body)

        @router.post("/successful_transfers")
        async def successful_transfers(body: m.MarkerRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).successful_transfers(body)

        @router.post("/skipped_errors")
        async def skipped_errors(body: m.MarkerRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).skipped_errors(body)

        @router.post("/pause_info")
        async def pause_info(body: m.TaskRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).pause_info(body.task_id)

        @router.post("/track")
        async def track(body: m.TrackRequest) -> dict[str, Any]:
            deadline = time.monotonic() + body.timeout
            return await to_completion(plugin.gsession(body.sid).track(body.task_ids, deadline=deadline))

        @router.post("/ls")
        async def ls(body: m.LsRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).ls(body)

        @router.post("/stat")
        async def stat(body: m.StatRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).stat(body)

        @router.post("/mkdir")
        async def mkdir(body: m.MkdirRequest) -> dict[str, Any]:
            return await to_completion(plugin.gsession(body.sid).mkdir(body))

        @router.post("/rename")
        async def rename(body: m.RenameRequest) -> dict[str, Any]:
            return await to_completion(plugin.gsession(body.sid).rename(body))

        @router.post("/endpoint_search")
        async def endpoint_search(body: m.EndpointSearchRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).endpoint_search(body)

        @router.post("/get_endpoint")
        async def get_endpoint(body: m.GetEndpointRequest) -> dict[str, Any]:
            return await plugin.gsession(body.sid).get_endpoint(body.endpoint_id)

        @router.post("/whoami")
        async def whoami(body: SessionRequest) -> dict[str, Any]:
            """POST /whoami -> Globus Auth's userinfo for the session's credential."""
            return await plugin.gsession(body.sid).whoami()

        @router.post("/submission_id")
        async def submission_id(body: m.SubmissionIdRequest) -> dict[str, Any]:
            """POST /submission_id {sid, kind, request} -> {"value"}: an id from Globus for
            the submission ``request`` (a transfer or a delete), checked first as its route
            checks it (422 naming the field; then no Globus call is made)."""
            model = m.SubmitTransferRequest if body.kind == "transfer" else m.DeleteRequest
            try:
                model.model_validate({**body.request, "sid": body.sid})
            except PydanticValidationError as exc:
                message, fields = describe_validation_errors(exc.errors())
                raise ValidationError(message, fields=fields) from None
            return {"value": await plugin.gsession(body.sid).submission_id()}

        @router.post("/session_info")
        async def session_info(body: SessionRequest) -> dict[str, Any]:
            return plugin.gsession(body.sid).info()

        self._add_explorer_routes(router)

    # -- the Explorer: the caller's sessions and "Log in with Globus" ------------------------
    def _add_explorer_routes(self, router: APIRouter) -> None:
        plugin = self

        @router.post("/sessions")
        async def sessions(body: m.SessionsRequest) -> dict[str, Any]:
            """POST /sessions {} -> {"sessions": [...]}: the caller's own sessions, with their tasks."""
            return {"sessions": plugin.sessions_of(current_identity())}

        @router.post("/login_start")
        async def login_start(body: m.LoginStartRequest) -> dict[str, Any]:
            """POST /login_start -> {authorize_url, state}: the browser goes to Globus Auth."""
            return plugin.login_start(body)

        @router.post("/login_finish")
        async def login_finish(body: m.LoginFinishRequest) -> dict[str, Any]:
            """POST /login_finish -> {sid, ...}: a session on the login's refresh token (never a token)."""
            return await to_completion(plugin.login_finish(body))

    def sessions_of(self, owner: str | None) -> list[dict[str, Any]]:
        """What ``owner`` may see of its own sessions: never a credential."""
        out = []
        for sid, session in list(self.sessions.items()):
            if session.owner != owner:
                continue
            gs = cast("GlobusSession", session)
            tasks = [{**t.status_payload(), "type": t.type} for t in gs.tracker.tasks.values()]
            out.append(
                {
                    "sid": sid,
                    "auth_mode": gs.auth_mode,
                    "local_collection": gs.local_collection,
                    "created": gs.created,
                    "tasks": tasks,
                }
            )
        return out

    @property
    def logins(self) -> GlobusLogins:
        if self._logins is None:
            from .login import GlobusLogins

            self._logins = GlobusLogins(self.ctx.endpoint)
        return self._logins

    def login_client_id(self) -> str:
        """The native app the browser login runs as (option, else the emulator's), or a UsageError."""
        from .login import default_login_client_id

        found = self.poll_settings.login_client_id or default_login_client_id()
        if found is None:
            raise UsageError(
                "Log in with Globus needs a Globus native app on this endpoint: register one at "
                "https://app.globus.org/settings/developers with the redirect URI <bridge URL>/ui/callback.html "
                "and start the endpoint with -o globus.login_client_id=<its client id>",
                option="login_client_id",
            )
        return found

    def login_start(self, body: m.LoginStartRequest) -> dict[str, Any]:
        import globus_sdk

        scopes = list(body.scopes) if body.scopes else [str(globus_sdk.TransferClient.scopes.all)]
        return self.logins.start(
            owner=current_identity(),
            client_id=self.login_client_id(),
            redirect_uri=body.redirect_uri,
            scopes=scopes,
            local_collection=body.local_collection,
        )

    async def login_finish(self, body: m.LoginFinishRequest) -> dict[str, Any]:
        pending = self.logins.take(body.state, current_identity())
        refresh = await self.logins.refresh_token(pending, body.code.get_secret_value())
        request = m.RegisterGlobusSession(
            refresh_token=SecretStr(refresh), client_id=pending.client_id, local_collection=pending.local_collection
        )
        session = await self.open_session(request)
        gs = cast("GlobusSession", session)
        return {"sid": session.sid, "plugin": self.name, "auth_mode": gs.auth_mode, "local_collection": gs.local_collection}
