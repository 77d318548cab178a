"""Request bodies of the globus plugin's routes: validated before Globus is called.

Every model forbids unknown fields, so a typo (``sync_leve``) is a 422 naming the
field instead of a silently ignored option. Collections are ``"local"`` or a UUID;
task ids are UUIDs; item lists are non-empty. Credentials are ``SecretStr`` so they
never show in a repr or a validation message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ...errors import quoted
from ..base import SessionRequest, StrictBody
from .local import LOCAL, normalize_uuid

SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
TASK_STATUSES = ("ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED")
#: Globus' task_list page size (its maximum ``limit``)
TASK_LIST_PAGE = 1000
#: most task ids one call may track or wait for
MAX_TRACK = 10_000
#: longer than any session id the endpoint hands out
MAX_SID = 128
#: most task ids one task list may filter on (they travel in the request URL)
MAX_TASK_ID_FILTER = 100


def _collection(value: str) -> str:
    if value == LOCAL:
        return value
    found = normalize_uuid(value)
    if found is None:
        raise ValueError(f"must be a collection UUID or 'local', got {quoted(value)}")
    return found


def _task_id(value: str) -> str:
    found = normalize_uuid(value)
    if found is None:
        raise ValueError(f"must be a Globus task UUID, got {quoted(value)}")
    return found


def _path(value: str) -> str:
    if not value or not value.strip():
        raise ValueError("must be a non-empty path")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _deadline(value: datetime) -> datetime:
    # Globus keeps deadlines as UTC timestamps: one that lies past 9999 in UTC cannot
    # be stored or shown (and was, in the emulator, until every task listing failed)
    if value.tzinfo is None:
        return value  # sent as given; Globus reads a time without a zone as UTC
    try:
        value.astimezone(UTC)
    except OverflowError:
        side = "before the year 1" if value.year == 1 else "after the year 9999"
        raise ValueError(f"lies {side} in UTC; give a real date (ISO 8601)") from None
    return value


def _label_value(value: str) -> str:
    if "/" in value:
        raise ValueError(
            "must not contain '/' (it separates clauses of the Globus task filter, which has no escape for it); "
            "to find a label that holds one, match it with '~' and '*' in its place, e.g. '~a*b' for 'a/b'"
        )
    return value


def _utc(value: datetime) -> datetime:
    """Aware and naive times compared alike: a time without a zone is UTC, as Globus reads it."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _filter_time(value: datetime | None) -> str:
    """One end of a task_list time range, in UTC as Globus writes times (empty: open)."""
    if value is None:
        return ""
    return _utc(value).replace(tzinfo=None, microsecond=0).isoformat()  # the year in 4 digits (strftime's %Y: '1' for 0001)


CollectionRef = Annotated[str, AfterValidator(_collection)]
Deadline = Annotated[datetime, AfterValidator(_deadline)]
TaskId = Annotated[str, AfterValidator(_task_id)]
PathStr = Annotated[str, AfterValidator(_path)]
Label = Annotated[str, Field(max_length=128)]


