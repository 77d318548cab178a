"""A revoked client token keeps nothing it opened: its bearer requests, its open
``/events`` streams, its Explorer browser sessions and its unused sign-in links all
end, without a bridge restart; also when a new token takes the revoked one's name
(rotation) at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attacker import EventReader, add_token, bearer, until
from conftest import module_stack
from integration.explorer_browser import PageClient

from radical.orbit import testing as procs

Stack = Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with module_stack(tmp_path_factory) as stack:
        yield stack


def signin_link(stack: Stack, token: str) -> str:
    resp = httpx.post(f"{stack.url}/ui/api/signin-link", headers=bearer(token), timeout=15)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["url"])


def signed_in(stack: Stack, token: str) -> PageClient:
    page = PageClient(stack.url)
    assert page.sign_in(signin_link(stack, token)).status_code == 200
    return page


def test_a_revoked_token_ends_its_streams_browsers_and_links(stack: Stack) -> None:
    mallory = add_token(stack, "mallory")
    keeper = add_token(stack, "keeper")
    with (
        EventReader(stack.url, bearer(mallory)) as stream,
        EventReader(stack.url, bearer(keeper)) as other_stream,
        signed_in(stack, mallory) as browser,
        signed_in(stack, keeper) as other_browser,
    ):
        unused_link = signin_link(stack, mallory)
        until(lambda: bool(stream.events), "mallory's stream is open")
        assert browser.get("/endpoints").status_code == 200
        procs.bridge_admin(stack.bridge, "tokens", "revoke", "mallory")

        until(lambda: httpx.get(f"{stack.url}/endpoints", headers=bearer(mallory), timeout=10).status_code == 401, "bearer refused")
        assert stream.ended.wait(10), "the revoked token's /events stream goes on"
        until(lambda: browser.get("/endpoints").status_code == 401, "the revoked token's browser is signed out", timeout=10)
        for path in ("/events", "/ui/api/me", "/ep1/sysinfo/"):
            assert browser.get(path).status_code == 401, path
        with PageClient(stack.url) as late:
            assert late.sign_in(unused_link).status_code == 401  # a link minted before the revocation

        # nobody else is touched
        assert not other_stream.ended.is_set()
        assert other_browser.get("/endpoints").status_code == 200
        assert httpx.get(f"{stack.url}/endpoints", headers=bearer(keeper), timeout=10).status_code == 200


def test_a_link_redeemed_right_after_the_revocation_signs_nobody_in(stack: Stack) -> None:
    """Even before the bridge's once-a-second look at the store: the redeeming request
    checks that the link's identity still has a token."""
    eve = add_token(stack, "eve")
    link = signin_link(stack, eve)
    procs.bridge_admin(stack.bridge, "tokens", "revoke", "eve")
    until(lambda: httpx.get(f"{stack.url}/endpoints", headers=bearer(eve), timeout=10).status_code == 401, "bearer refused")
    with PageClient(stack.url) as page:
        assert page.sign_in(link).status_code == 401


def test_a_rotated_name_does_not_keep_the_old_tokens_browsers(stack: Stack) -> None:
    """``tokens revoke carol`` then at once ``tokens add carol`` (a leaked token replaced):
    whoever signed a browser in with the old token is signed out; the new token works."""
    old = add_token(stack, "carol")
    with signed_in(stack, old) as thief, EventReader(stack.url, bearer(old)) as stream:
        procs.bridge_admin(stack.bridge, "tokens", "revoke", "carol")
        new = add_token(stack, "carol")
        until(lambda: thief.get("/endpoints").status_code == 401, "the old token's browser is signed out", timeout=10)
        assert stream.ended.wait(10)
        assert httpx.get(f"{stack.url}/endpoints", headers=bearer(old), timeout=10).status_code == 401
        assert httpx.get(f"{stack.url}/endpoints", headers=bearer(new), timeout=10).status_code == 200
        with signed_in(stack, new) as fresh:
            assert fresh.get("/ui/api/me").json()["identity"] == "carol"
