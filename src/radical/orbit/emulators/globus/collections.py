"""Collections: folders on this machine that play Globus collections.

A collection maps Globus paths (``/``, ``/~/``, relative paths) onto a root folder.
:meth:`Collection.resolve` is the one gate every file operation and task passes:
``..`` above the root, absolute tricks and symlinks leading out of the root are
refused with :class:`PathEscape`, which the API layer turns into Globus's
permission error.

Config file format (``--config FILE``)::

    {"collections": [
        {"id": "<uuid>", "display_name": "My data", "root": "/data/x",
         "entity_type": "GCSv4_host", "owner_string": "me@example.org",
         "home": "/home/me/", "requires_data_access": false,
         "description": "...", "keywords": "a,b", "quota_bytes": null,
         "bandwidth": null, "files": {"home/me/hello.txt": "hi\\n"}}
    ]}
"""

from __future__ import annotations

import errno
import grp
import math
import os
import pwd
import stat as stat_mod
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .settings import DEV_IDENTITY_ID, DEV_USERNAME

#: Linux's limits: a longer path or file name fails with ENAMETOOLONG
PATH_MAX = 4096
NAME_MAX = 255

__all__ = [
    "DATA_ACCESS_SCOPE",
    "LATEST_TIME",
    "TUTORIAL_1",
    "TUTORIAL_2",
    "Collection",
    "CollectionRegistry",
    "CollectionSpec",
    "PathEscape",
    "default_specs",
    "file_document",
    "globus_time",
]

TUTORIAL_1 = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"
TUTORIAL_2 = "31ce9ba0-176d-45a5-add3-f37d233ba47d"
TUTORIAL_OWNER_ID = "c699d42e-d274-11e5-bf75-1fc5bf53bb24"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
DATA_ACCESS_SCOPE = "https://auth.globus.org/scopes/{id}/data_access"

ENTITY_TYPES = (
    "GCSv5_endpoint",
    "GCSv5_mapped_collection",
    "GCSv5_guest_collection",
    "GCP_mapped_collection",
    "GCP_guest_collection",
    "GCSv4_host",
    "GCSv4_share",
)


class PathEscape(Exception):
    """A path that would leave the collection root."""


class CollectionSpec(BaseModel):
    """One collection as written in the config file."""

    model_config = ConfigDict(extra="forbid")

    id: str
    display_name: str
    root: Path | None = None
    entity_type: str = "GCSv4_host"
    owner_string: str = DEV_USERNAME
    owner_id: str | None = None
    home: str = "/"
    requires_data_access: bool = False
    description: str | None = None
    organization: str | None = None
    department: str | None = None
    keywords: str | None = None
    contact_email: str | None = None
    public: bool = True
    quota_bytes: int | None = Field(default=None, ge=0)
    bandwidth: float | None = Field(default=None, gt=0, description="bytes/s cap for data read or written")
    #: files to create at start when missing: {"relative/path": "text"}
    files: dict[str, str] = Field(default_factory=dict)
    local: bool = False

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        """Collection ids are UUIDs, compared in canonical lower-case form."""
        return str(uuid.UUID(value))

    @field_validator("entity_type")
    @classmethod
    def _entity_type(cls, value: str) -> str:
        if value not in ENTITY_TYPES:
            raise ValueError(f"entity_type must be one of {', '.join(ENTITY_TYPES)}")
        return value


