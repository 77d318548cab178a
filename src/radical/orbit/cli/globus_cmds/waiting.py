"""Wait for a Globus task with a live progress bar, driven by the plugin's notifications.

The bar listens to the session's ``transfer_status`` / ``transfer_progress`` /
``transfer_fault`` notifications (``GlobusClient.register_notification_callback``)
and polls ``get_task`` only as a safety net (a slow one while notifications flow,
``--polling-interval`` when they are unavailable). Exit codes: 0 SUCCEEDED,
1 FAILED or INACTIVE, 3 (``--timeout-exit-code``) when the timeout passes.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ...errors import (
    BridgeUnavailableError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    OrbitError,
    RateLimitedError,
)
from ..params import FiniteFloat
from .app import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT, CliExit, Runtime
from .render import fmt_bytes, task_summary

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
STOPPED = TERMINAL | {"INACTIVE"}  # as the Globus CLI and SDK: INACTIVE ends a wait
#: get_task safety-net interval while notifications arrive
NOTIFIED_POLL = 10.0
TOPICS = ("transfer_status", "transfer_progress", "transfer_fault")
#: errors a long wait rides out (the task keeps running in Globus meanwhile); an
#: endpoint that restarts is briefly unknown to the bridge
TRANSIENT = (BridgeUnavailableError, EndpointNotFoundError, EndpointUnavailableError, GatewayTimeoutError, RateLimitedError)
#: queue marker: the endpoint (re)connected to the bridge
RECONNECTED = "endpoint_connected"
#: consecutive failed polls before a wait gives up
MAX_POLL_FAILURES = 20


def wait_options(f: F) -> F:
    """``--timeout``, ``--polling-interval``, ``--timeout-exit-code`` (task wait, --wait)."""
    f = click.option(
        "--timeout-exit-code",
        type=click.IntRange(0, 255),
        default=EXIT_TIMEOUT,
        show_default=True,
        help="Exit status when the timeout passes (the task keeps running).",
    )(f)
    f = click.option(
        "--polling-interval",
        type=FiniteFloat(0.1),
        default=1.0,
        show_default=True,
        help="Seconds between get_task polls when notifications are unavailable.",
    )(f)
    f = click.option(
        "--timeout",
        type=FiniteFloat(0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Give up waiting after this long (default: wait until the task ends).",
    )(f)
    return f


class FaultLines:
    """The wait's fault lines: one per distinct fault, not one per retry.

    Globus retries a failing file and logs the same error again at every attempt (a new
    event, only its time differs), and the plugin notifies each new event. A fault is
    identified by its code, description and details (which name the path), so a file
    that keeps failing shows once, and a second file failing shows too.
    """

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.seen: set[tuple[str, str, str]] = set()

    def line(self, payload: dict[str, Any]) -> str | None:
        """The text for a ``transfer_fault`` payload, or None if that fault was shown already."""
        code = str(payload.get("code") or payload.get("nice_status") or "fault")
        desc = str(payload.get("description") or "")
        details = " ".join(str(payload.get("details") or "").split())[:200]
        key = (code, desc, details)
        # without an event (time and details unknown) the plugin reports the task's nice_status:
        # a stand-in for a fault whose event may already have been shown
        stand_in = payload.get("time") is None and not details
        repeated = key in self.seen or (stand_in and any(seen[0] == code for seen in self.seen))
        if repeated and not payload.get("cancelling"):
            return None
        self.seen.add(key)
        text = f"fault on task {self.task_id}: {code}" + (f" {desc}" if desc and desc != code else "")
        if details:
            text += f" ({details})"
        if payload.get("cancelling"):
            text += " -- cancelling (--fail-fast)"
        return text


class _View:
    """What the bar shows, merged from task documents and notification payloads."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.doc: dict[str, Any] = dict(task)
        self.rate: float | None = None
        self.faults: list[str] = []

    def merge(self, payload: dict[str, Any]) -> None:
        for key, value in payload.items():
            if value is not None and key not in ("task_id",):
                self.doc[key] = value
        for key in ("bytes_per_second", "rate", "effective_bytes_per_second"):
            if isinstance(payload.get(key), int | float):
                self.rate = float(payload[key])
                break

    @property
    def status(self) -> str:
        return str(self.doc.get("status") or "ACTIVE")

    def files_done(self) -> int:
        d = self.doc
        return int(d.get("files_transferred") or 0) + int(d.get("files_skipped") or 0)

    def files_total(self) -> int | None:
        total = self.doc.get("files")
        if isinstance(total, int) and total > 0:
            return max(total, self.files_done())
        return None

    def detail(self) -> str:
        parts = [fmt_bytes(self.doc.get("bytes_transferred"))]
        if self.rate:
            parts.append(f"{fmt_bytes(self.rate)}/s")
        nice = self.doc.get("nice_status")
        status = self.status
        parts.append(status if not nice or nice == "OK" or status in TERMINAL else f"{status} ({nice})")
        return "  ".join(parts)


