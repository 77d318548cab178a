"""Bridge settings: one typed object that ``create_app`` and the CLI share.

Values come from the CLI flags (which resolve the token file); every field can also
be set as ``RADICAL_ORBIT_BRIDGE_<FIELD>``. The server's own TLS files are
``cert_file``/``key_file`` on purpose: ``RADICAL_ORBIT_BRIDGE_CERT`` is the *client's*
CA bundle (see :mod:`radical.orbit.config`) and must not be read as the server cert.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import DEFAULT_BRIDGE_PORT
from ..errors import UsageError
from ..models.messages import DEFAULT_FRAME_LIMIT

DEFAULT_HEARTBEAT = 10.0
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 60.0
MAX_REQUEST_TIMEOUT = 3600.0
DEFAULT_EVENT_BUFFER = 10_000
DEFAULT_SSE_KEEPALIVE = 15.0
KIB = 1024
MIB = 1024 * KIB


class BridgeSettings(BaseSettings):
    """Everything the bridge needs to run.

    :param auth: require ``Authorization: Bearer <token>`` (all routes but ``/health``)
    :param heartbeat_interval: seconds between pings; an endpoint silent for
        ``3 * heartbeat_interval`` is dropped
    :param max_body: largest relayed request body in bytes (413 beyond)
    :param request_timeout: default relay timeout; clients may ask for another with
        ``X-Orbit-Timeout`` up to ``max_request_timeout``
    :param event_buffer: events kept for ``Last-Event-ID`` replay
    :param sse_keepalive: seconds between ``: keep-alive`` comments on ``/events``
    :param register_timeout: seconds a new WebSocket may take to send ``register``
    :param coalesce_writes: gather each socket's writes of one event-loop pass into one
        system call (:mod:`.coalesce`); off: uvicorn writes as it does by itself
    :param signin_lifetime: seconds an Explorer sign-in link stays good (it works once)
    :param browser_idle: seconds an Explorer browser session may stay unused before it ends

    Limits, so that no client or endpoint can exhaust the bridge (each refusal names
    its setting):

    :param max_inflight_per_identity: relayed requests one client identity may have
        waiting for an answer (429 beyond)
    :param max_inflight_per_endpoint: relayed requests waiting on one endpoint (503 beyond)
    :param max_held_answer_bytes: bytes of answers received from endpoints and not yet
        written to their clients, over all clients (503 for an answer beyond)
    :param event_buffer_bytes: bytes of events kept for replay (the oldest go first)
    :param max_notification_bytes: largest notification payload (compact JSON, UTF-8)
        an endpoint may send; larger ones are dropped
    :param max_subscribers_per_identity: ``/events`` streams one identity may have open
        (429 beyond)
    :param subscriber_queue: events a stream may fall behind before it is cut off (it
        resumes with ``Last-Event-ID``)
    :param subscriber_queue_bytes: bytes a stream may fall behind before it is cut off
    """

    model_config = SettingsConfigDict(env_prefix="RADICAL_ORBIT_BRIDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_BRIDGE_PORT, ge=0, le=65535)
    auth: bool = True
    token: SecretStr | None = None
    cert_file: str | None = None
    key_file: str | None = None
    heartbeat_interval: float = Field(default=DEFAULT_HEARTBEAT, gt=0)
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=0)
    request_timeout: float = Field(default=DEFAULT_REQUEST_TIMEOUT, gt=0)
    max_request_timeout: float = Field(default=MAX_REQUEST_TIMEOUT, gt=0)
    event_buffer: int = Field(default=DEFAULT_EVENT_BUFFER, ge=1)
    sse_keepalive: float = Field(default=DEFAULT_SSE_KEEPALIVE, gt=0)
    register_timeout: float = Field(default=10.0, gt=0)
    coalesce_writes: bool = True
    signin_lifetime: float = Field(default=300.0, gt=0, le=3600)
    browser_idle: float = Field(default=12 * 3600.0, gt=0, le=30 * 86400)
    max_inflight_per_identity: int = Field(default=256, ge=1)
    max_inflight_per_endpoint: int = Field(default=1024, ge=1)
    max_held_answer_bytes: int = Field(default=256 * MIB, ge=1)
    event_buffer_bytes: int = Field(default=64 * MIB, ge=1)
    max_notification_bytes: int = Field(default=256 * KIB, ge=1)
    max_subscribers_per_identity: int = Field(default=64, ge=1)
    subscriber_queue: int = Field(default=1000, ge=1)
    subscriber_queue_bytes: int = Field(default=8 * MIB, ge=1)

    @model_validator(mode="after")
    def _check(self) -> BridgeSettings:
        if self.auth and (self.token is None or not self.token.get_secret_value()):
            raise UsageError("the bridge needs a token when auth is on (or pass auth=False / --no-auth)")
        if bool(self.cert_file) != bool(self.key_file):
            raise UsageError("TLS needs both a certificate and a key (--cert and --key)")
        for bound in ("event_buffer_bytes", "subscriber_queue_bytes"):
            # a notification that no buffer or queue could hold would only ever be dropped
            if getattr(self, bound) < self.max_notification_bytes:
                raise UsageError(
                    f"{bound} ({getattr(self, bound)}) must be at least max_notification_bytes "
                    f"({self.max_notification_bytes}): raise it or lower max_notification_bytes"
                )
        return self

    @property
    def max_frame(self) -> int:
        """Largest WebSocket frame taken from an endpoint, announced to it on register.

        A relayed response travels in one frame, base64 may grow it by 4/3: room for
        answers twice the request limit, and never less than the protocol's default.
        """
        return max(DEFAULT_FRAME_LIMIT, 2 * self.max_body + 2**20)

    @property
    def scheme(self) -> str:
        return "https" if self.cert_file else "http"

    @property
    def url(self) -> str:
        """The URL clients should use (a wildcard bind is reached on loopback)."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def redacted(self) -> dict[str, object]:
        """The settings for a startup log line (the token shown only as set/unset)."""
        out = self.model_dump(exclude={"token"})
        out["token"] = "<set>" if self.token is not None else None
        return out
