"""Local collection discovery through real endpoint processes, one temporary HOME each:
env var, Globus Connect Personal, ~/.radical/orbit/globus.json, none (then "local" is a
clear 400), and the per-session override."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from globus_stack import LOCAL, TUTORIAL_1, TUTORIAL_2, GlobusStack, globus_stack

from radical.orbit.errors import UsageError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlobusStack]:
    with globus_stack(tmp_path_factory.mktemp("globus-local"), endpoint=False) as st:
        yield st


def fresh_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def local_of(stack: GlobusStack, name: str) -> dict[str, object]:
    g = stack.globus(name, access_token=stack.token()["access_token"])
    try:
        info = g.session_info()
        return {"id": info["local_collection"], "source": info["local_source"]}
    finally:
        g.close()


def test_env_var_first(stack: GlobusStack, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    (home / ".radical" / "orbit").mkdir(parents=True)
    (home / ".radical" / "orbit" / "globus.json").write_text(json.dumps({"local_collection": TUTORIAL_2}))
    stack.add_endpoint("ep-env", home=home, RADICAL_ORBIT_GLOBUS_COLLECTION=LOCAL)
    try:
        assert local_of(stack, "ep-env") == {"id": LOCAL, "source": "env"}
    finally:
        stack.stop_endpoint("ep-env")


def test_globus_connect_personal_second(stack: GlobusStack, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    lta = home / ".globusonline" / "lta"
    lta.mkdir(parents=True)
    (lta / "client-id.txt").write_text(LOCAL + "\n")
    (home / ".radical" / "orbit").mkdir(parents=True)
    (home / ".radical" / "orbit" / "globus.json").write_text(json.dumps({"local_collection": TUTORIAL_2}))
    stack.add_endpoint("ep-gcp", home=home)
    try:
        assert local_of(stack, "ep-gcp") == {"id": LOCAL, "source": "globus_connect_personal"}
    finally:
        stack.stop_endpoint("ep-gcp")


def test_config_file_third(stack: GlobusStack, tmp_path: Path) -> None:
    home = fresh_home(tmp_path)
    (home / ".radical" / "orbit").mkdir(parents=True)
    (home / ".radical" / "orbit" / "globus.json").write_text(json.dumps({"local_collection": TUTORIAL_2}))
    stack.add_endpoint("ep-cfg", home=home)
    try:
        assert local_of(stack, "ep-cfg") == {"id": TUTORIAL_2, "source": "config_file"}
        g = stack.globus("ep-cfg", access_token=stack.token()["access_token"])
        assert g.ls("local", "/~/share/godata/")["endpoint"] == TUTORIAL_2
        g.close()
    finally:
        stack.stop_endpoint("ep-cfg")


def test_none_then_400_and_session_override(stack: GlobusStack, tmp_path: Path) -> None:
    stack.add_endpoint("ep-none", home=fresh_home(tmp_path))
    try:
        assert local_of(stack, "ep-none") == {"id": None, "source": "none"}
        g = stack.globus("ep-none", access_token=stack.token()["access_token"])
        with pytest.raises(UsageError) as info:
            g.submit_transfer(TUTORIAL_1, "local", [{"source": "/~/share/godata/file1.txt", "destination": "/x.txt"}])
        assert info.value.status_code == 400
        assert "'destination'" in info.value.message and "RADICAL_ORBIT_GLOBUS_COLLECTION" in info.value.message
        g.register_session(access_token=stack.token()["access_token"], local_collection=TUTORIAL_1)
        assert g.session_info()["local_source"] == "session"
        assert g.ls("local", "/~/share/godata/")["endpoint"] == TUTORIAL_1
        g.close()
    finally:
        stack.stop_endpoint("ep-none")
