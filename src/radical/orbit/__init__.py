"""RADICAL Orbit: a bridge, endpoints that dial it, a plugin framework and a client SDK.

The public names are imported lazily, so ``import radical.orbit`` stays cheap and a
laptop with only the client SDK never imports server-side modules.
"""

from __future__ import annotations

import importlib
from typing import Any

from .__about__ import __version__
from .errors import (
    AuthenticationError,
    BridgeUnavailableError,
    ConflictError,
    ConsentRequiredError,
    EndpointNotFoundError,
    EndpointUnavailableError,
    GatewayTimeoutError,
    GlobusAuthError,
    NotFoundError,
    OrbitError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PluginDisabledError,
    PluginNotFoundError,
    RateLimitedError,
    SessionExpiredError,
    SessionNotFoundError,
    TransferError,
    UpstreamError,
    UsageError,
    ValidationError,
)

_LAZY = {
    "BridgeClient": "radical.orbit.client.bridge",
    "EndpointClient": "radical.orbit.client.endpoint",
    "PluginClient": "radical.orbit.client.plugin",
}

__all__ = [
    "AuthenticationError",
    "BridgeClient",
    "BridgeUnavailableError",
    "ConflictError",
    "ConsentRequiredError",
    "EndpointClient",
    "EndpointNotFoundError",
    "EndpointUnavailableError",
    "GatewayTimeoutError",
    "GlobusAuthError",
    "NotFoundError",
    "OrbitError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PluginClient",
    "PluginDisabledError",
    "PluginNotFoundError",
    "RateLimitedError",
    "SessionExpiredError",
    "SessionNotFoundError",
    "TransferError",
    "UpstreamError",
    "UsageError",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'radical.orbit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
