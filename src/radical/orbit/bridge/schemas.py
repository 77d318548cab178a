"""Typed bodies of the bridge's own (admin) routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..models.messages import PluginInfo


class Health(BaseModel):
    """``GET /health`` answers without a token: it says nothing but that the bridge is alive."""

    status: str = "ok"


class EndpointInfo(BaseModel):
    name: str
    version: str
    host: dict[str, Any]
    plugins: list[PluginInfo]
    connected_at: float
    last_seen: float
    alive: bool
    inflight: int
    peer: str = ""


class EndpointList(BaseModel):
    endpoints: list[EndpointInfo]
