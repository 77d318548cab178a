"""Helpers for testing with Orbit, shipped with the package as ``globus_sdk.testing`` is.

:mod:`.processes` starts Orbit's own services (bridge, endpoint, Globus emulator) as
real processes on loopback, the way a user starts them; the demo, the test suite and
the benchmarks all use it. :mod:`.redis_server` starts a ``redis-server`` for bridge
replicas (``start_bridge(redis=redis.url)``)::

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
from .redis_server import RedisServer, redis_ping, start_redis
from .replicas import Replicas, start_replicas

__all__ = [
    "RedisServer",
    "Replicas",
    "ServiceProcess",
    "bridge_admin",
    "enroll_endpoint",
    "env_with_home",
    "free_port",
    "redis_ping",
    "running",
    "start_bridge",
    "start_emulator",
    "start_endpoint",
    "start_healthy",
    "start_redis",
    "start_replicas",
    "wait_endpoint_listed",
]
