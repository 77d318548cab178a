"""Identities: the store on disk, the per-request check, and endpoint keys and names on
the endpoint socket (through TestClient; the CLI and real processes are in
tests/integration/test_core_identities.py)."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bridge_helpers import (
    AUTH,
    FakeEndpoint,
    TestClient,
    echo,
    endpoint_headers,
    local_key,
    make_settings,
)
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from radical.orbit.bridge import create_app
from radical.orbit.bridge.auth import DEFAULT_IDENTITY, Authenticator
from radical.orbit.bridge.identities import IdentityStore, digest
from radical.orbit.bridge.identity import ANONYMOUS, Identity
from radical.orbit.errors import ConflictError, NotFoundError, UsageError
from radical.orbit.models.messages import CLOSE_UNAUTHORIZED, IDENTITY_HEADER


@pytest.fixture
def store(home: Path) -> IdentityStore:
    return IdentityStore(home / ".radical" / "orbit")


#: JSON nested deeper than json.loads can follow
DEEP = b"[" * 100_000 + b"]" * 100_000


def scope(token: str | None, **headers: str) -> dict[str, object]:
    raw = [(b"authorization", f"Bearer {token}".encode())] if token else []
    raw += [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "headers": raw}


def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


class TestStore:
    def test_tokens_are_stored_hashed_in_a_private_file(self, store: IdentityStore) -> None:
        secret = store.add_token("alice")
        admin = store.add_token("ops", admin=True)
        assert secret.startswith("orbit_ct_") and len(secret) > 40 and secret != admin
        text = store.path.read_text()
        assert secret not in text and admin not in text and digest(secret) in text
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(store.home.stat().st_mode) == 0o700
        data = store.read()
        assert [(t.name, t.admin) for t in data.tokens] == [("alice", False), ("ops", True)]
        assert data.tokens[0].created  # an ISO time
        assert not list(store.home.glob("*.tmp"))  # written through a temp file that was renamed

    def test_token_names_are_checked(self, store: IdentityStore) -> None:
        store.add_token("alice")
        with pytest.raises(ConflictError, match="revoke it first"):
            store.add_token("alice")
        for bad, says in (("admin", "reserved"), ("Anonymous", "reserved"), ("a b", "invalid token name"), ("", "invalid")):
            with pytest.raises(UsageError, match=says):
                store.add_token(bad)
        assert store.revoke_token("alice").name == "alice"
        with pytest.raises(NotFoundError, match="no token named 'alice'"):
            store.revoke_token("alice")

    def test_enroll_claims_the_name_and_forget_releases_it(self, store: IdentityStore) -> None:
        key = store.enroll("dtn")
        assert key.startswith("orbit_ek_") and key not in store.path.read_text()
        data = store.read()
        assert data.claims["dtn"].owner == "dtn" and data.key("DTN") is not None
        for name in ("dtn", "DTN"):  # one name, whatever the case
            with pytest.raises(ConflictError, match="endpoints forget dtn"):
                store.enroll(name)
        with pytest.raises(UsageError, match="bridge host's own endpoint key"):
            store.enroll("local")
        with pytest.raises(UsageError, match="reserved"):
            store.enroll("events")
        claim, revoked = store.forget("DTN")
        assert claim is not None and claim.name == "dtn" and revoked is not None and revoked.name == "dtn"
        assert store.read().claims == {} and store.read().endpoint_keys == []
        with pytest.raises(NotFoundError):
            store.forget("dtn")

    def test_claims_are_first_come_and_the_file_decides(self, store: IdentityStore) -> None:
        store.ensure_local_key()
        assert store.claim("Ep1", "local").claims["ep1"].name == "Ep1"
        assert store.claim("EP1", "local").claims["ep1"].name == "Ep1"  # the first case stays
        store.enroll("other")
        with pytest.raises(ConflictError):
            store.claim("ep1", "other")
        with pytest.raises(NotFoundError, match="revoked"):
            store.claim("free", "ghost")
        claim, key = store.forget("ep1")
        assert claim is not None and key is None  # the local key is never revoked by a forget
        assert store.read().key("local") is not None

    def test_local_key(self, store: IdentityStore) -> None:
        path = store.ensure_local_key()
        key = path.read_text().strip()
        assert key.startswith("orbit_ek_") and stat.S_IMODE(path.stat().st_mode) == 0o600
        local = store.read().key("local")
        assert local is not None and local.sha256 == digest(key)
        store.ensure_local_key()
        assert path.read_text().strip() == key
        store.path.unlink()  # a lost store learns the existing key again
        store.ensure_local_key()
        again = store.read().key("local")
        assert again is not None and again.sha256 == digest(key)

    def test_unusable_files_are_refused_with_the_fix(self, store: IdentityStore) -> None:
        store.add_token("alice")
        store.path.chmod(0o644)
        with pytest.raises(UsageError, match=f"chmod 600 {store.path}"):
            store.read()
        store.path.chmod(0o600)
        store.path.write_text('{"version": 1, "tokens": [{"name": "x"}]}')
        with pytest.raises(UsageError, match=r"not a valid identity store at tokens\.0\.sha256"):
            store.read()
        store.path.write_text("{")
        with pytest.raises(UsageError, match="not a valid identity store"):
            store.read()

    @pytest.mark.parametrize(("content", "says"), [(b"\xff", "not UTF-8 text"), (DEEP, "nested too deeply")], ids=["not-utf8", "deep"])
    def test_undecodable_files_are_refused_like_malformed_ones(self, store: IdentityStore, content: bytes, says: str) -> None:
        """Were a UnicodeDecodeError and a RecursionError traceback (and an HTTP 500 from a running bridge)."""
        store.add_token("alice")
        store.path.write_bytes(content)
        with pytest.raises(UsageError, match=f"is not a valid identity store \\(it is {says}\\); restore it from a backup"):
            store.read()
        with pytest.raises(UsageError, match="not a valid identity store"):
            store.add_token("bob")  # nothing is written over it
        assert store.path.read_bytes() == content

    def test_the_shared_document_nested_too_deeply_is_refused(self) -> None:
        """The Redis copy of the store goes through the same check (it was a RecursionError)."""
        pytest.importorskip("redis")
        from radical.orbit.bridge.backplane.redis_identities import parse_document

        with pytest.raises(UsageError, match="is not a valid identity store"):
            parse_document(DEEP.decode(), "Redis at redis://127.0.0.1:6379/0")

    def test_concurrent_writers_lose_nothing(self, store: IdentityStore) -> None:
        """The CLI and the bridge may write at once: each change is read-modify-write under a lock."""
        threads = [threading.Thread(target=store.add_token, args=(f"user{i}",)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(t.name for t in store.read().tokens) == sorted(f"user{i}" for i in range(12))


class TestAuthenticator:
    def test_each_token_is_its_identity(self, store: IdentityStore) -> None:
        alice = store.add_token("alice")
        ops = store.add_token("ops", admin=True)
        auth = Authenticator("default-token", store)
        assert auth.identify(scope("default-token")) == DEFAULT_IDENTITY
        assert auth.identify(scope(alice)) == Identity("alice", admin=False)
        assert auth.identify(scope(ops)) == Identity("ops", admin=True)
        for bad in (None, "wrong", alice + "x", alice[:-1]):
            assert auth.identify(scope(bad)) is None
        assert auth.identify({"type": "http", "headers": [(b"authorization", f"Basic {alice}".encode())]}) is None
        assert "alice" not in repr(auth) and alice not in repr(auth)

    def test_revoke_takes_effect_on_refresh(self, store: IdentityStore) -> None:
        alice = store.add_token("alice")
        auth = Authenticator("default-token", store)
        assert not auth.refresh()  # nothing changed
        store.revoke_token("alice")
        assert auth.refresh()
        assert auth.identify(scope(alice)) is None
        bob = store.add_token("bob")
        assert auth.identify(scope(bob)) == Identity("bob")  # a token not in the snapshot makes it look again

    @pytest.mark.parametrize("content", [b"{ broken", b"\xff", DEEP], ids=["malformed", "not-utf8", "deep"])
    def test_a_broken_store_keeps_the_last_good_one(self, store: IdentityStore, caplog: pytest.LogCaptureFixture, content: bytes) -> None:
        alice = store.add_token("alice")
        auth = Authenticator("default-token", store)
        store.path.write_bytes(content)
        assert not auth.refresh()
        assert auth.identify(scope(alice)) == Identity("alice")
        assert auth.identify(scope("unknown")) is None  # makes it look again: still no error
        assert "not reloaded" in caplog.text

    def test_no_auth(self, store: IdentityStore) -> None:
        auth = Authenticator(None, store, auth=False)
        assert auth.identify(scope(None)) == ANONYMOUS


def refused(tc: TestClient, headers: dict[str, str]) -> WebSocketDenialResponse:
    with pytest.raises(WebSocketDenialResponse) as info, tc.websocket_connect("/ws/endpoint", headers=dict(headers)):
        raise AssertionError("the bridge accepted the WebSocket")
    return info.value


def known(tc: TestClient) -> None:
    """Make the app see the store's latest content now (it would within about a second)."""
    tc.app.tokens.refresh()  # type: ignore[attr-defined]