# -- sessions --------------------------------------------------------------------
class RegisterGlobusSession(StrictBody):
    """``POST /register_session``: exactly one credential kind.

    * ``access_token`` (not renewed), or
    * ``refresh_token`` + ``client_id`` (+ ``client_secret`` for a confidential client), or
    * ``client_id`` + ``client_secret`` (client-credentials grant, for pipelines).
    """

    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    local_collection: str | None = None
    #: task ids to track at once (re-attach after a restart or a new token)
    track: Annotated[list[TaskId], Field(max_length=MAX_TRACK)] | None = None
    #: the caller's previous session: its tasks move to the new one, which tells nothing
    #: they already told, and it is closed (ignored when unknown, e.g. after a restart)
    replaces: Annotated[str, Field(min_length=1, max_length=MAX_SID)] | None = None

    @field_validator("client_id")
    @classmethod
    def _client_id_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = normalize_uuid(value)
        if found is None:
            raise ValueError("must be a Globus client id (a UUID)")
        return found

    @field_validator("local_collection")
    @classmethod
    def _local_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = normalize_uuid(value)
        if found is None:
            raise ValueError(f"must be a collection UUID, got {quoted(value)}")
        return found

    @field_validator("access_token", "refresh_token", "client_secret")
    @classmethod
    def _non_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("must not be empty")
        # an HTTP header cannot carry it: every Globus call would fail as a network error
        # (the usual cause is a token read from a file with its trailing newline)
        if not (text.isascii() and text.isprintable()) or any(ch.isspace() for ch in text):
            raise ValueError(
                "has spaces, line breaks or non-ASCII characters, which no Globus credential has; "
                "strip it (e.g. open(path).read().strip())"
            )
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> RegisterGlobusSession:
        has_at = self.access_token is not None
        has_rt = self.refresh_token is not None
        has_cs = self.client_secret is not None
        if has_at and (has_rt or has_cs):
            raise ValueError("give either access_token, or refresh_token + client_id, or client_id + client_secret, not several")
        if has_rt and not self.client_id:
            raise ValueError("refresh_token needs client_id (the Globus app the token was issued to)")
        if has_cs and not self.client_id:
            raise ValueError("client_secret needs client_id")
        if not (has_at or has_rt or has_cs):
            raise ValueError(
                "a Globus credential is required: access_token, or refresh_token + client_id, "
                "or client_id + client_secret"
            )
        return self

    @property
    def auth_mode(self) -> str:
        if self.access_token is not None:
            return "access_token"
        if self.refresh_token is not None:
            return "refresh_token"
        return "client_credentials"


# -- transfers -------------------------------------------------------------------
class TransferItem(StrictBody):
    source: PathStr
    destination: PathStr
    recursive: bool | None = None
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


class FilterRule(StrictBody):
    name: Annotated[str, Field(min_length=1)]
    method: Literal["include", "exclude"] = "exclude"
    type: Literal["file", "dir"] | None = None


