"""The Explorer's Globus routes through the bridge with a browser's cookie (real processes).

Emulator + bridge + endpoint; the "page" is an HTTP client with the session cookie
(:mod:`explorer_browser`). "Log in with Globus" runs as the page runs it: login_start
through the relay, the browser follows the authorize URL (the emulator approves by
itself here), the callback's code goes back through login_finish. The session then
lists files, and no Globus token shows in any answer or log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from explorer_browser import PageClient
from globus_stack import LOCAL, MAPPED, TUTORIAL_1, GlobusStack, globus_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: what the emulator's tokens look like (any of them showing up is a leak)
TOKEN_SHAPE = re.compile(r"Ag[A-Za-z0-9_-]{40,}")
G = "/ep-globus/globus"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    with globus_stack(tmp_path_factory.mktemp("explorer-globus")) as st:
        st.admin("PATCH", "login", json={"auto_approve": True})
        yield st


@pytest.fixture
def page(stack: GlobusStack) -> Iterator[PageClient]:
    assert stack.bridge is not None
    with stack.client() as bc, PageClient(stack.bridge.url) as client:
        assert client.sign_in(bc.explorer_link()["url"]).status_code == 200
        yield client


def no_token_in(*answers: httpx.Response) -> None:
    for resp in answers:
        assert not TOKEN_SHAPE.search(resp.text), resp.text
        assert '"refresh_token":' not in resp.text and '"access_token":' not in resp.text


def log_in(page: PageClient, **start: Any) -> tuple[dict[str, Any], list[httpx.Response]]:
    """The page's "Log in with Globus", end to end; ``(login_finish answer, every answer)``."""
    callback = f"{page.url}/ui/callback.html"
    started = page.post(f"{G}/login_start", json={"redirect_uri": callback, **start})
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["state"].startswith("ep-globus.")
    # the browser at Globus Auth: the emulator approves and redirects to the callback page
    visit = httpx.get(body["authorize_url"], follow_redirects=False, timeout=30)
    assert visit.status_code == 303, visit.text
    target = urlsplit(visit.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == callback
    query = {key: values[0] for key, values in parse_qs(target.query).items()}
    assert query["state"] == body["state"]
    finished = page.post(f"{G}/login_finish", json={"state": query["state"], "code": query["code"]})
    assert finished.status_code == 200, finished.text
    return finished.json(), [started, finished]


def test_log_in_with_globus_then_list_files(stack: GlobusStack, page: PageClient) -> None:
    done, answers = log_in(page, local_collection=LOCAL)
    assert set(done) == {"sid", "plugin", "auth_mode", "local_collection"}
    assert done["local_collection"] == LOCAL
    listing = page.post(f"{G}/ls", json={"sid": done["sid"], "collection": TUTORIAL_1, "path": "/home/dev/share/godata/"})
    assert listing.status_code == 200, listing.text
    assert sorted(e["name"] for e in listing.json()["DATA"]) == ["file1.txt", "file2.txt", "file3.txt"]
    mine = page.post(f"{G}/sessions", json={})
    assert [s["sid"] for s in mine.json()["sessions"]] == [done["sid"]]
    no_token_in(*answers, listing, mine)
    logs = "\n".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log") if p.name != "emulator.log")
    assert not TOKEN_SHAPE.search(logs)


def test_a_reloaded_page_finds_its_sessions_and_tasks(stack: GlobusStack, page: PageClient) -> None:
    done, _ = log_in(page)
    task = page.post(
        f"{G}/submit_transfer",
        json={"sid": done["sid"], "source": TUTORIAL_1, "destination": LOCAL, "label": "explorer copy",
              "items": [{"source": "/home/dev/share/godata/", "destination": "/explorer-copy/", "recursive": True}]},
    )
    assert task.status_code == 200, task.text
    # a "reload": the same cookie, no credential, no sid in memory
    found = page.post(f"{G}/sessions", json={}).json()["sessions"]
    mine = [s for s in found if s["sid"] == done["sid"]]
    assert mine and [t["task_id"] for t in mine[0]["tasks"]] == [task.json()["task_id"]]
    assert mine[0]["tasks"][0]["label"] == "explorer copy"
    assert page.post(f"{G}/sessions", json={"sid": "x"}).status_code == 422  # {} only


def test_consent_required_then_log_in_with_those_scopes(page: PageClient) -> None:
    done, _ = log_in(page)
    refused = page.post(f"{G}/ls", json={"sid": done["sid"], "collection": MAPPED, "path": "/"})
    assert refused.status_code == 401 and refused.json()["code"] == "consent_required"
    scopes = refused.json()["details"]["required_scopes"]
    assert scopes and MAPPED in scopes[0]
    again, answers = log_in(page, scopes=scopes)
    listing = page.post(f"{G}/ls", json={"sid": again["sid"], "collection": MAPPED, "path": "/data/"})
    assert listing.status_code == 200 and [e["name"] for e in listing.json()["DATA"]] == ["x.txt"]
    no_token_in(*answers, listing)


def test_login_routes_need_the_csrf_header_and_the_callback_uri(page: PageClient) -> None:
    callback = f"{page.url}/ui/callback.html"
    bare = page.http.post(f"{G}/login_start", json={"redirect_uri": callback}, headers={"Cookie": f"orbit_session={page.cookie}"})
    assert bare.status_code == 403
    elsewhere = page.post(f"{G}/login_start", json={"redirect_uri": "http://evil.example/collect"})
    assert elsewhere.status_code == 422 and "callback.html" in elsewhere.json()["message"]
    unknown = page.post(f"{G}/login_finish", json={"state": "ep-globus.nope", "code": "abc"})
    assert unknown.status_code == 400 and "start it again" in unknown.json()["message"]
