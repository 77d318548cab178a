"""The bridge <-> endpoint WebSocket protocol, written down once.

Every frame is a JSON text message holding one of the models below, told apart by
``type``. Both ends validate with :data:`FRAME_ADAPTER`; a frame that does not
parse gets an :class:`ErrorFrame` back and a log line, never a crash.

Flow::

    endpoint                               bridge
       |-- WS upgrade (Authorization: Bearer <endpoint key>, X-Orbit-Endpoint: <name>)
       |<-- 101, or 401/403/400/409 + JSON ------|   (refused before the upgrade)
       |-- register {name, plugins, v} --------->|
       |<------------------ registered {hb} -----|   (or error + close 4xxx)
       |<-- request {id, method, path, ...} -----|   many in flight at once
       |-- response {id, status, headers, body} >|
       |<------------------- cancel {id} --------|   (the bridge stopped waiting for it)
       |-- notification {plugin, sid, topic, seq} >|
       |<------------------------- ack {seq} ----|   (once stored; cumulative)
       |<-- ping / pong --> (either side) ------>|

Notifications are delivered at least once by the endpoint and stored at most once by
the bridge, so each is told exactly once although a bridge (replica) may die between
receiving one and storing it: the endpoint numbers them (``seq``, per ``run``, one run
per endpoint process), keeps each until an ``ack`` covers it, and sends the ones not
acknowledged again on its next connection (to this bridge or another replica). The
bridge stores a notification and then acknowledges it; one it already stored (same
endpoint, same run, ``seq`` not above the last stored) is acknowledged and not stored
again. A bridge that says nothing of acks (``registered.acks`` false) gets each once.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

PROTOCOL_VERSION = 1

#: WebSocket close codes (4000-4999 are ours).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_BAD_VERSION = 4002
CLOSE_NAME_TAKEN = 4009
#: the same endpoint key registered the same name on a new connection: this one is over
CLOSE_REPLACED = 4009
CLOSE_NAME_RESERVED = 4010
CLOSE_HEARTBEAT_TIMEOUT = 4008

#: Names an endpoint may not take: they are the bridge's own top-level routes.
RESERVED_NAMES = frozenset(
    {"endpoints", "endpoint", "events", "health", "healthz", "ws", "docs", "redoc", "openapi.json", "favicon.ico", "static", "api", "ui"}
)

#: The request header in which the bridge tells the endpoint who is calling (the name of
#: the caller's identity; the bridge drops whatever a client sent under this name).
IDENTITY_HEADER = "x-orbit-identity"

#: Endpoint names: URL-path safe, no slashes.
ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _finite_numbers(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_numbers(v) for v in value]
    return value


#: the frame limit each side assumes when the other did not announce one
DEFAULT_FRAME_LIMIT = 64 * 2**20
#: no side may announce a limit below this
MIN_FRAME_LIMIT = 2**16


def oversize(text: str, limit: int) -> int | None:
    """The bytes ``text`` takes as a WebSocket text frame (UTF-8) when that exceeds
    ``limit``, else None. Nearly free for the usual frame: a UTF-8 character takes at
    most four bytes, so a text of up to ``limit // 4`` characters always fits."""
    if len(text) <= limit // 4:
        return None
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginInfo(BaseModel):
    """What an endpoint says about one plugin it hosts (or could not load)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: str = ""
    description: str = ""
    enabled: bool = True
    reason: str | None = None


class Register(_Frame):
    type: Literal["register"] = "register"
    v: int = PROTOCOL_VERSION
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN)
    plugins: list[PluginInfo] = Field(default_factory=list)
    host: dict[str, Any] = Field(default_factory=dict)
    version: str = ""
    #: largest frame (UTF-8 bytes) the endpoint accepts: the bridge answers 413 to a
    #: request whose frame would be larger, instead of sending it and losing the socket
    max_frame: int | None = Field(default=None, ge=MIN_FRAME_LIMIT)
    #: this endpoint process's random id: notification ``seq`` numbers count within it
    run: str | None = Field(default=None, max_length=64)
    #: the endpoint stops work on a request when told ``cancel`` (an endpoint that says
    #: nothing of it is never sent one: it would answer the frame as malformed)
    cancels: bool = False


class Registered(_Frame):
    type: Literal["registered"] = "registered"
    v: int = PROTOCOL_VERSION
    name: str
    heartbeat_interval: float
    #: largest frame (UTF-8 bytes) the bridge accepts: the endpoint answers 502 instead
    #: of sending a larger response (None: :data:`DEFAULT_FRAME_LIMIT`)
    max_frame: int | None = Field(default=None, ge=MIN_FRAME_LIMIT)
    #: the bridge acknowledges numbered notifications once it has stored them
    acks: bool = False


class Request(_Frame):
    """A client's HTTP request, relayed by the bridge to the endpoint.

    ``path`` is ``/{plugin}/{route}`` (the endpoint name already stripped).
    """

    type: Literal["request"] = "request"
    id: str
    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = Field(default_factory=list)
    body: str = ""
    body_encoding: Literal["utf8", "base64"] = "utf8"


class Response(_Frame):
    type: Literal["response"] = "response"
    id: str
    status: int
    headers: list[tuple[str, str]] = Field(default_factory=list)
    body: str = ""
    body_encoding: Literal["utf8", "base64"] = "utf8"


class Cancel(_Frame):
    """The bridge will not wait for the answer to request ``id`` any longer (its deadline
    passed: the client got a 504): the endpoint may stop the work and need not answer."""

    type: Literal["cancel"] = "cancel"
    id: str
    reason: str = ""


class Notification(_Frame):
    """A plugin notification, scoped to (endpoint, plugin, session, topic)."""

    type: Literal["notification"] = "notification"
    plugin: str
    topic: str
    sid: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    ts: Annotated[float, Field(allow_inf_nan=False)]
    dropped: Annotated[int, Field(ge=0)] = 0
    #: the identity whose session this is (from the session's opener); None: everyone's
    owner: str | None = None
    #: the endpoint's number for it within its run (None: not numbered, never acknowledged)
    seq: Annotated[int, Field(ge=1)] | None = None

    @field_validator("payload")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        """NaN and infinity become null, as the frame's own JSON writes them: a JSON
        parser accepts the bare tokens, but clients of ``/events`` would not."""
        return _finite_numbers(value)  # type: ignore[no-any-return]


class Ping(_Frame):
    type: Literal["ping"] = "ping"
    ts: float


class Pong(_Frame):
    type: Literal["pong"] = "pong"
    ts: float


class Ack(_Frame):
    """The bridge has stored every numbered notification of this connection up to ``seq``."""

    type: Literal["ack"] = "ack"
    seq: Annotated[int, Field(ge=1)]


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None


Frame = Annotated[
    Register | Registered | Request | Response | Cancel | Notification | Ack | Ping | Pong | ErrorFrame,
    Field(discriminator="type"),
]
FRAME_ADAPTER: TypeAdapter[Frame] = TypeAdapter(Frame)


def encode_body(data: bytes) -> tuple[str, Literal["utf8", "base64"]]:
    """Carry text bodies as-is (cheap), anything else as base64."""
    try:
        return data.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def decode_body(body: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(body)
    return body.encode("utf-8")


def parse_frame(raw: str | bytes) -> Frame:
    """Validate one frame; raises ``pydantic.ValidationError`` or ``ValueError``."""
    return FRAME_ADAPTER.validate_json(raw)


def dump_frame(frame: _Frame) -> str:
    return frame.model_dump_json()


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dump_response(response: Response) -> str:
    """``dump_frame(response)`` for the one frame on every relayed call's path.

    The C JSON encoder on the fields, half the cost of ``model_dump_json``;
    ``tests/unit/endpoint/test_endpoint_dispatch.py`` keeps the two equal.
    """
    return _dumps(
        {
            "type": "response",
            "id": response.id,
            "status": response.status,
            "headers": response.headers,
            "body": response.body,
            "body_encoding": response.body_encoding,
        }
    )


def session_tag(sid: str) -> str:
    """Public tag of a session id, used to scope events on the bridge.

    Events published to clients carry this tag instead of the sid itself: anyone
    reading ``/events`` can filter by session but cannot use the session.
    """
    import hashlib

    return hashlib.sha256(sid.encode("utf-8")).hexdigest()[:32]
