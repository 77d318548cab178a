"""The original Orbit's sysinfo routes: home directory, host role and metrics.

Scripts written for it call ``homedir()``, ``host_role()`` and ``get_metrics()`` on the
sysinfo client (docs/compat.md); these are the routes behind them, added to
:class:`~radical.orbit.plugins.sysinfo.plugin.PluginSysinfo` by :func:`add_host_routes`::

    GET  /homedir                   {"homedir": "/home/user"}; no session
    GET  /host_role                 {role, scheduler, job_id, psij_executor, python_version};
                                    no session
    POST /metrics  {sid}            {system, cpu, memory, disks, network, gpus}
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter

from ..base import Plugin, SessionRequest
from .metrics import metrics

__all__ = ["BATCH_SYSTEMS", "add_host_routes", "homedir", "host_role"]

#: (scheduler, variables set inside one of its jobs, commands present where it submits from)
BATCH_SYSTEMS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("slurm", ("SLURM_JOB_ID", "SLURM_JOBID"), ("sbatch", "squeue")),
    ("pbs", ("PBS_JOBID",), ("qsub", "qstat")),
    ("lsf", ("LSB_JOBID",), ("bsub", "bjobs")),
)


def homedir() -> str:
    """The endpoint process's home directory."""
    return os.path.expanduser("~")


def host_role(env: Mapping[str, str] | None = None, which: Callable[[str], str | None] = shutil.which) -> dict[str, Any]:
    """Where the endpoint runs, as the original Orbit classified it.

    ``role`` is ``compute`` inside a batch job, ``login`` where a batch system's
    commands are, else ``standalone`` (an endpoint is never the ``bridge``);
    ``scheduler`` is ``slurm``, ``pbs``, ``lsf`` or ``none``; ``job_id`` is the job's
    id on a compute node, else None; ``psij_executor`` is the PSI/J executor name
    (``local`` without a scheduler).
    """
    env = os.environ if env is None else env
    role, scheduler, job_id = "standalone", "none", None
    for name, job_vars, _ in BATCH_SYSTEMS:
        found = next((env[var] for var in job_vars if env.get(var)), None)
        if found:
            role, scheduler, job_id = "compute", name, found
            break
    else:
        for name, _, commands in BATCH_SYSTEMS:
            if any(which(command) for command in commands):
                role, scheduler = "login", name
                break
    return {
        "role": role,
        "scheduler": scheduler,
        "job_id": job_id,
        "psij_executor": "local" if scheduler == "none" else scheduler,
        "python_version": platform.python_version(),
    }


class MetricsRequest(SessionRequest):
    pass


def add_host_routes(router: APIRouter, plugin: Plugin) -> None:
    """Add the routes of the module docstring to ``router``."""

    @router.get("/homedir")
    async def homedir_route() -> dict[str, Any]:
        """GET /homedir: the endpoint process's home directory; no session."""
        return {"homedir": homedir()}

    @router.get("/host_role")
    async def host_role_route() -> dict[str, Any]:
        """GET /host_role: login / compute / standalone host, its scheduler and job; no session."""
        return await asyncio.to_thread(host_role)

    @router.post("/metrics")
    async def metrics_route(req: MetricsRequest) -> dict[str, Any]:
        """POST /metrics: system, CPU, memory, disks, network and GPUs. 404/410 for a bad sid."""
        plugin.session(req.sid)
        return await asyncio.to_thread(metrics)
