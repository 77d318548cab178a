"""The Transfer client's proxy settings are read from the environment once per session."""

from __future__ import annotations

import globus_sdk
import pytest

from radical.orbit.plugins.globus.session import _tune_transport


def _client() -> globus_sdk.TransferClient:
    tc = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer("not-a-real-token"))
    _tune_transport(tc, 4)
    return tc


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", raising=False)


def test_proxy_from_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = _client().transport.session
    assert session.proxies == {"https": "http://proxy.example:3128"}
    assert session.trust_env is False  # no per-request scan of os.environ any more


def test_no_proxy_for_the_transfer_host_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "transfer.api.globus.org")
    assert _client().transport.session.proxies == {}


def test_no_proxy_configured() -> None:
    session = _client().transport.session
    assert session.proxies == {}
    assert session.trust_env is False
