"""``radical.orbit.__all__`` is the public API: it changes on purpose, never by accident."""

from __future__ import annotations

import radical.orbit

PUBLIC = [
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


def test_all_is_the_sorted_public_api() -> None:
    assert radical.orbit.__all__ == PUBLIC


def test_every_public_name_resolves() -> None:
    for name in radical.orbit.__all__:
        assert getattr(radical.orbit, name) is not None, name
