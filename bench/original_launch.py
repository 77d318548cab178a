"""Run the original Orbit's bridge script over plain HTTP, or the bare app under its server settings.

Started by ``original.py`` with the ORIGINAL's venv interpreter, so it imports nothing
from this project (only ``bare_app`` beside it, which needs starlette alone)::

    python original_launch.py {bridge,bare} --script .../radical-orbit-bridge.py
        --port PORT --state DIR

The original has no switch for plain HTTP: ``Bridge()`` refuses to start without a
certificate and key, and ``Bridge.run()`` always hands them to ``uvicorn.run``. So
this launcher makes a throwaway self-signed pair for the constructor's check, runs
the installed ``radical-orbit-bridge.py`` itself (its argument parsing, its logging
set-up, its ``Bridge``), and wraps ``uvicorn.run`` to drop exactly two arguments,
``ssl_certfile`` and ``ssl_keyfile``. Every other argument is the original's own; they
are written to ``DIR/uvicorn-<mode>.json`` for the report. In ``bare`` mode the same
call serves the bare app instead of the bridge's, so the bare app gets the
original's server settings to the letter.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any


def self_signed_pair(directory: Path) -> tuple[Path, Path]:
    """A certificate and key the original's constructor accepts (key mode 0600, as it insists)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "unused-cert.pem", directory / "unused-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["bridge", "bare"])
    ap.add_argument("--script", type=Path, required=True, help="the installed radical-orbit-bridge.py")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", type=Path, required=True, help="where the throwaway TLS pair and the settings go")
    args = ap.parse_args()
    cert, key = self_signed_pair(args.state / args.mode)

    import uvicorn

    serve = uvicorn.run

    def plain_http(app: Any, **kwargs: Any) -> None:
        dropped = [name for name in ("ssl_certfile", "ssl_keyfile") if kwargs.pop(name, None) is not None]
        settings: dict[str, Any] = {k: v for k, v in kwargs.items() if isinstance(v, str | int | float | bool | type(None))}
        settings["dropped_by_the_bench"] = dropped
        settings["uvloop_installed"] = importlib.util.find_spec("uvloop") is not None
        settings["httptools_installed"] = importlib.util.find_spec("httptools") is not None
        (args.state / f"uvicorn-{args.mode}.json").write_text(json.dumps(settings, indent=1) + "\n")
        if args.mode == "bare":
            from bare_app import make_app

            app = make_app()
        serve(app, **kwargs)

    uvicorn.run = plain_http
    # "--plugins ''": no bridge-hosted plugins (task dispatcher, IRI, staging, sysinfo);
    # they are not on the relay path, and our bridge hosts none either
    sys.argv = [str(args.script), "--host", "127.0.0.1", "--port", str(args.port), "--cert", str(cert), "--key", str(key), "--plugins", ""]
    runpy.run_path(str(args.script), run_name="__main__")


if __name__ == "__main__":
    main()
