"""Forwarding: a request for an endpoint connected to another replica, over Redis pub/sub.

Each replica listens on its own channel ``orbit:replica:<id>``. A replica without the
endpoint's socket looks the owner up and publishes the request frame to the owner's
channel in one step (:data:`~.redis_scripts.FORWARD`); Redis says how many listened,
so an owner that is gone is a 503 at once, never a wait. The owner relays the frame
to its endpoint as it relays its own requests (same checks and limits) and publishes
the answer back on the requester's channel, keyed by the request id (ids are unique
across replicas: a random per-process prefix). The requester's deadline (the relay's
timeout) bounds the wait; while it waits, it checks about once a second that the
owner still listens, so an owner that dies mid-request is a 503 then, not a 504 later.

Messages are text: one letter, a JSON header line, and the frame as it is::

    Q{"r": requester, "i": request id, "n": endpoint, "p": plugin, "t": timeout, "w": what}\\n<request frame>
    A{"i": request id, "k": "ok" | "err" | "moved", "s": status}\\n<response frame | error payload>
    L<fence> <folded name>      (the name was taken over: its previous owner lets go)
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from ...errors import (
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    OrbitError,
    error_from_payload,
)
from ...models.messages import Response
from ..identities import fold
from .base import NotHere
from .cancelled import raise_if_cancelled
from .redis_scripts import FORWARD, REPLICA_CHANNEL, lease_key

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)

#: seconds past its own deadline a requester waits for the owner's answer (the owner's
#: 504, with its message, arrives first)
GRACE = 1.0
#: seconds between checks that the owners of waiting requests still listen
SWEEP_INTERVAL = 1.0
RETRY_AFTER = 1


class Forwarder:
    """Both sides of forwarding for one replica."""

    def __init__(self, core: RedisBackplane) -> None:
        self.core = core
        self.channel = REPLICA_CHANNEL + core.rid
        self._forward = core.redis.register_script(FORWARD)
        #: request id -> (answer future, owner replica)
        self.waiting: dict[str, tuple[asyncio.Future[tuple[str, int, str]], str]] = {}
        self._serving: set[asyncio.Task[None]] = set()

    # -- the requester's side --------------------------------------------------------------
    async def forward(self, endpoint: str, plugin: str, request_id: str, frame_text: str, timeout: float, what: str) -> Response:
        """Relay through the owner (see :meth:`.base.Backplane.forward`)."""
        self.core.require(f"{what}: reach endpoint '{endpoint}', which is not connected to this replica")
        header = json.dumps({"r": self.core.rid, "i": request_id, "n": endpoint, "p": plugin, "t": timeout, "w": what})
        message = f"Q{header}\n{frame_text}"
        loop = asyncio.get_running_loop()
        try:
            for attempt in (1, 2):  # a second time if the owner says the endpoint just moved
                fut: asyncio.Future[tuple[str, int, str]] = loop.create_future()
                self.waiting[request_id] = (fut, "")  # before publishing: the answer may come first
                owner = await self._publish(endpoint, what, message)
                self.waiting[request_id] = (fut, owner)
                try:
                    async with asyncio.timeout(timeout + GRACE):
                        kind, status, body = await fut
                except TimeoutError:
                    raise GatewayTimeoutError(
                        f"endpoint '{endpoint}' did not answer {what} within {timeout:g} s (through replica {owner})",
                        endpoint=endpoint,
                        timeout=timeout,
                    ) from None
                if kind != "moved" or attempt == 2:
                    break
            return self._answer(kind, status, body, endpoint, what)
        finally:
            self.waiting.pop(request_id, None)

    async def _publish(self, endpoint: str, what: str, message: str) -> str:
        try:
            listening, owner = await self._forward(keys=[lease_key(fold(endpoint))], args=[REPLICA_CHANNEL, message])
        except self.core.unreachable as exc:
            self.core.failed(exc)
            raise self.core.unavailable(f"{what}: reach endpoint '{endpoint}'") from None
        if int(listening) < 0:
            raise EndpointNotFoundError(
                f"no endpoint named '{endpoint}' is connected to any replica of this bridge "
                "(`radical-orbit endpoints` lists the connected ones)",
                endpoint=endpoint,
            )
        if int(listening) == 0:
            raise EndpointUnavailableError(
                f"{what}: endpoint '{endpoint}' is held by replica {owner}, which does not answer "
                "(it may have just stopped; the endpoint reconnects elsewhere): retry in a moment",
                endpoint=endpoint,
                retry_after=RETRY_AFTER,
            )
        return str(owner)

    @staticmethod
    def _answer(kind: str, status: int, body: str, endpoint: str, what: str) -> Response:
        if kind == "ok":
            return Response.model_validate_json(body)
        if kind == "moved":
            raise EndpointUnavailableError(
                f"{what}: endpoint '{endpoint}' is moving between replicas; retry in a moment",
                endpoint=endpoint,
                retry_after=RETRY_AFTER,
            )
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = {}
        exc = error_from_payload(status, payload)
        exc.http_status = None  # raised here, not read from an answer: no "HTTP <status>" prefix
        raise exc

    def answered(self, text: str) -> None:
        """An ``A`` message on our channel: hand it to the waiting request."""
        head, _, body = text[1:].partition("\n")
        try:
            header = json.loads(head)
            waiting = self.waiting.get(header["i"])
            kind, status = str(header["k"]), int(header["s"])
        except (ValueError, KeyError, TypeError):
            log.warning("replica channel: malformed answer dropped")
            return
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result((kind, status, body))

    async def sweep(self) -> None:
        """Fail requests whose owner stopped listening (it died after taking them)."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            owners = sorted({owner for _, owner in self.waiting.values() if owner})
            if not owners:
                continue
            counts = await self.core.redis.pubsub_numsub(*(REPLICA_CHANNEL + owner for owner in owners))
            raise_if_cancelled()
            gone = {str(channel).removeprefix(REPLICA_CHANNEL) for channel, count in counts if not int(count)}
            for fut, owner in list(self.waiting.values()):
                if owner in gone and not fut.done():
                    fut.set_exception(
                        EndpointUnavailableError(
                            f"replica {owner}, which holds the endpoint, went away before answering; retry",
                            retry_after=RETRY_AFTER,
                        )
                    )

    # -- the owner's side --------------------------------------------------------------------
    def requested(self, text: str) -> None:
        """A ``Q`` message on our channel: serve it in a task of its own."""
        head, _, frame_text = text[1:].partition("\n")
        try:
            header = json.loads(head)
            args = (str(header["r"]), str(header["i"]), str(header["n"]), str(header["p"]), float(header["t"]), str(header["w"]))
        except (ValueError, KeyError, TypeError):
            log.warning("replica channel: malformed forwarded request dropped")
            return
        task = asyncio.ensure_future(self._serve(*args, frame_text))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, requester: str, request_id: str, endpoint: str, plugin: str, timeout: float, what: str, frame_text: str) -> None:
        try:
            response = await self.core.hooks.serve_forwarded(endpoint, plugin, request_id, frame_text, timeout, what)
            kind, status, body = "ok", response.status, response.model_dump_json()
        except NotHere:
            kind, status, body = "moved", 0, ""
        except OrbitError as exc:
            kind, status, body = "err", exc.status_code, json.dumps(exc.to_payload(request_id))
        except Exception:  # a bug must not leave the requester waiting for its deadline
            log.exception("forwarded request %s for endpoint %s failed", request_id, endpoint)
            failed = EndpointUnavailableError(f"{what}: the replica holding endpoint '{endpoint}' failed to relay it")
            kind, status, body = "err", failed.status_code, json.dumps(failed.to_payload(request_id))
        header = json.dumps({"i": request_id, "k": kind, "s": status})
        await self.core.quietly(self.core.redis.publish(REPLICA_CHANNEL + requester, f"A{header}\n{body}"))

    def fail_waiting(self) -> None:
        """Redis went away: no answer can come back, fail the waiting requests now."""
        for fut, _ in self.waiting.values():
            if not fut.done():
                fut.set_exception(self.core.unavailable("wait for the answer of a forwarded request"))

    def cancel_all(self) -> None:
        for task in list(self._serving):
            task.cancel()
        self.fail_waiting()

