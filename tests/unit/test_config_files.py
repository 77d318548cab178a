"""config.py reading the files under ``~/.radical/orbit`` and secrets' files: a file that is
not UTF-8 text, or never ends (/dev/zero), is a usage error naming it, never a traceback
or all the memory there is."""

from __future__ import annotations

from pathlib import Path

import pytest

from radical.orbit.config import (
    MAX_SECRET_FILE_BYTES,
    read_private_file,
    resolve_bridge_token,
    resolve_bridge_url,
    write_private_path,
)
from radical.orbit.errors import UsageError

SECRET = "orbit_ct_" + "s" * 43


@pytest.fixture
def orbit(home: Path) -> Path:
    path = home / ".radical" / "orbit"
    path.mkdir(parents=True, mode=0o700)
    return path


def write_bytes_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def test_a_bridge_url_file_that_is_not_utf8(orbit: Path) -> None:
    write_bytes_private(orbit / "bridge.url", b"http://127.0.0.1:9\xff\n")
    with pytest.raises(UsageError, match="bridge.url is not UTF-8 text; .*remove it to use the default") as info:
        resolve_bridge_url()
    assert str(orbit / "bridge.url") in info.value.message
    assert resolve_bridge_url("http://h:1") == "http://h:1"  # an argument never looks at the file


def test_a_token_file_that_is_not_utf8_is_named_never_quoted(orbit: Path) -> None:
    write_bytes_private(orbit / "bridge.token", SECRET.encode() + b"\xff\n")
    with pytest.raises(UsageError, match="is not UTF-8 text") as info:
        resolve_bridge_token()
    assert str(orbit / "bridge.token") in info.value.message and "s" * 43 not in info.value.message
    assert resolve_bridge_token("given") == "given"


def test_a_secret_file_that_never_ends_is_refused_at_the_cap(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^/dev/zero is larger than 64 KiB; it should hold only the token or key"):
        read_private_file(Path("/dev/zero"))
    big = tmp_path / "big.key"
    write_private_path(big, "k" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(UsageError, match="larger than 64 KiB") as info:
        read_private_file(big)
    assert "kkk" not in info.value.message
    write_private_path(big, "k" * MAX_SECRET_FILE_BYTES + "\n")  # the cap counts the newline too
    with pytest.raises(UsageError, match="larger than 64 KiB"):
        read_private_file(big)
    write_private_path(big, "k" * (MAX_SECRET_FILE_BYTES - 1) + "\n")
    assert read_private_file(big) == "k" * (MAX_SECRET_FILE_BYTES - 1)
