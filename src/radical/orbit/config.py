"""Where radical.orbit finds its settings: one constant per environment variable and file.

Resolution everywhere is: explicit argument > environment variable > file under
``~/.radical/orbit/`` > default. ``~`` is ``Path.home()``, so a test (or a user)
can redirect everything with ``HOME``.

The original Orbit's names are read too, each right after ours, so its users'
environments keep working: ``RADICAL_BRIDGE_URL`` / ``RADICAL_BRIDGE_CERT`` after
``RADICAL_ORBIT_BRIDGE_URL`` / ``_CERT``, and ``bridge_cert.pem`` after ``bridge.cert``
(docs/compat.md).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from .errors import UsageError, quoted

ENV_BRIDGE_URL = "RADICAL_ORBIT_BRIDGE_URL"
ENV_BRIDGE_TOKEN = "RADICAL_ORBIT_BRIDGE_TOKEN"
ENV_BRIDGE_CERT = "RADICAL_ORBIT_BRIDGE_CERT"
ENV_ENDPOINT_KEY = "RADICAL_ORBIT_ENDPOINT_KEY"
ENV_GLOBUS_COLLECTION = "RADICAL_ORBIT_GLOBUS_COLLECTION"
ENV_LOG_LEVEL = "RADICAL_ORBIT_LOG_LEVEL"

DEFAULT_BRIDGE_URL = "http://127.0.0.1:8000"
#: the largest timeout or interval any option or argument takes (about 31 years): beyond
#: ~9.2e9 s, thread waits and socket timeouts raise OverflowError
MAX_SECONDS = 1e9
DEFAULT_BRIDGE_PORT = 8000
DEFAULT_EMULATOR_PORT = 8700

BRIDGE_URL_FILE = "bridge.url"
BRIDGE_TOKEN_FILE = "bridge.token"
BRIDGE_CERT_FILE = "bridge.cert"
GLOBUS_CONFIG_FILE = "globus.json"
#: the local endpoint key, written by the bridge (an endpoint in the same HOME finds it)
ENDPOINT_KEY_FILE = "endpoint.key"
#: the bridge's hashed client tokens, endpoint keys and name claims
IDENTITIES_FILE = "bridge-identities.json"

#: prefixes of the secrets the bridge makes, so a misplaced one can be named (and found by scanners)
CLIENT_TOKEN_PREFIX = "orbit_ct_"
ENDPOINT_KEY_PREFIX = "orbit_ek_"

#: the original Orbit's names, read after ours
ORIGINAL_ENV_BRIDGE_URL = "RADICAL_BRIDGE_URL"
ORIGINAL_ENV_BRIDGE_CERT = "RADICAL_BRIDGE_CERT"
ORIGINAL_BRIDGE_CERT_FILE = "bridge_cert.pem"
#: where each setting is looked up, in order (environment variables, then files)
BRIDGE_URL_ENVS = (ENV_BRIDGE_URL, ORIGINAL_ENV_BRIDGE_URL)
BRIDGE_URL_FILES = (BRIDGE_URL_FILE,)
BRIDGE_TOKEN_ENVS = (ENV_BRIDGE_TOKEN,)
BRIDGE_TOKEN_FILES = (BRIDGE_TOKEN_FILE,)
BRIDGE_CERT_ENVS = (ENV_BRIDGE_CERT, ORIGINAL_ENV_BRIDGE_CERT)
BRIDGE_CERT_FILES = (BRIDGE_CERT_FILE, ORIGINAL_BRIDGE_CERT_FILE)


def orbit_home() -> Path:
    """``~/.radical/orbit`` (not created here)."""
    return Path.home() / ".radical" / "orbit"


#: a token's or key's file holds one short line: a larger one is the wrong file (or /dev/zero)
MAX_SECRET_FILE_BYTES = 64 * 1024
#: ``bridge.url`` names at most a few bridges, one line
MAX_SETTING_FILE_BYTES = 64 * 1024


def read_text_file(path: Path, fix: str, limit: int) -> str:
    """The text of ``path`` read as UTF-8, never more than ``limit`` bytes of it.

    :param fix: what to do about an unusable file, the end of the message
    :raises OSError: the file cannot be opened or read
    :raises UsageError: the file is larger than ``limit`` bytes, or is not UTF-8 text
        (the message names the file, then ``fix``)
    """
    with path.open("rb") as fh:
        data = fh.read(limit + 1)  # a device such as /dev/zero never ends
    if len(data) > limit:
        raise UsageError(f"{path} is larger than {limit // 1024} KiB; {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; {fix}") from None


def read_setting_file(name: str, fix: str) -> str | None:
    """The stripped text of ``~/.radical/orbit/<name>`` (None: missing, unreadable or empty).

    :raises UsageError: the file is not UTF-8 text, or too large for a setting (the
        message ends with ``fix``)
    """
    path = orbit_home() / name
    try:
        text = read_text_file(path, fix, MAX_SETTING_FILE_BYTES)
    except OSError:
        return None
    return text.strip() or None


def _first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def setting_source(arg: object, envs: tuple[str, ...], files: tuple[str, ...]) -> str:
    """Where a setting came from, for messages (never the value): ``the argument``,
    ``$NAME``, a file's path, or ``the default``."""
    if arg:
        return "the argument"
    for name in envs:
        if os.environ.get(name):
            return f"${name}"
    for filename in files:
        path = orbit_home() / filename
        if path.is_file():
            return str(path)
    return "the default"


