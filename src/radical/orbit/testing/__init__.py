"""Helpers for testing with Orbit, shipped with the package as ``globus_sdk.testing`` is.

:mod:`.processes` starts Orbit's own services (bridge, endpoint, Globus emulator) as
real processes on loopback, the way a user starts them; the demo, the test suite and
the benchmarks all use it::

    from radical.orbit.testing import start_bridge, start_endpoint
    with start_bridge(home=tmp) as bridge, start_endpoint("ep", bridge, home=tmp):
        ...
"""

from __future__ import annotations

from .processes import (
    ServiceProcess,
    bridge_admin,
    enroll_endpoint,
    env_with_home,
    free_port,
    running,
    start_bridge,
    start_emulator,
    start_endpoint,
    start_healthy,
    wait_endpoint_listed,
)

__all__ = [
    "ServiceProcess",
    "bridge_admin",
    "enroll_endpoint",
    "env_with_home",
    "free_port",
    "running",
    "start_bridge",
    "start_emulator",
    "start_endpoint",
    "start_healthy",
    "wait_endpoint_listed",
]
