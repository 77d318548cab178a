"""Browser sign-in state (bridge/browser.py): one-time secrets, cookie sessions, the CSRF rule."""

from __future__ import annotations

from typing import Any

import pytest

from radical.orbit.bridge.browser import (
    MAX_HELD,
    PER_IDENTITY,
    BrowserSessions,
    BrowserSignIn,
    SigninSecrets,
    bridge_origin,
    clear_cookie,
    cookie_of,
    cross_origin_problem,
    session_cookie,
)
from radical.orbit.bridge.identity import Identity
from radical.orbit.errors import AuthenticationError, PermissionDeniedError

ALICE = Identity("alice")
BOB = Identity("bob", admin=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scope(method: str = "GET", headers: dict[str, str] | None = None, scheme: str = "http", path: str = "/endpoints") -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in {"host": "127.0.0.1:8000", **(headers or {})}.items()]
    return {"type": "http", "method": method, "path": path, "scheme": scheme, "headers": raw}


class TestSigninSecrets:
    def test_single_use(self) -> None:
        secrets = SigninSecrets()
        secret = secrets.mint(ALICE)
        assert len(secret) >= 40
        assert secrets.redeem(secret) == ALICE
        assert secrets.redeem(secret) is None

    def test_expires(self) -> None:
        clock = Clock()
        secrets = SigninSecrets(lifetime=300, clock=clock)
        secret = secrets.mint(ALICE)
        clock.now += 299
        kept = secrets.mint(BOB)
        clock.now += 2
        assert secrets.redeem(secret) is None
        assert secrets.redeem(kept) == BOB

    def test_unknown_and_distinct(self) -> None:
        secrets = SigninSecrets()
        a, b = secrets.mint(ALICE), secrets.mint(ALICE)
        assert a != b
        assert secrets.redeem("not-a-secret") is None
        assert secrets.redeem("") is None

    def test_kept_only_as_digests(self) -> None:
        secrets = SigninSecrets()
        secret = secrets.mint(ALICE)
        assert secret not in repr(vars(secrets)) and secret not in repr(secrets)
        assert secret not in repr(list(secrets._store.held))

    def test_bounded_per_identity(self) -> None:
        secrets = SigninSecrets()
        minted = [secrets.mint(ALICE) for _ in range(PER_IDENTITY + 5)]
        other = secrets.mint(BOB)
        assert len(secrets) == PER_IDENTITY + 1
        assert secrets.redeem(minted[0]) is None  # the oldest went first
        assert secrets.redeem(minted[-1]) == ALICE
        assert secrets.redeem(other) == BOB

    def test_bounded_in_all(self) -> None:
        secrets = SigninSecrets()
        first = secrets.mint(Identity("u0"))
        for n in range(1, MAX_HELD + 1):
            secrets.mint(Identity(f"u{n}"))
        assert len(secrets) == MAX_HELD
        assert secrets.redeem(first) is None


class TestBrowserSessions:
    def test_open_identify_revoke(self) -> None:
        sessions = BrowserSessions()
        cookie = sessions.open(BOB)
        assert sessions.identity(cookie) == BOB
        assert sessions.identity(cookie) == BOB  # not single use
        assert sessions.revoke(cookie) is True
        assert sessions.identity(cookie) is None
        assert sessions.revoke(cookie) is False

    def test_idle_timeout_slides(self) -> None:
        clock = Clock()
        sessions = BrowserSessions(idle=100, clock=clock)
        cookie = sessions.open(ALICE)
        for _ in range(5):  # used every 90 s: stays open well past 100 s
            clock.now += 90
            assert sessions.identity(cookie) == ALICE
        clock.now += 101
        assert sessions.identity(cookie) is None
        assert len(sessions) == 0

    def test_revoke_identity(self) -> None:
        sessions = BrowserSessions()
        a1, a2, b = sessions.open(ALICE), sessions.open(ALICE), sessions.open(BOB)
        assert sessions.revoke_identity("alice") == 2
        assert sessions.identity(a1) is None and sessions.identity(a2) is None
        assert sessions.identity(b) == BOB

    def test_keep_identities_ends_the_sessions_of_revoked_tokens(self) -> None:
        """The bridge calls this whenever its token store changes."""
        sessions = BrowserSessions()
        a, b = sessions.open(ALICE), sessions.open(BOB)
        assert sessions.keep_identities(frozenset({"bob", "admin"})) == 1
        assert sessions.identity(a) is None and sessions.identity(b) == BOB