def check_private_file(path: Path) -> None:
    """Refuse a secret's file that group or others may open (the fix is in the message).

    Whoever reads a token or key checks this, so a copied file that kept mode 0644 is
    caught on the machine where it leaks, not trusted silently.

    :raises UsageError: the file's mode gives group or others any access
    """
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        raise UsageError(
            f"{path} holds a secret but is open to other users (mode {mode:04o}); "
            f"make it private and start again: chmod 600 {path}"
        )


def read_private_file(path: Path) -> str | None:
    """The stripped text of a secret's file (None: missing or empty), refusing a file
    others may read (:func:`check_private_file`).

    :raises UsageError: the file cannot be read, is open to other users, is not UTF-8
        text or is larger than :data:`MAX_SECRET_FILE_BYTES` (never quoting its content)
    """
    fix = "it should hold only the token or key, on one line; give the right file, or replace this one"
    try:
        text = read_text_file(path, fix, MAX_SECRET_FILE_BYTES).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    check_private_file(path)
    return text or None


#: the end of the message for an unusable ``bridge.url``
BRIDGE_URL_FILE_FIX = f"it should hold only the bridge URL (e.g. {DEFAULT_BRIDGE_URL}); fix it, or remove it to use the default"


def resolve_bridge_url(url: str | None = None) -> str:
    """Argument > ``RADICAL_ORBIT_BRIDGE_URL`` > ``RADICAL_BRIDGE_URL`` > ``~/.radical/orbit/bridge.url`` > default.

    The value may list several bridges, comma-separated (:func:`bridge_url_list` splits it).

    :raises UsageError: the file is not UTF-8 text, or too large
    """
    value = url or _first_env(BRIDGE_URL_ENVS) or read_setting_file(BRIDGE_URL_FILE, BRIDGE_URL_FILE_FIX) or DEFAULT_BRIDGE_URL
    return value.rstrip("/")


def resolve_bridge_token(token: str | None = None) -> str | None:
    """Argument > ``RADICAL_ORBIT_BRIDGE_TOKEN`` > ``~/.radical/orbit/bridge.token`` > none.

    :raises UsageError: the token file is open to other users
    """
    return token or os.environ.get(ENV_BRIDGE_TOKEN) or read_private_file(orbit_home() / BRIDGE_TOKEN_FILE)


def resolve_bridge_cert(cert: str | None = None) -> str | None:
    """Argument > ``RADICAL_ORBIT_BRIDGE_CERT`` > ``RADICAL_BRIDGE_CERT`` > ``~/.radical/orbit/bridge.cert``
    > ``~/.radical/orbit/bridge_cert.pem`` (files only if present).

    ``~`` in a path from the environment is expanded: no shell does it inside a variable.
    """
    if cert:
        return cert
    env = _first_env(BRIDGE_CERT_ENVS)
    if env:
        return os.path.expanduser(env)
    for filename in BRIDGE_CERT_FILES:
        path = orbit_home() / filename
        if path.is_file():
            return str(path)
    return None


def write_private_file(name: str, content: str) -> Path:
    """Write ``~/.radical/orbit/<name>`` with mode 0600 (directory 0700), atomically.

    A temporary file in the same directory is renamed over the target, so a reader
    polling for the file (an endpoint waiting for ``endpoint.key``) sees all of it or
    nothing.
    """
    home = orbit_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / name
    write_private_path(path, content)
    return path