class TestEndpointNames:
    def test_a_name_belongs_to_the_key_that_first_claimed_it(self, client: TestClient, store: IdentityStore) -> None:
        """The impostor case: while `dtn` is down, another key still cannot take its name."""
        other = store.enroll("other")
        known(client)
        with FakeEndpoint(client, "dtn"):
            pass  # claimed by the local key, now disconnected
        for name in ("dtn", "DTN"):
            denied = refused(client, endpoint_headers(name, other))
            assert denied.status_code == 403  # an enrolled key registers only its own name
            assert "enrolled for 'other'" in denied.json()["message"]
        with FakeEndpoint(client, "dtn") as ep:  # the rightful owner comes back
            assert ep.registered["name"] == "dtn"

    def test_a_claimed_name_is_refused_to_another_key(self, client: TestClient, store: IdentityStore) -> None:
        with FakeEndpoint(client, "dtn"):
            pass
        # a second bridge host key (the local key of another HOME) is a different key
        second_home = IdentityStore(store.home.parent / "second")
        second_home.ensure_local_key()
        stranger = second_home.key_path.read_text().strip()
        denied = refused(client, endpoint_headers("dtn", stranger))
        assert denied.status_code == 401  # unknown here at all
        # forge the case the 409 is for: two keys this bridge knows, one name
        with store.edit() as data:
            data.claims["dtn"] = data.claims["dtn"].model_copy(update={"owner": "someone-else"})
        known(client)
        denied = refused(client, endpoint_headers("DTN"))
        assert denied.status_code == 409
        assert "endpoints forget dtn" in denied.json()["message"]

    def test_ep1_and_EP1_are_one_name(self, client: TestClient) -> None:
        with FakeEndpoint(client, "ep1") as ep:
            ep.serve(echo)
            assert client.get("/EP1/sysinfo/x", headers=AUTH).json()["path"] == "/sysinfo/x"  # routing ignores case
            names = [e["name"] for e in client.get("/endpoints", headers=AUTH).json()["endpoints"]]
            assert names == ["ep1"]

    def test_enrolled_key_registers_its_name(self, client: TestClient, store: IdentityStore) -> None:
        key = store.enroll("remote")
        known(client)
        with FakeEndpoint(client, "REMOTE", headers=endpoint_headers("REMOTE", key)) as ep:
            assert ep.registered["name"] == "remote"
        assert refused(client, endpoint_headers("elsewhere", key)).status_code == 403

    def test_forget_disconnects_and_releases(self, store: IdentityStore) -> None:
        app = create_app(make_settings())
        with TestClient(app) as tc:
            key = store.enroll("remote")
            known(tc)
            with FakeEndpoint(tc, "remote", headers=endpoint_headers("remote", key)) as ep:
                assert ep.ws is not None
                store.forget("remote")  # the running bridge notices within about a second ...
                assert tc.get("/endpoints", headers={"Authorization": "Bearer unknown"}).status_code == 401
                # ... even when a request made it reload first (an unknown token looks again)
                with pytest.raises(WebSocketDisconnect) as info:
                    while True:
                        ep.ws.receive_json()
                assert info.value.code == CLOSE_UNAUTHORIZED
            assert refused(tc, endpoint_headers("remote", key)).status_code == 401  # its key went with it
            with FakeEndpoint(tc, "remote") as ep:  # the name is free for whoever claims it
                assert ep.registered["name"] == "remote"
            assert json.loads(store.path.read_text())["claims"]["remote"]["owner"] == "local"