def default_specs(root: Path) -> list[CollectionSpec]:
    """The two tutorial collections plus one on a local folder."""
    godata = {f"home/share/godata/file{n}.txt": f"file{n}: Globus Tutorial Collection data (emulated)\n" for n in (1, 2, 3)}
    local_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"radical-orbit-emulator-local:{root.resolve()}"))
    common: dict[str, Any] = {
        "entity_type": "GCSv4_host",
        "owner_string": "go@globusid.org",
        "owner_id": TUTORIAL_OWNER_ID,
        "home": "/home/dev/",
        "organization": "Globus",
        "keywords": "tutorial,test,example",
        "files": godata,
    }
    return [
        CollectionSpec(
            id=TUTORIAL_1,
            display_name="Globus Tutorial Collection 1",
            root=root / "tutorial1",
            description="Emulated Globus Tutorial Collection 1",
            **common,
        ),
        CollectionSpec(
            id=TUTORIAL_2,
            display_name="Globus Tutorial Collection 2",
            root=root / "tutorial2",
            description="Emulated Globus Tutorial Collection 2",
            **common,
        ),
        CollectionSpec(
            id=local_id,
            display_name="Orbit Local Collection",
            root=root / "local",
            entity_type="GCP_mapped_collection",
            home="/",
            description="A folder on this machine served by the Orbit Globus emulator",
            keywords="local,orbit",
            local=True,
        ),
    ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the first and last second a datetime can show (years 1 to 9999, UTC)
EARLIEST_TIME = (datetime.min.replace(tzinfo=UTC) - _EPOCH).total_seconds()
LATEST_TIME = (datetime.max.replace(microsecond=0, tzinfo=UTC) - _EPOCH).total_seconds()


def _utc(ts: float) -> datetime:
    """``ts`` as a UTC datetime, clamped to the years 1-9999.

    Deadlines are checked on the way in, but a state file or a file's mtime (tmpfs allows
    year 10000 and later) may still hold such a time; one bad value must not turn every
    listing into a 500.
    """
    return _EPOCH + timedelta(seconds=int(min(max(ts, EARLIEST_TIME), LATEST_TIME)))


def globus_time(ts: float | None) -> str | None:
    """Task/event time format: ``2021-09-02T18:04:47+00:00`` (None for no time, or NaN)."""
    if ts is None or math.isnan(ts):
        return None
    return _utc(ts).isoformat()


def file_time(ts: float) -> str:
    """File listing time format: ``2023-12-18 16:52:50+00:00``."""
    return _utc(0 if math.isnan(ts) else ts).isoformat(sep=" ")


_UID_NAMES: dict[int, str] = {}
_GID_NAMES: dict[int, str] = {}


def _user(uid: int) -> str:
    if uid not in _UID_NAMES:
        try:
            _UID_NAMES[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _UID_NAMES[uid] = str(uid)
    return _UID_NAMES[uid]


def _group(gid: int) -> str:
    if gid not in _GID_NAMES:
        try:
            _GID_NAMES[gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            _GID_NAMES[gid] = str(gid)
    return _GID_NAMES[gid]


def _type_of(mode: int) -> str:
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISCHR(mode):
        return "chr"
    if stat_mod.S_ISBLK(mode):
        return "blk"
    if stat_mod.S_ISFIFO(mode):
        return "pipe"
    return "other"


def file_document(name: str, st: os.stat_result, *, link: tuple[str, os.stat_result] | None = None, invalid_link: str | None = None) -> dict[str, Any]:
    """A ``DATA_TYPE: file`` document from a stat result.

    :param link: (link target path, lstat of the link) for a valid symlink; ``st`` is the target's stat
    :param invalid_link: the raw target of a dangling / escaping symlink (``st`` is its lstat)
    """
    doc: dict[str, Any] = {
        "DATA_TYPE": "file",
        "name": name,
        "type": "invalid_symlink" if invalid_link is not None else _type_of(st.st_mode),
        "size": st.st_size,
        "last_modified": file_time(st.st_mtime),
        "permissions": f"{stat_mod.S_IMODE(st.st_mode):04o}",
        "user": _user(st.st_uid),
        "group": _group(st.st_gid),
        "link_target": None,
        "link_size": None,
        "link_user": None,
        "link_group": None,
        "link_last_modified": None,
    }
    if link is not None:
        target, lst = link
        doc.update(
            link_target=target,
            link_size=lst.st_size,
            link_user=_user(lst.st_uid),
            link_group=_group(lst.st_gid),
            link_last_modified=file_time(lst.st_mtime),
        )
    elif invalid_link is not None:
        doc["link_target"] = invalid_link
    return doc


class Collection:
    """A live collection: spec plus helpers for paths and the endpoint document."""

    def __init__(self, spec: CollectionSpec, default_root: Path) -> None:
        self.spec = spec
        self.id = spec.id
        self.display_name = spec.display_name
        root = spec.root if spec.root is not None else default_root / spec.id
        self.root = root
        self.home = "/" + spec.home.strip("/") + "/" if spec.home.strip("/") else "/"
        where = f"collection {spec.id} ({spec.display_name!r})"
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{where}: its root {str(root)!r} cannot be made a directory ({exc.strerror}); give it another 'root'") from None
        self.root_real = os.path.realpath(root)
        for rel, text in spec.files.items():
            path = root / rel.lstrip("/")
            if not os.path.realpath(path).startswith(self.root_real + os.sep):
                raise ValueError(f"{where}: seed file {rel!r} is outside its root")
            if not path.exists():
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                except OSError as exc:
                    raise ValueError(f"{where}: seed file {rel!r} cannot be written under its root ({exc.strerror})") from None
        try:
            (root / self.home.strip("/")).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{where}: its home {self.home!r} cannot be made a directory under its root ({exc.strerror})") from None

    def __repr__(self) -> str:
        return f"Collection({self.id!r}, {self.display_name!r}, root={str(self.root)!r})"

    @property
    def data_access_scope(self) -> str:
        return DATA_ACCESS_SCOPE.format(id=self.id)

    def required_scope(self) -> str:
        """The full transfer scope string with this collection's data_access dependency."""
        return f"{TRANSFER_SCOPE}[*{self.data_access_scope}]"

    # ---- paths

    def normalize(self, path: str | None) -> str:
        """The absolute, normalised Globus path for ``path`` (``/~/`` and relative -> home)."""
        if path is None or path == "":
            path = "/~/"
        if "\x00" in path:
            raise PathEscape("NUL byte in path")
        if path == "~" or path.startswith("~/"):
            path = "/" + path
        if path == "/~" or path.startswith("/~/"):
            path = self.home + path[3:]
        elif not path.startswith("/"):
            path = self.home + path
        parts: list[str] = []
        for comp in path.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if not parts:
                    raise PathEscape(path)
                parts.pop()
            else:
                parts.append(comp)
        return "/" + "/".join(parts)

    def fits(self, gpath: str) -> str:
        """The on-disk path of a *normalised* Globus path (links not followed), or
        ENAMETOOLONG (without the host path) where the file system would say so."""
        real = os.path.join(self.root_real, gpath.lstrip("/")) if gpath != "/" else self.root_real
        encoded = os.fsencode(real)
        if len(encoded) >= PATH_MAX or (len(encoded) > NAME_MAX and max(map(len, encoded.split(b"/"))) > NAME_MAX):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        return real

    def real(self, gpath: str) -> str:
        """The on-disk path of a *normalised* Globus path, refusing symlink escapes.

        A path the file system would refuse as too long raises ENAMETOOLONG here,
        before ``realpath``: on a megabyte of ``a/a/...`` that takes minutes.
        """
        real = self.fits(gpath)
        resolved = os.path.realpath(real)
        if resolved != self.root_real and not resolved.startswith(self.root_real + os.sep):
            raise PathEscape(gpath)
        return real

    def resolve(self, path: str | None) -> tuple[str, str]:
        """(normalised Globus path, on-disk path) or :class:`PathEscape`."""
        gpath = self.normalize(path)
        return gpath, self.real(gpath)

    def inside(self, real: str) -> bool:
        """Whether an on-disk path (after following links) stays inside the root."""
        resolved = os.path.realpath(real)
        return resolved == self.root_real or resolved.startswith(self.root_real + os.sep)

    def to_globus(self, real: str) -> str:
        rel = os.path.relpath(os.path.realpath(real), self.root_real)
        return "/" if rel == "." else "/" + rel.replace(os.sep, "/")

    def describe(self, real: str, name: str) -> dict[str, Any]:
        """The file document for an on-disk entry (symlinks as Globus shows them)."""
        lst = os.lstat(real)
        if stat_mod.S_ISLNK(lst.st_mode):
            target = os.readlink(real)
            if self.inside(real):
                try:
                    st = os.stat(real)
                except OSError:
                    return file_document(name, lst, invalid_link=target)
                return file_document(name, st, link=(self.to_globus(real), lst))
            return file_document(name, lst, invalid_link=target)
        return file_document(name, lst)

    # ---- endpoint document

    def endpoint_document(self) -> dict[str, Any]:
        """The ``DATA_TYPE: endpoint`` document (fields the SDK fixtures, CLI and JS types read)."""
        s = self.spec
        gcs5 = s.entity_type.startswith("GCSv5")
        gcp = s.entity_type.startswith("GCP")
        owner_id = s.owner_id or (DEV_IDENTITY_ID if s.owner_string == DEV_USERNAME else str(uuid.uuid5(uuid.NAMESPACE_DNS, s.owner_string)))
        return {
            "DATA_TYPE": "endpoint",
            "id": self.id,
            "display_name": self.display_name,
            "canonical_name": f"{s.owner_string}#{self.id}",
            "name": self.id,
            "username": s.owner_string.split("@")[0],
            "owner_id": owner_id,
            "owner_string": s.owner_string,
            "entity_type": s.entity_type,
            "gcs_version": "5.4.80" if gcs5 else None,
            "description": s.description,
            "organization": s.organization,
            "department": s.department,
            "keywords": s.keywords,
            "contact_email": s.contact_email,
            "contact_info": None,
            "info_link": None,
            "user_message": None,
            "user_message_link": None,
            "public": s.public,
            "french_english_bilingual": False,
            "is_globus_connect": gcp,
            "globus_connect_setup_key": None,
            "gcp_connected": True if gcp else None,
            "gcp_paused": False if gcp else None,
            "s3_url": None,
            "s3_owner_activated": False,
            "host_endpoint": None,
            "host_endpoint_id": None,
            "host_endpoint_display_name": None,
            "host_path": None,
            "mapped_collection_id": None,
            "mapped_collection_display_name": None,
            "disable_verify": False,
            "disable_anonymous_writes": False,
            "force_verify": False,
            "force_encryption": False,
            "mfa_required": False,
            "high_assurance": False,
            "authentication_assurance_timeout": None,
            "authentication_timeout_mins": None,
            "myproxy_server": None,
            "myproxy_dn": None,
            "non_functional": False,
            "non_functional_endpoint_display_name": None,
            "non_functional_endpoint_id": None,
            "oauth_server": None,
            "default_directory": self.home,
            "activated": True,
            "expires_in": -1,
            "expire_time": None,
            "shareable": True,
            "acl_available": False,
            "acl_editable": False,
            "in_use": False,
            "local_user_info_available": gcs5,
            "requester_pays": False,
            "subscription_id": None,
            # the CLI prints the domain of an https URL (what Globus gives): never dialled here
            "gcs_manager_url": f"https://{self.id}.emulator.local" if gcs5 else None,
            "tlsftp_server": f"tlsftp://{self.id}.emulator.local:443" if not gcs5 else None,
            "https_server": None,
            "network_use": "normal",
            "location": None,
            "max_concurrency": None,
            "preferred_concurrency": None,
            "max_parallelism": None,
            "preferred_parallelism": None,
            "my_effective_roles": ["administrator"] if not s.owner_id else [],
            "DATA": [
                {
                    "DATA_TYPE": "server",
                    "hostname": f"{self.id}.emulator.local",
                    "uri": f"gsiftp://{self.id}.emulator.local:2811",
                    "port": 2811,
                    "scheme": "gsiftp",
                    "id": 1,
                    "subject": None,
                    "is_connected": True,
                    "is_paused": False,
                    "incoming_data_port_start": None,
                    "incoming_data_port_end": None,
                    "outgoing_data_port_start": None,
                    "outgoing_data_port_end": None,
                }
            ],
        }

    def search_text(self) -> list[str]:
        s = self.spec
        fields = [self.display_name, f"{s.owner_string}#{self.id}", s.description, s.organization, s.department, s.keywords]
        words: list[str] = []
        for value in fields:
            if value:
                words.extend(w for w in _split_words(value.lower()) if w)
        return words


def _split_words(text: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        if ch.isalnum():
            cur.append(ch)
        else:
            if cur:
                out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


class CollectionRegistry:
    """All collections of one emulator, by id."""

    def __init__(self, specs: list[CollectionSpec], default_root: Path) -> None:
        self.by_id: dict[str, Collection] = {}
        for spec in specs:
            coll = Collection(spec, default_root)
            self.by_id[coll.id] = coll
        self.local_id = next((c.id for c in self.by_id.values() if c.spec.local), None)

    def get(self, endpoint_id: str) -> Collection | None:
        return self.by_id.get(str(endpoint_id).lower())

    def __iter__(self) -> Iterator[Collection]:
        return iter(self.by_id.values())

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id,
                "display_name": c.display_name,
                "root": str(c.root),
                "home": c.home,
                "entity_type": c.spec.entity_type,
                "requires_data_access": c.spec.requires_data_access,
                "local": c.spec.local,
            }
            for c in self
        ]