def write_private_path(path: Path, content: str) -> None:
    """Write ``path`` with mode 0600 through a temporary file and a rename (see above)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def split_url(url: str, where: str, schemes: tuple[str, ...], example: str) -> SplitResult:
    """``url`` split, or a :class:`UsageError` starting with ``where`` that says what is wrong.

    The checks any URL we dial must pass (one token, a readable port, a known scheme, a
    host), so a typo is one clear line instead of a traceback from an HTTP library.
    """
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise UsageError(f"{where} contains spaces or control characters; write it as one token, {example}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:  # a bad port or an unclosed IPv6 bracket
        raise UsageError(f"{where} cannot be read ({exc}); write it as scheme://host:port, {example}") from None
    if parts.scheme.lower() not in schemes:
        raise UsageError(f"{where} must start with {', '.join(s + '://' for s in schemes)}; {example}")
    if not parts.hostname:
        raise UsageError(f"{where} has no host; {example}")
    if ":" not in parts.hostname:  # a name (or IPv4): each dot-separated label 1-63 characters, as DNS has them
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            raise UsageError(f"{where} names a host DNS cannot look up (an empty or over-long part between dots); {example}") from None
    return parts


def shown_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # host:port, as a proxy variable may be written
        scheme, rest = "", url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{tail}"


#: longer bridge URLs are refused before anything parses them
MAX_URL_LENGTH = 2048


def check_bridge_url(url: str, source: str = "the settings", *, websocket: bool = False) -> SplitResult:
    """:func:`split_url` for the bridge URL, naming where it came from; also refuses port 0
    and a query or fragment (which would be dropped silently).

    Checked before anything dials it, so an endpoint never retries an impossible address.
    ``websocket`` also allows ``ws://`` and ``wss://`` (the endpoint's ``--url``).
    """
    schemes = ("http", "https", "ws", "wss") if websocket else ("http", "https")
    example = "e.g. http://127.0.0.1:8000"
    if len(url) > MAX_URL_LENGTH:  # httpx refuses 64 KiB and more with a bare InvalidURL
        raise UsageError(f"bridge URL {quoted(shown_url(url), 60)} (from {source}) is {len(url)} characters long; give scheme://host:port, {example}")
    where = f"bridge URL {shown_url(url)!r} (from {source})"
    parts = split_url(url, where, schemes, example)
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            f"{where} carries a user name or password; Orbit signs in with a token (clients) or an endpoint key "
            f"(endpoints), never with credentials in the URL: give scheme://host:port, {example}"
        )
    if parts.port == 0:
        raise UsageError(f"{where} has port 0; use the port the bridge listens on (1-65535), {example}")
    if parts.fragment or (parts.query and not websocket):
        raise UsageError(f"{where} must not have a query or fragment; give only scheme://host:port[/path], {example}")
    return parts


#: the most bridge URLs one list may name (replicas of one cluster; more is a mistake)
MAX_BRIDGE_URLS = 16


def bridge_url_list(value: str | Sequence[str], source: str = "the settings", *, websocket: bool = False) -> list[str]:
    """The bridge URLs in ``value`` (``"A,B"`` or ``[A, B]``), each checked by :func:`check_bridge_url`.

    Several URLs name replicas of one bridge (or independent bridges one endpoint
    serves): clients and endpoints try them in order and stay with the one that works.
    Each is stripped of spaces around it and of trailing slashes; a repeated one counts
    once, so ``A,A`` cannot make a retry loop twice as long.

    :raises UsageError: no URL at all, too many, an empty entry between commas, or a
        URL :func:`check_bridge_url` refuses (the message names which one and where
        it came from)
    """
    if isinstance(value, str):
        items = value.split(",")
        if len(items) > 1 and not items[-1].strip():  # "A,B," from a hand-edited file
            items.pop()
    else:
        items = list(value)
    if not items or (len(items) == 1 and isinstance(items[0], str) and not items[0].strip()):
        raise UsageError(f"no bridge URL given (from {source}); give one or more, comma-separated, e.g. http://127.0.0.1:8000")
    if len(items) > MAX_BRIDGE_URLS:
        raise UsageError(f"{len(items)} bridge URLs (from {source}): give at most {MAX_BRIDGE_URLS}, comma-separated")
    urls: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise UsageError(f"bridge URL number {index + 1} (from {source}) must be a string, got {type(item).__name__}")
        url = item.strip().rstrip("/")
        if not url:
            raise UsageError(
                f"bridge URL number {index + 1} (from {source}) is empty; separate URLs with single commas, "
                "e.g. http://a.example:8000,http://b.example:8000"
            )
        check_bridge_url(url, source, websocket=websocket)
        if url not in urls:
            urls.append(url)
    return urls
