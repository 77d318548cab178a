"""Tuning of the HTTP session globus-sdk sends a session's calls through.

globus-sdk's ``RequestsTransport`` sends through a plain ``requests.Session``
(``TransferClient.transport.session``, a public attribute), built with requests'
defaults. Two of those defaults cost an Orbit session something a user sees:

* **connection pool**: requests keeps 10 connections per host, while a session runs
  up to ``workers`` (16) calls at once. Beyond 10, every finished call throws its
  connection away (urllib3 warns "Connection pool is full, discarding connection" in
  the endpoint log) and later calls pay a new TCP+TLS handshake to Globus. The pool
  here holds one connection per worker thread.
* **proxy look-up**: with ``trust_env`` on, requests scans ``os.environ`` for
  ``*_proxy`` variables on every send, a CPU cost on each Globus call that competes
  with the endpoint's event loop. All of a client's calls go to one host, so the
  proxies are resolved once, here; a proxy set or changed after the session was
  registered needs a new session.

Only public names are used (``RequestsTransport.session``, ``TransferClient.base_url``,
``requests.Session.mount/proxies/trust_env``, ``requests.utils.resolve_proxies``);
tests/unit/plugins/globus/test_globus_transport.py fails if globus-sdk moves or
changes what this relies on. At run time such a change only skips the tuning.
"""

from __future__ import annotations

import logging

import globus_sdk
import requests
import requests.adapters
import requests.utils

log = logging.getLogger(__name__)


def tune_transport(tc: globus_sdk.TransferClient, pool_size: int) -> bool:
    """Size ``tc``'s connection pool for ``pool_size`` concurrent calls and resolve its
    proxies once; False (and a warning) if globus-sdk no longer sends through a
    ``requests.Session`` there."""
    session = getattr(tc.transport, "session", None)
    if not isinstance(session, requests.Session):
        log.warning(
            "globus-sdk %s does not expose a requests.Session on TransferClient.transport.session; "
            "its connection pool and proxy look-up keep their defaults",
            globus_sdk.__version__,
        )
        return False
    # one adapter for both schemes (a session talks to one Globus host): an idle session
    # costs one connection pool manager, not two
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
    for prefix in ("https://", "http://"):
        session.mount(prefix, adapter)
    if session.trust_env and tc.base_url:
        probe = requests.Request("GET", tc.base_url).prepare()
        session.proxies = requests.utils.resolve_proxies(probe, session.proxies, True)
        session.trust_env = False
    return True