class TestClientIdentities:
    def test_the_endpoint_hears_who_calls(self, client: TestClient, store: IdentityStore) -> None:
        alice = store.add_token("alice")
        known(client)
        with FakeEndpoint(client) as ep:
            ep.serve(echo)
            for token, name in ((alice, "alice"), (AUTH["Authorization"].split()[1], "admin")):
                seen = client.get("/ep1/sysinfo/x", headers={"Authorization": f"Bearer {token}", IDENTITY_HEADER: "forged"}).json()
                assert [v for k, v in seen["headers"] if k == IDENTITY_HEADER] == [name]

    def test_revoked_token_refused_without_a_restart(self, store: IdentityStore) -> None:
        app = create_app(make_settings())
        with TestClient(app) as tc:
            alice = store.add_token("alice")
            headers = {"Authorization": f"Bearer {alice}"}
            until(lambda: tc.get("/endpoints", headers=headers).status_code == 200, "the new token works")
            store.revoke_token("alice")
            until(lambda: tc.get("/endpoints", headers=headers).status_code == 401, "the revoked token is refused")

    @pytest.mark.parametrize("content", [b"{ broken", b"\xff", DEEP], ids=["malformed", "not-utf8", "deep"])
    def test_a_running_bridge_keeps_serving_through_a_broken_store(self, store: IdentityStore, content: bytes) -> None:
        """An unknown token makes the bridge re-read the store: a store that cannot be decoded
        was an HTTP 500; it is a 401, and the tokens it had still work."""
        app = create_app(make_settings())
        with TestClient(app) as tc:
            alice = store.add_token("alice")
            headers = {"Authorization": f"Bearer {alice}"}
            until(lambda: tc.get("/endpoints", headers=headers).status_code == 200, "the new token works")
            store.path.write_bytes(content)
            assert tc.get("/endpoints", headers={"Authorization": "Bearer unknown"}).status_code == 401
            assert tc.get("/endpoints", headers=headers).status_code == 200

    def test_endpoint_keys_are_not_client_tokens(self, client: TestClient) -> None:
        assert client.get("/endpoints", headers={"Authorization": f"Bearer {local_key()}"}).status_code == 401
