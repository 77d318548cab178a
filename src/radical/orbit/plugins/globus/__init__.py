"""The ``globus`` plugin: PluginGlobus (endpoint side), GlobusSession, GlobusClient (application side).

Importing this package imports nothing heavy; the client module never imports
FastAPI or globus-sdk.
"""

from __future__ import annotations
