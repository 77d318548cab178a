"""credentials: the authorizer per credential kind, the renewal counter, the secrets
handed to the redactor, and the retry policy that stops once the session closes."""

from __future__ import annotations

import logging
import threading
import time

import globus_sdk
import pytest
from fake_globus import BASE, FakeTransfer, mount

from radical.orbit.plugins.globus import models as m
from radical.orbit.plugins.globus.credentials import (
    Refreshes,
    build_transfer_client,
    secrets_of,
)

U = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"


def test_an_access_token_is_used_as_it_is() -> None:
    tc = build_transfer_client(m.RegisterGlobusSession(access_token="t" * 20))
    try:
        assert isinstance(tc.authorizer, globus_sdk.AccessTokenAuthorizer)
        assert tc.authorizer.get_authorization_header() == "Bearer " + "t" * 20
    finally:
        tc.close()


def test_the_secrets_of_each_credential_kind() -> None:
    assert secrets_of(m.RegisterGlobusSession(access_token="a" * 10)) == ("a" * 10,)
    assert secrets_of(m.RegisterGlobusSession(refresh_token="r" * 10, client_id=U, client_secret="s" * 10)) == ("r" * 10, "s" * 10)
    assert secrets_of(m.RegisterGlobusSession(client_id=U, client_secret="s" * 10)) == ("s" * 10,)


def test_only_renewals_after_the_client_is_built_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="radical.orbit.plugins.globus.credentials")
    refreshes = Refreshes("sid-" + "x" * 28)
    refreshes({"access_token": "first"})  # fetched while the authorizer is built
    assert refreshes.count == 0
    refreshes.arm()
    refreshes({"access_token": "tok-SECRET-2"})
    assert refreshes.count == 1
    assert "renewed (1 so far)" in caplog.text and "tok-SECRET" not in caplog.text


def test_a_closed_session_stops_the_sdk_retrying(fake: FakeTransfer) -> None:
    """After close (or an endpoint stop) a call in flight gives up instead of holding its
    thread, and the endpoint's exit, in the SDK's retry loop for half a minute."""
    stop = threading.Event()
    tc = build_transfer_client(m.RegisterGlobusSession(access_token="t" * 20), stop=stop)
    tc.base_url = BASE
    mount(tc, fake)
    try:
        _retries_until_stopped(tc, fake, stop)
    finally:
        tc.close()


def _retries_until_stopped(tc: globus_sdk.TransferClient, fake: FakeTransfer, stop: threading.Event) -> None:
    err = {"code": "ServiceUnavailable", "message": "down for a moment"}
    fake.fail_next.extend([(503, err, {"Retry-After": "0"})] * 2)
    tid = fake.add_task()
    assert tc.get_task(tid)["task_id"] == tid  # before: the SDK's own retries see it through
    assert fake.calls["GET /v0.10/task/{id}"] == 3
    stop.set()
    fake.fail_next.extend([(503, err, {"Retry-After": "30"})] * 5)
    t0 = time.monotonic()
    with pytest.raises(globus_sdk.GlobusAPIError):
        tc.get_task(tid)
    assert time.monotonic() - t0 < 2 and fake.calls["GET /v0.10/task/{id}"] == 4  # one attempt, no retry