def wait_for_task(rt: Runtime, task_id: str, *, timeout: float | None, polling_interval: float, timeout_exit_code: int, label: str | None = None) -> int:
    """Wait for ``task_id``, show progress (text mode), print the outcome, return the exit code."""
    gc = rt.client
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def on_event(topic: str, payload: dict[str, Any]) -> None:
        if payload.get("task_id") == task_id and topic in TOPICS:
            events.put((topic, payload))

    cid = None
    register = getattr(gc, "register_notification_callback", None)
    if register is not None:
        try:
            cid = register(on_event)
        except OrbitError as exc:  # no event stream: poll instead
            log.debug("notifications unavailable, polling: %s", exc)
    topo = None
    if cid is not None:  # an endpoint that comes back lost our session: ask at once, not at the next poll
        try:
            topo = rt.bridge.register_callback(rt.endpoint or "*", "*", "endpoint_connected", lambda _ev: events.put((RECONNECTED, {})))
        except OrbitError as exc:
            log.debug("topology events unavailable: %s", exc)
    track = getattr(gc, "track", None)
    if cid is not None and track is not None:
        try:  # a task submitted by another session: ask this session's poller to follow it
            track(task_ids=[task_id])
        except OrbitError as exc:
            log.debug("track(%s) failed: %s", task_id, exc)
    try:
        return _wait_loop(rt, task_id, events, notified=cid is not None, timeout=timeout, polling_interval=polling_interval, timeout_exit_code=timeout_exit_code, label=label)
    except KeyboardInterrupt:
        raise CliExit(
            EXIT_INTERRUPTED,
            f"Interrupted. Task {task_id} keeps running; wait again with: radical-orbit globus task wait {task_id}",
        ) from None
    finally:
        if cid is not None:
            try:
                gc.unregister_notification_callback(cid)
            except (OrbitError, AttributeError) as exc:
                log.debug("unregister callback: %s", exc)
        if topo is not None:
            rt.bridge.unregister_callback(topo)


def _wait_loop(rt: Runtime, task_id: str, events: queue.Queue[tuple[str, dict[str, Any]]], *, notified: bool, timeout: float | None, polling_interval: float, timeout_exit_code: int, label: str | None) -> int:
    start = time.monotonic()
    deadline = start + timeout if timeout is not None else None
    poll_every = max(polling_interval, NOTIFIED_POLL) if notified else polling_interval
    view = _View(rt.call("get_task", task_id))
    next_poll = time.monotonic() + poll_every
    progress = None if rt.structured else _make_progress(rt)
    bar = None
    timed_out = False
    failures = 0
    faults = FaultLines(task_id)
    try:
        if progress is not None:
            progress.start()
            bar = progress.add_task(label or view.doc.get("label") or task_id[:8], total=view.files_total(), detail=view.detail())
        while view.status not in STOPPED:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            wake = next_poll if deadline is None else min(next_poll, deadline)
            try:
                topic, payload = events.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                topic, payload = "", {}
            if topic == "transfer_fault":
                text = faults.line(payload)
                if text is not None:
                    _say(progress, text)
            elif topic and topic != RECONNECTED:
                view.merge(payload)
            stopped = bool(topic) and str(payload.get("status") or "") in STOPPED
            if stopped or topic == RECONNECTED or time.monotonic() >= next_poll:
                try:
                    view.merge(rt.call("get_task", task_id))
                    failures = 0
                except TRANSIENT as exc:
                    failures += 1
                    if failures >= MAX_POLL_FAILURES:
                        raise
                    _say(progress, f"cannot ask for task {task_id} ({failures}x): {' '.join(exc.message.split())}; retrying")
                next_poll = time.monotonic() + (poll_every if not failures else min(30.0, 0.5 * 2**failures))
            if progress is not None and bar is not None:
                progress.update(bar, total=view.files_total(), completed=view.files_done(), detail=view.detail())
        if progress is not None and bar is not None:
            total, done = view.files_total(), view.files_done()
            if view.status == "SUCCEEDED":
                total = done = max(total or 0, done)
            progress.update(bar, total=total, completed=done, detail=view.detail())
    finally:
        if progress is not None:
            progress.stop()
    elapsed = time.monotonic() - start
    doc = view.doc
    if rt.structured:
        rt.emit(doc)
    status = view.status
    if timed_out:
        click.echo(
            f"Task {task_id} is still {status} after {timeout:g} s (timeout); it keeps running -- "
            f"wait again with: radical-orbit globus task wait {task_id}",
            err=True,
        )
        return timeout_exit_code
    if not rt.structured:
        line = task_summary(doc, elapsed)
        if status == "SUCCEEDED":
            click.echo(line)
        else:
            click.echo(line, err=True)
    if status == "SUCCEEDED":
        return EXIT_OK
    if status == "INACTIVE":
        click.echo(f"Task {task_id} is INACTIVE: it needs attention (see `radical-orbit globus task events {task_id}`)", err=True)
    elif not rt.structured:
        click.echo(f"See why: radical-orbit globus task events {task_id}", err=True)
    return EXIT_ERROR


def _say(progress: Any, text: str) -> None:
    """A warning line above the progress bar (or on stderr when there is no bar)."""
    if progress is not None:
        from rich.text import Text

        # Text: Globus' words are not markup; soft_wrap: one line, whatever the console width
        progress.console.print(Text(text, style="yellow"), soft_wrap=True)
    else:
        click.echo(text, err=True)


def _make_progress(rt: Runtime) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),  # labels are not markup
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(),
        console=rt.err,
        transient=False,
        refresh_per_second=8,
    )
