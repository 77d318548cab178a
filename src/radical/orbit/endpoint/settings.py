"""Settings of one endpoint agent, resolved once by the CLI (or a test) and passed in.

    settings = EndpointSettings.resolve(name="laptop", url=None, key_file=None)
    # url: argument > RADICAL_ORBIT_BRIDGE_URL > ~/.radical/orbit/bridge.url > default;
    #      several bridges comma-separated ("A,B"): dialed in order, the next on loss
    # key: RADICAL_ORBIT_ENDPOINT_KEY > --key-file PATH > ~/.radical/orbit/endpoint.key
    #      (never an argument: command lines are visible to every local user)

An endpoint proves who it is with an endpoint key, never with a client token: the
bridge writes the local key into its HOME (an endpoint started there needs nothing
else), and ``radical-orbit bridge endpoints enroll NAME`` makes one for another host.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..config import (
    CLIENT_TOKEN_PREFIX,
    ENDPOINT_KEY_FILE,
    ENDPOINT_KEY_PREFIX,
    ENV_BRIDGE_TOKEN,
    ENV_ENDPOINT_KEY,
    bridge_url_list,
    check_bridge_url,
    orbit_home,
    read_private_file,
    resolve_bridge_cert,
    resolve_bridge_url,
)
from ..errors import UsageError
from ..models.messages import ENDPOINT_NAME_PATTERN, RESERVED_NAMES

__all__ = ["EndpointSettings", "check_endpoint_key", "check_endpoint_name", "websocket_url"]

#: path of the bridge's endpoint WebSocket
WS_PATH = "/ws/endpoint"
#: where the bridge URL comes from, for messages
URL_SOURCES = "--url, $RADICAL_ORBIT_BRIDGE_URL or ~/.radical/orbit/bridge.url"
#: the directory under ``~/.radical/orbit`` holding each endpoint's state (``endpoints/<name>/``)
STATE_DIRS = "endpoints"


def check_endpoint_name(name: str) -> str:
    """Refuse names the bridge would refuse, before dialing it (a clearer error)."""
    if not re.match(ENDPOINT_NAME_PATTERN, name):
        raise UsageError(
            f"invalid endpoint name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise UsageError(f"endpoint name {name!r} is reserved by the bridge; pick another one")
    return name


def check_endpoint_key(key: str, source: str) -> str:
    """Refuse what cannot be an endpoint key, naming where it came from (never the value)."""
    if key.startswith(CLIENT_TOKEN_PREFIX):
        raise UsageError(
            f"the endpoint key from {source} is a client token, and a client token cannot register an endpoint: "
            "enrol the endpoint on the bridge host (radical-orbit bridge endpoints enroll NAME) and use the key it prints"
        )
    if not (key.isascii() and key.isprintable()) or " " in key:
        raise UsageError(f"the endpoint key from {source} must be printable ASCII without spaces, as the bridge makes them")
    return key


def websocket_url(url: str, source: str = URL_SOURCES) -> str:
    """The bridge's endpoint WebSocket URL for the http(s) URL clients use.

    ``http://h:p`` -> ``ws://h:p/ws/endpoint`` (``https`` -> ``wss``); a ``ws``/``wss``
    URL with a path is taken as-is, without a path it gets ``/ws/endpoint``.
    """
    parts = check_bridge_url(url.strip(), source, websocket=True)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        scheme = "ws" if scheme == "http" else "wss"
        path = parts.path.rstrip("/") + WS_PATH
    else:
        path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class EndpointSettings(BaseModel):
    """Everything the agent needs; secrets are ``SecretStr`` so reprs never show them."""

    model_config = ConfigDict(extra="forbid")

    name: str
    #: the bridge URL as clients use it (http/https), or a ws/wss URL; several comma-separated
    #: (replicas, or a bridge and its stand-by): dialed in order, the next one on loss
    url: str
    #: the endpoint key, when given directly ($RADICAL_ORBIT_ENDPOINT_KEY, or by an embedding
    #: program); None: read from ``key_file`` (or ``~/.radical/orbit/endpoint.key``) at each dial
    key: SecretStr | None = None
    #: where ``key`` came from, for messages
    key_source: str = "the settings"
    #: a file holding the key (``--key-file``, mode 0600); None: ``~/.radical/orbit/endpoint.key``
    key_file: str | None = None
    #: where a client token was configured, if one was (it is not used: messages say so)
    client_token_source: str | None = None
    #: CA bundle (or self-signed cert) to verify a wss:// bridge with
    cert: str | None = None
    #: dial through the proxy the environment names (HTTPS_PROXY, ... minus NO_PROXY);
    #: False: always directly (``--no-proxy``)
    use_proxy: bool = True
    #: plugin names to load (None: every installed plugin)
    plugins: list[str] | None = None
    #: seconds between our own pings; None: the interval the bridge announces
    heartbeat: float | None = Field(default=None, gt=0)
    #: silence from the bridge, in heartbeat intervals, after which we reconnect
    dead_after: float = Field(default=3.0, gt=1)
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)
    #: seconds to wait for the WebSocket handshake and the ``registered`` frame
    connect_timeout: float = Field(default=10.0, gt=0)
    #: notifications kept while disconnected (oldest dropped beyond this)
    notify_queue_size: int = Field(default=10_000, ge=1)
    #: largest notification payload sent, in bytes of JSON (larger ones are dropped
    #: with a warning); ``--max-notification-bytes``
    max_notification_bytes: int = Field(default=256 * 1024, ge=1024)
    #: sessions one client identity may hold on each plugin (429 beyond); ``--max-sessions``
    max_sessions_per_identity: int = Field(default=500, ge=1)
    #: seconds in-flight requests get to finish on shutdown
    shutdown_grace: float = Field(default=10.0, ge=0)
    #: largest WebSocket message accepted (a relayed body is base64 inside JSON)
    max_message: int = Field(default=64 * 2**20, ge=2**16)
    #: the directory of this endpoint's own state (the globus plugin's task journal);
    #: None: ``~/.radical/orbit/endpoints/<name>/`` (``--state-dir``)
    state_dir: str | None = None
    #: per-plugin options, ``{"globus": {"min_interval": 0.5}}``; handed to each plugin
    #: as ``PluginContext.settings`` (``--plugin-option globus.min_interval=0.5``)
    plugin_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_endpoint_name(value)

    @field_validator("plugins")
    @classmethod
    def _clean_plugins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [v.strip() for v in value if v.strip()]
        if not names:  # `--plugins ''` must not quietly mean "every plugin"
            raise ValueError("--plugins names no plugin: leave it out to load every installed plugin, or name some, e.g. --plugins sysinfo")
        return list(dict.fromkeys(names))

    @property
    def urls(self) -> list[str]:
        """Every bridge URL, in the order they are dialed (:func:`~..config.bridge_url_list`).

        :raises UsageError: a URL that cannot be dialed, naming it
        """
        return bridge_url_list(self.url, URL_SOURCES, websocket=True)

    @property
    def ws_urls(self) -> list[str]:
        """The bridges' endpoint WebSocket URLs, in the order they are dialed."""
        return [websocket_url(url) for url in self.urls]

    @property
    def ws_url(self) -> str:
        """The first bridge's endpoint WebSocket URL."""
        return self.ws_urls[0]

    def for_bridge(self, url: str) -> EndpointSettings:
        """These settings with ``url`` alone (one of :attr:`urls`): what one connection dials."""
        return self.model_copy(update={"url": url})

    @property
    def state_path(self) -> Path:
        """This endpoint's state directory (not created here)."""
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        return orbit_home() / STATE_DIRS / self.name.casefold()

    @property
    def key_path(self) -> Path:
        """The file the key is read from when it was not given directly."""
        return Path(self.key_file) if self.key_file else orbit_home() / ENDPOINT_KEY_FILE

    @property
    def key_hint(self) -> str:
        """Where the key comes from (for log lines; never the key)."""
        return self.key_source if self.key is not None else str(self.key_path)

    def load_key(self) -> tuple[str, str] | None:
        """``(key, where it came from)``, or None while there is no key file yet.

        Read again at every dial, so a key file that appears later (the bridge's, in
        the same HOME) or is replaced is picked up without a restart.

        :raises UsageError: the key file is open to other users, or holds no usable key
        """
        if self.key is not None:
            return self.key.get_secret_value(), self.key_source
        path = self.key_path
        text = read_private_file(path)
        if text is None:
            return None
        return check_endpoint_key(text, str(path)), str(path)

    @classmethod
    def resolve(
        cls,
        *,
        name: str,
        url: str | None = None,
        key_file: str | None = None,
        cert: str | None = None,
        plugins: str | list[str] | None = None,
        token: str | None = None,
        **kwargs: object,
    ) -> EndpointSettings:
        """Build settings with the same URL/cert resolution as the client SDK, and the key
        from ``$RADICAL_ORBIT_ENDPOINT_KEY`` > ``key_file`` > ``~/.radical/orbit/endpoint.key``.

        :param token: a client token given the old way (``--token``): not used, since a
            client token cannot register an endpoint; only remembered for messages
        :raises UsageError: an unusable key, or a key file open to other users
        """
        if isinstance(plugins, str):
            plugins = plugins.split(",")
        env_key = os.environ.get(ENV_ENDPOINT_KEY, "").strip()
        client_source = "--token" if token else (f"${ENV_BRIDGE_TOKEN}" if os.environ.get(ENV_BRIDGE_TOKEN) else None)
        if os.environ.get(ENV_BRIDGE_TOKEN, "").startswith(ENDPOINT_KEY_PREFIX) and not env_key:
            raise UsageError(f"${ENV_BRIDGE_TOKEN} holds an endpoint key: an endpoint reads its key from ${ENV_ENDPOINT_KEY}; set that instead")
        data: dict[str, object] = {
            "name": name,
            "url": resolve_bridge_url(url),
            "key": SecretStr(check_endpoint_key(env_key, f"${ENV_ENDPOINT_KEY}")) if env_key else None,
            "key_source": f"${ENV_ENDPOINT_KEY}",
            "key_file": key_file,
            "client_token_source": client_source,
            "cert": resolve_bridge_cert(cert),
            "plugins": plugins,
            **kwargs,
        }
        return cls.model_validate(data)


def parse_plugin_options(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``["globus.min_interval=0.5", ...]`` -> ``{"globus": {"min_interval": 0.5}}``.

    Values are read as JSON when they parse (numbers, true/false, null, lists),
    otherwise kept as strings.

    :raises UsageError: an item that is not ``PLUGIN.KEY=VALUE``
    """
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        plugin, dot, key = target.strip().partition(".")
        if not sep or not dot or not plugin or not key:
            raise UsageError(f"plugin option {item!r} is not PLUGIN.KEY=VALUE (for example globus.min_interval=0.5)")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        options.setdefault(plugin, {})[key.strip()] = value
    return options
