"""Find the endpoint's *local collection*: what ``"local"`` (or an omitted collection) means.

Discovery runs once at plugin start-up, in the seed's order:

#. ``RADICAL_ORBIT_GLOBUS_COLLECTION`` environment variable;
#. Globus Connect Personal (``globus_sdk.LocalGlobusConnectPersonal().endpoint_id``);
#. ``~/.radical/orbit/globus.json`` with ``{"local_collection": "<uuid>"}``;
#. otherwise none: callers must then name a collection by UUID (a clear 400 says so).

A value that is present but not a UUID is skipped with a warning (it would only
fail later, at Globus, with a less helpful message). A session may override the
result with its own ``local_collection``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import ENV_GLOBUS_COLLECTION, GLOBUS_CONFIG_FILE, orbit_home
from ...errors import UsageError

log = logging.getLogger(__name__)

LOCAL = "local"

SOURCE_ENV = "env"
SOURCE_GCP = "globus_connect_personal"
SOURCE_CONFIG = "config_file"
SOURCE_SESSION = "session"
SOURCE_NONE = "none"


@dataclass(frozen=True)
class LocalCollection:
    """The discovered local collection and where it came from."""

    collection_id: str | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"local_collection": self.collection_id, "source": self.source}


def normalize_uuid(value: str) -> str | None:
    """Canonical lower-case form of a UUID string, or None if it is not one."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError):
        return None


def _default_gcp() -> str | None:
    import globus_sdk

    return globus_sdk.LocalGlobusConnectPersonal().endpoint_id


def _from_config_file(home: Path) -> str | None:
    path = home / GLOBUS_CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    # like malformed JSON, bytes that are not UTF-8 or nesting too deep for json are
    # skipped with a warning, never an error that would disable the plugin
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8 text; ignoring it", path)
        return None
    except RecursionError:
        log.warning("%s is not valid JSON (nested too deeply); ignoring it", path)
        return None
    except ValueError as exc:
        log.warning("%s is not valid JSON (%s); ignoring it", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s must hold a JSON object with key 'local_collection'; ignoring it", path)
        return None
    value = data.get("local_collection")
    return str(value) if value else None


def discover_local_collection(
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    gcp: Callable[[], str | None] | None = None,
) -> LocalCollection:
    """Run the four-step discovery.

    :param environ: environment to read (default ``os.environ``)
    :param home: the ``~/.radical/orbit`` directory (default :func:`orbit_home`)
    :param gcp: returns the GCP endpoint id (default: ``LocalGlobusConnectPersonal``)
    """
    env = os.environ if environ is None else environ
    value = env.get(ENV_GLOBUS_COLLECTION, "").strip()
    if value:
        found = normalize_uuid(value)
        if found:
            return LocalCollection(found, SOURCE_ENV)
        log.warning("%s is set but is not a collection UUID; ignoring it", ENV_GLOBUS_COLLECTION)

    try:
        gcp_id = (gcp or _default_gcp)()
    except (OSError, ValueError, ImportError) as exc:  # unreadable GCP config: not fatal
        log.warning("Globus Connect Personal lookup failed (%s); ignoring it", type(exc).__name__)
        gcp_id = None
    if gcp_id:
        found = normalize_uuid(gcp_id)
        if found:
            return LocalCollection(found, SOURCE_GCP)
        log.warning("Globus Connect Personal reports a non-UUID endpoint id; ignoring it")

    cfg = _from_config_file(orbit_home() if home is None else home)
    if cfg:
        found = normalize_uuid(cfg)
        if found:
            return LocalCollection(found, SOURCE_CONFIG)
        log.warning("%s: 'local_collection' is not a UUID; ignoring it", GLOBUS_CONFIG_FILE)

    return LocalCollection(None, SOURCE_NONE)


def resolve_collection(value: str | None, local: str | None, *, field: str = "collection") -> str:
    """Map ``"local"``/None to the local collection; anything else must already be a UUID.

    :raises UsageError: (400) when the local collection is asked for but none is configured
    """
    if value is None or value == LOCAL:
        if local:
            return local
        raise UsageError(
            f"'{field}' is 'local' (or omitted) but this endpoint has no local Globus collection: "
            f"pass a collection UUID, or configure one with {ENV_GLOBUS_COLLECTION}, Globus Connect "
            f"Personal, ~/.radical/orbit/{GLOBUS_CONFIG_FILE} {{\"local_collection\": \"<uuid>\"}}, "
            "or register_session(local_collection=...)",
            field=field,
        )
    found = normalize_uuid(value)
    if found is None:
        raise UsageError(f"'{field}' must be a collection UUID or 'local', got {value!r}", field=field)
    return found
