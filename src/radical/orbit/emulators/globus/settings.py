"""Emulator settings: one pydantic model, built by the CLI or by tests.

The JSON file given by ``--config`` may hold ``collections`` (see
:mod:`.collections`), ``clients`` (confidential clients: ``[{"client_id",
"client_secret"}]``) and ``faults`` (see :class:`.faults.FaultSettings`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["DEV_IDENTITY_ID", "DEV_USERNAME", "NATIVE_CLIENT_ID", "ClientSpec", "EmulatorSettings"]

#: The single human user of the emulator ("you", as a Globus login would see it).
DEV_IDENTITY_ID = "b0d3c0de-0000-4000-8000-00000000d3f0"
DEV_USERNAME = "dev@orbit.local"
#: The native-app client id the dev refresh tokens are bound to.
NATIVE_CLIENT_ID = "7f0e5a3c-0b6d-4a8e-9d1c-0b1e7a5e0001"


def _uuid_text(value: str) -> str:
    """A Globus id (client, collection): a UUID, in lower case as Globus writes them."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID, as Globus ids are (e.g. 6c54cade-bde5-45c1-bdea-f4bd71dba2cc)") from None


#: a Globus client or collection id
UuidText = Annotated[str, AfterValidator(_uuid_text)]


class ClientSpec(BaseModel):
    """A confidential client allowed to use the client_credentials grant."""

    model_config = ConfigDict(extra="forbid")

    client_id: UuidText
    client_secret: str = Field(repr=False)


class EmulatorSettings(BaseModel):
    """Everything the emulator needs to start.

    :param root: folder holding the collections (a temp dir when ``None``)
    :param config: JSON file with ``collections`` / ``clients`` / ``faults``
    :param token_lifetime: seconds an access token lives (``expires_in``)
    :param state_dir: when set, tasks and issued tokens persist there across restarts
    :param retry_interval: seconds between retries of a failing file inside a task
    :param auth_code_lifetime: seconds an authorization code stays redeemable
    :param auto_approve_login: skip the consent page (tests without a browser)
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8700
    root: Path | None = None
    config: Path | None = None
    token_lifetime: int = Field(default=172800, ge=1, le=10 * 365 * 86400)
    state_dir: Path | None = None
    client_id: UuidText | None = None
    client_secret: str | None = Field(default=None, repr=False)
    native_client_id: str = NATIVE_CLIENT_ID
    #: seconds an authorization code from a browser login may wait to be exchanged
    auth_code_lifetime: int = Field(default=600, ge=1, le=3600)
    #: answer ``/v2/oauth2/authorize`` with a code at once, without the consent page
    auto_approve_login: bool = False
    retry_interval: float = Field(default=1.0, gt=0)
    max_active_transfers: int = Field(default=3, ge=1)
    max_active_deletes: int = Field(default=3, ge=1)
    #: collection documents (overrides the config file's list when not None)
    collections: list[dict[str, Any]] | None = None
    clients: list[ClientSpec] = Field(default_factory=list)
    faults: dict[str, Any] | None = None

    def generated_client(self) -> ClientSpec:
        """The confidential client from --client-id/--client-secret, generated when absent."""
        import secrets

        cid = self.client_id or str(uuid.uuid4())
        secret = self.client_secret or secrets.token_urlsafe(33)[:44]
        self.client_id, self.client_secret = cid, secret
        return ClientSpec(client_id=cid, client_secret=secret)
