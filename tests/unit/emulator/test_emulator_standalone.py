"""The emulator stands on its own: of radical.orbit it imports only the error tree.

Every module under ``radical/orbit/emulators/`` is parsed (not imported) and each
import, relative ones resolved against the module's package and those inside
functions included, must be the emulator's own or ``radical.orbit.errors``. A second
test runs the emulator in a fresh interpreter and checks what it really loaded.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import radical.orbit.emulators

EMULATORS = Path(radical.orbit.emulators.__file__).parent
OWN = "radical.orbit.emulators"
ALLOWED = ("radical.orbit.errors",)


def module_name(path: Path) -> tuple[str, str]:
    """(module name, package name) of a file below :data:`EMULATORS`."""
    parts = [OWN, *path.relative_to(EMULATORS).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imported_modules(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, wherever it appears."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else str(node.module)
            if node.module is None:  # ``from .. import x``: x may be a module of that package
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"
            else:
                yield node.lineno, base
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            first = node.args[0] if node.args else None
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def foreign_orbit_imports(source: str, package: str) -> list[tuple[int, str]]:
    """Imports of radical.orbit that are neither the emulator's own nor allowed."""
    out = []
    for line, name in imported_modules(source, package):
        orbit = name == "radical.orbit" or name.startswith("radical.orbit.")
        own = name == OWN or name.startswith(OWN + ".")
        allowed = any(name == a or name.startswith(a + ".") for a in ALLOWED)
        if orbit and not own and not allowed:
            out.append((line, name))
    return out


def test_the_emulator_imports_only_the_error_tree_of_orbit() -> None:
    files = sorted(EMULATORS.rglob("*.py"))
    assert len(files) > 10, f"too few modules found under {EMULATORS}"
    found = []
    for path in files:
        _, package = module_name(path)
        for line, name in foreign_orbit_imports(path.read_text(encoding="utf-8"), package):
            found.append(f"{path.relative_to(EMULATORS)}:{line}: {name}")
    assert not found, "the emulator must import nothing of radical.orbit but radical.orbit.errors:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from ...testing import start_emulator", "radical.orbit.emulators.globus", ["radical.orbit.testing"]),
        ("def f():\n    from ... import config", "radical.orbit.emulators.globus", ["radical.orbit.config"]),
        ("import radical.orbit.bridge.app", "radical.orbit.emulators.globus", ["radical.orbit.bridge.app"]),
        ("from ....__about__ import __version__", "radical.orbit.emulators.globus.transfer_api", ["radical.orbit.__about__"]),
        ("importlib.import_module('radical.orbit.client')", "radical.orbit.emulators.globus", ["radical.orbit.client"]),
        ("from ...errors import describe_validation_errors", "radical.orbit.emulators.globus", []),
        ("from .. import common\nfrom ..task import Task", "radical.orbit.emulators.globus.transfer_api", []),
        ("import radical.orbit.errors\nimport json", "radical.orbit.emulators.globus", []),
    ],
)
def test_the_import_check_sees_what_it_must(source: str, package: str, expected: list[str]) -> None:
    assert [name for _, name in foreign_orbit_imports(source, package)] == expected


def test_a_running_emulator_loads_no_other_orbit_module() -> None:
    """Build the app and serve a request in a fresh interpreter; list what of Orbit got loaded."""
    code = (
        "import json, sys, tempfile\n"
        "from starlette.testclient import TestClient\n"
        "from radical.orbit.emulators.globus import EmulatorSettings, create_app\n"
        "with tempfile.TemporaryDirectory() as root:\n"
        "    with TestClient(create_app(EmulatorSettings(root=root))) as client:\n"
        "        assert client.get('/health').json()['status'] == 'ok'\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('radical.orbit'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    # the parent package's own __init__ loads its version and error tree; nothing else may come
    others = [m for m in loaded if not (m.startswith(OWN) or m in ("radical.orbit", "radical.orbit.__about__", *ALLOWED))]
    assert others == [], others