class SubmitTransferRequest(SessionRequest):
    source: CollectionRef | None = None
    destination: CollectionRef | None = None
    items: Annotated[list[TransferItem], Field(min_length=1)]
    label: Label | None = None
    sync_level: Literal["exists", "size", "mtime", "checksum", 0, 1, 2, 3] | None = None
    verify_checksum: bool | None = None
    preserve_timestamp: bool | None = None
    encrypt_data: bool | None = None
    deadline: Deadline | None = None
    skip_source_errors: bool | None = None
    fail_on_quota_errors: bool | None = None
    delete_destination_extra: bool | None = None
    notify_on_succeeded: bool | None = None
    notify_on_failed: bool | None = None
    notify_on_inactive: bool | None = None
    source_local_user: str | None = None
    destination_local_user: str | None = None
    filter_rules: list[FilterRule] | None = None
    submission_id: TaskId | None = None
    fail_fast: bool = False

    @field_validator("sync_level", mode="before")
    @classmethod
    def _sync_name(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be one of exists/size/mtime/checksum or 0-3")  # noqa: TRY004 - pydantic wants ValueError
        if isinstance(value, str) and value.strip().isdigit():
            digits = value.strip()
            return int(digits) if len(digits) <= 3 else value  # a long run of digits is no level: Literal names it
        return value

    @property
    def sync_level_int(self) -> int | None:
        if self.sync_level is None:
            return None
        if isinstance(self.sync_level, str):
            return SYNC_LEVELS[self.sync_level]
        return int(self.sync_level)


class DeleteRequest(SessionRequest):
    collection: CollectionRef | None = None
    paths: Annotated[list[PathStr], Field(min_length=1)]
    recursive: bool = False
    label: Label | None = None
    ignore_missing: bool | None = None
    interpret_globs: bool | None = None
    deadline: Deadline | None = None
    local_user: str | None = None
    submission_id: TaskId | None = None

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# -- tasks -----------------------------------------------------------------------
class TaskRequest(SessionRequest):
    task_id: TaskId


class TaskWaitRequest(SessionRequest):
    task_id: TaskId
    timeout: Annotated[float, Field(ge=0, le=3600)] = 60
    polling_interval: Annotated[float, Field(ge=0.1, le=3600)] = 10


class WaitAllRequest(SessionRequest):
    task_ids: Annotated[list[TaskId], Field(min_length=1, max_length=MAX_TRACK)]
    timeout: Annotated[float, Field(ge=0, le=3600)] = 60


class TrackRequest(SessionRequest):
    #: None: every ACTIVE/INACTIVE task of the identity
    task_ids: Annotated[list[TaskId], Field(max_length=MAX_TRACK)] | None = None
    #: how long to spend asking Globus one by one for ids its task list does not show
    timeout: Annotated[float, Field(ge=0, le=3600)] = 60


class ListTasksRequest(SessionRequest):
    """``task_list``'s filters. Values within one filter are ORed, filters are ANDed
    (Globus' rule). ``label`` is a pattern: ``=`` exact (default), ``!`` not, ``~`` glob
    ignoring case, ``!~``; a list of patterns ORs them."""

    limit: Annotated[int, Field(ge=1, le=TASK_LIST_PAGE)] = 100
    offset: Annotated[int, Field(ge=0)] = 0
    status: list[Literal["ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED"]] | None = None
    type: list[Literal["TRANSFER", "DELETE"]] | None = None
    #: a label has at most 128 characters: a pattern gets room for its operator and stars
    label: Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=50)] | None = None
    #: only these tasks (each id costs 37 characters of the request URL)
    task_id: Annotated[list[TaskId], Field(min_length=1, max_length=MAX_TASK_ID_FILTER)] | None = None
    requested_after: Deadline | None = None
    requested_before: Deadline | None = None
    completed_after: Deadline | None = None
    completed_before: Deadline | None = None

    @field_validator("status", "type", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip().upper() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [v.upper() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("label", mode="before")
    @classmethod
    def _label_patterns(cls, value: Any) -> Any:
        """One pattern or a list; a comma separates alternatives, in either."""
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            return value  # pydantic names the wrong type
        out: list[str] = []
        for pattern in patterns:
            out.extend(_label_value(pattern).split(","))
        return out

    @model_validator(mode="after")
    def _ranges(self) -> ListTasksRequest:
        for what in ("requested", "completed"):
            after, before = getattr(self, f"{what}_after"), getattr(self, f"{what}_before")
            if after is not None and before is not None and _utc(after) > _utc(before):
                raise ValueError(f"{what}_after ({after}) is later than {what}_before ({before}): no task can match")
        return self

    def filter_clauses(self) -> str:
        """The Globus ``filter`` string (TRANSFER and DELETE tasks unless ``type`` narrows it)."""
        clauses = ["type:" + ",".join(self.type or ["TRANSFER", "DELETE"])]
        if self.task_id:
            clauses.append("task_id:" + ",".join(self.task_id))
        if self.status:
            clauses.append("status:" + ",".join(self.status))
        if self.label:
            clauses.append("label:" + ",".join(self.label))
        for what, field in (("requested", "request_time"), ("completed", "completion_time")):
            after, before = getattr(self, f"{what}_after"), getattr(self, f"{what}_before")
            if after is not None or before is not None:
                clauses.append(f"{field}:{_filter_time(after)},{_filter_time(before)}")
        return "/".join(clauses)


class UpdateTaskRequest(SessionRequest):
    """``PUT /task/{id}``: a new label and/or deadline for a task that has not ended."""

    task_id: TaskId
    label: Label | None = None
    deadline: Deadline | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateTaskRequest:
        if self.label is None and self.deadline is None:
            raise ValueError("give a label and/or a deadline: there is nothing to update")
        return self


class TaskEventsRequest(SessionRequest):
    task_id: TaskId
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    errors_only: bool = False


class MarkerRequest(SessionRequest):
    task_id: TaskId
    marker: int | None = None


# -- filesystem ------------------------------------------------------------------
class LsRequest(SessionRequest):
    collection: CollectionRef | None = None
    path: PathStr | None = None
    show_hidden: bool | None = None
    filter: str | list[str] | None = None
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    offset: Annotated[int, Field(ge=0)] | None = None
    orderby: str | None = None
    local_user: str | None = None


class StatRequest(SessionRequest):
    collection: CollectionRef | None = None
    path: PathStr
    local_user: str | None = None


class MkdirRequest(SessionRequest):
    collection: CollectionRef | None = None
    path: PathStr
    local_user: str | None = None


class RenameRequest(SessionRequest):
    collection: CollectionRef | None = None
    oldpath: PathStr
    newpath: PathStr
    local_user: str | None = None


# -- collections -----------------------------------------------------------------
class EndpointSearchRequest(SessionRequest):
    filter_text: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    offset: Annotated[int, Field(ge=0, le=999)] = 0
    filter_scope: Literal[
        "all",
        "my-endpoints",
        "my-gcp-endpoints",
        "recently-used",
        "in-use",
        "shared-by-me",
        "shared-with-me",
        "administered-by-me",
        "hide-no-permissions",
    ] | None = None


class SubmissionIdRequest(SessionRequest):
    """``POST /submission_id``: an id from Globus for the submission ``request`` (a body
    for ``submit_transfer`` or ``delete``, per ``kind``), which is checked first as that
    route checks it, so that bad input costs no Globus call."""

    kind: Literal["transfer", "delete"]
    request: dict[str, Any]


class GetEndpointRequest(SessionRequest):
    endpoint_id: CollectionRef


# -- the Explorer: sessions of the caller, browser login ---------------------------
#: the path of the Explorer's login callback page on the bridge (``<bridge>/ui/callback.html``)
LOGIN_CALLBACK_PATH = "/ui/callback.html"


def _redirect_uri(value: str) -> str:
    from urllib.parse import urlsplit

    if not (value.isascii() and value.isprintable()) or " " in value:
        raise ValueError("must be a URL of printable ASCII without spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"is not a URL: {quoted(value)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {quoted(value)}")
    if not parts.path.endswith(LOGIN_CALLBACK_PATH) or parts.query or parts.fragment:
        raise ValueError(
            f"must be the Explorer's callback page <bridge URL>{LOGIN_CALLBACK_PATH} (no query or fragment), got {quoted(value)}"
        )
    return value


def _scope_string(value: str) -> str:
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise ValueError(f"must be one Globus scope string (printable ASCII, no spaces), got {quoted(value)}")
    return value


ScopeString = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_scope_string)]


class SessionsRequest(StrictBody):
    """``POST /sessions`` ``{}``: the caller's own sessions (a reloaded page finds its session)."""


class LoginStartRequest(StrictBody):
    """``POST /login_start``: begin "Log in with Globus" (authorization code + PKCE).

    :param redirect_uri: where Globus Auth sends the browser back: the Explorer's
        ``<bridge URL>/ui/callback.html``
    :param scopes: what to ask consent for (default: the Transfer scope); a
        ConsentRequired error's ``required_scopes`` go here as they are
    :param local_collection: what ``"local"`` means for the session the login opens
    """

    redirect_uri: Annotated[str, Field(max_length=2048), AfterValidator(_redirect_uri)]
    scopes: Annotated[list[ScopeString], Field(min_length=1, max_length=50)] | None = None
    local_collection: str | None = None

    @field_validator("local_collection")
    @classmethod
    def _local_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = normalize_uuid(value)
        if found is None:
            raise ValueError(f"must be a collection UUID, got {quoted(value)}")
        return found


class LoginFinishRequest(StrictBody):
    """``POST /login_finish``: the ``state`` and ``code`` Globus Auth gave the callback page."""

    state: Annotated[str, Field(min_length=1, max_length=512)]
    #: single use and short-lived, but a credential while it lives: never echoed
    code: SecretStr

    @field_validator("code")
    @classmethod
    def _code_text(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text or len(text) > 4096 or not (text.isascii() and text.isprintable()) or " " in text:
            raise ValueError("must be the code from the callback URL (printable ASCII, at most 4096 characters)")
        return value