class TestCookieHeader:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("orbit_session=abc", "abc"),
            ("theme=dark; orbit_session=abc; x=1", "abc"),
            ('orbit_session="abc"', "abc"),
            ("bad cookie;;=; orbit_session=abc", "abc"),
            ("orbit_sessionx=abc", None),
            ("orbit_session=", None),
            ("other=1", None),
        ],
    )
    def test_cookie_of(self, header: str, expected: str | None) -> None:
        assert cookie_of(scope(headers={"cookie": header})) == expected

    def test_no_cookie_header(self) -> None:
        assert cookie_of(scope()) is None

    def test_set_cookie_values(self) -> None:
        plain = session_cookie("v", secure=False).decode()
        assert plain == "orbit_session=v; Path=/; HttpOnly; SameSite=Strict"
        assert session_cookie("v", secure=True).decode().endswith("; Secure")
        cleared = clear_cookie(secure=False).decode()
        assert cleared.startswith("orbit_session=; Max-Age=0") and "HttpOnly" in cleared


class TestCrossOrigin:
    def test_bridge_origin(self) -> None:
        assert bridge_origin(scope()) == "http://127.0.0.1:8000"
        assert bridge_origin(scope(scheme="https")) == "https://127.0.0.1:8000"

    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_safe_method_from_the_page(self, method: str) -> None:
        assert cross_origin_problem(scope(method, {"sec-fetch-site": "same-origin"})) is None
        assert cross_origin_problem(scope(method)) is None

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
    def test_unsafe_method_needs_the_header(self, method: str) -> None:
        problem = cross_origin_problem(scope(method))
        assert problem is not None and "X-Orbit-CSRF: 1" in problem
        assert cross_origin_problem(scope(method, {"x-orbit-csrf": "0"})) is not None
        assert cross_origin_problem(scope(method, {"x-orbit-csrf": "1"})) is None
        assert cross_origin_problem(scope(method, {"x-orbit-csrf": "1", "origin": "http://127.0.0.1:8000"})) is None

    @pytest.mark.parametrize(
        "origin",
        ["http://127.0.0.1:9999", "https://127.0.0.1:8000", "http://evil.example", "null", "http://127.0.0.1:8000.evil", "garbage:"],
    )
    def test_foreign_origin(self, origin: str) -> None:
        problem = cross_origin_problem(scope("POST", {"x-orbit-csrf": "1", "origin": origin}))
        assert problem is not None and "Origin" in problem
        assert cross_origin_problem(scope("GET", {"origin": origin})) is not None

    @pytest.mark.parametrize(("origin", "host"), [("http://LOCALHOST:80", "localhost"), ("https://h.example", "h.example:443")])
    def test_origin_compared_with_default_ports_and_case(self, origin: str, host: str) -> None:
        scheme = origin.split(":", 1)[0].lower()
        s = scope("POST", {"x-orbit-csrf": "1", "origin": origin, "host": host}, scheme=scheme)
        assert cross_origin_problem(s) is None

    @pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
    def test_sec_fetch_site(self, site: str) -> None:
        problem = cross_origin_problem(scope("GET", {"sec-fetch-site": site}))
        assert problem is not None and site in problem


class TestBrowserSignIn:
    def test_identify(self) -> None:
        signin = BrowserSignIn()
        cookie = signin.sessions.open(ALICE)
        good = scope("POST", {"cookie": f"orbit_session={cookie}", "x-orbit-csrf": "1"})
        assert signin.identify(good, allowed=True) == ALICE
        assert signin.identify(scope("POST"), allowed=True) is None  # no cookie: not ours to answer

    def test_refusals(self) -> None:
        signin = BrowserSignIn()
        cookie = signin.sessions.open(ALICE)
        no_csrf = signin.identify(scope("POST", {"cookie": f"orbit_session={cookie}"}), allowed=True)
        assert isinstance(no_csrf, PermissionDeniedError) and "X-Orbit-CSRF" in no_csrf.message
        closed = signin.identify(scope("GET", {"cookie": f"orbit_session={cookie}"}), allowed=False)
        assert isinstance(closed, PermissionDeniedError) and "bridge token" in closed.message
        stale = signin.identify(scope("GET", {"cookie": "orbit_session=stale"}), allowed=True)
        assert isinstance(stale, AuthenticationError) and "radical-orbit explorer" in stale.message
        assert cookie not in repr(signin)
