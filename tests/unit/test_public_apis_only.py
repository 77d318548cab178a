"""``src/`` uses only the public API of its third-party dependencies.

A leading underscore is a library's way of saying "this may change in any release":
a name like ``route._embed_body_fields`` or a module like ``uvicorn.protocols.http._x``
makes a routine upgrade break us silently. This test walks the syntax tree of every
module under ``src/`` and fails on

* an import of a third-party module whose dotted path has a private part, or of a
  private name from a third-party module;
* an attribute access ``something._name`` where ``_name`` is defined nowhere in our
  own code (so it can only be someone else's private attribute);
* ``getattr``/``hasattr``/``setattr``/``delattr`` with such a name as a string.

Dunder names (``__version__``) are public by convention, and the standard library
is not a third-party dependency (``os._exit`` is documented). Exceptions go into
:data:`ALLOWED` with the reason, so each one is a decision someone wrote down.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

#: (path relative to src/, name) -> why the private name is acceptable there
ALLOWED: dict[tuple[str, str], str] = {}

_ACCESSORS = frozenset({"getattr", "hasattr", "setattr", "delattr"})
#: documented public methods of the standard library's named tuples (``urlsplit(...)._replace``)
_NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name not in _NAMEDTUPLE_API


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def _ours(module: str) -> bool:
    return module.split(".")[0] == "radical"


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(SRC)), ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in sorted(SRC.rglob("*.py"))]


def _defined_private_names(trees: list[tuple[str, ast.Module]]) -> set[str]:
    """Every private name our own code defines: functions, classes, attributes it
    assigns (``self._x = ...``), names it binds, parameters, keyword arguments."""
    names: set[str] = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg) or isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {name for name in names if _private(name)}


def _stdlib_bindings(tree: ast.Module) -> set[str]:
    """Local names bound to standard-library modules or names (``os``, ``sys``)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _stdlib(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _stdlib(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _violations(path: str, tree: ast.Module, ours: set[str]) -> Iterator[tuple[str, int, str]]:
    stdlib = _stdlib_bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not (_stdlib(alias.name) or _ours(alias.name)) and any(map(_private, alias.name.split("."))):
                    yield path, node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _stdlib(node.module) or _ours(node.module):
                continue
            if any(map(_private, node.module.split("."))):
                yield path, node.lineno, f"from {node.module} import ..."
            for alias in node.names:
                if _private(alias.name):
                    yield path, node.lineno, f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in ours:
            if _root_name(node.value) not in stdlib:
                yield path, node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in ours
        ):
            yield path, node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"


def find_violations() -> list[str]:
    trees = _modules()
    ours = _defined_private_names(trees)
    found = []
    for path, tree in trees:
        for where, line, what in _violations(path, tree, ours):
            name = what.rsplit(".", 1)[-1].split(" import ")[-1].strip("'()., ")
            if (where, name) not in ALLOWED:
                found.append(f"{where}:{line}: {what}")
    return found


def test_src_uses_only_public_names_of_its_dependencies() -> None:
    found = find_violations()
    assert not found, "private names of dependencies (add to ALLOWED only with the reason):\n" + "\n".join(found)


def test_every_allowed_exception_is_still_needed() -> None:
    """An allow-list entry whose use went away must go too."""
    trees = dict(_modules())
    ours = _defined_private_names(list(trees.items()))
    used = set()
    for path, tree in trees.items():
        for where, _, what in _violations(path, tree, ours):
            used.add((where, what.rsplit(".", 1)[-1].split(" import ")[-1].strip("'()., ")))
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)


def _check(source: str) -> list[str]:
    tree = ast.parse(source)
    return [what for _, _, what in _violations("x.py", tree, _defined_private_names([("x.py", tree)]))]


def test_the_check_finds_what_it_is_meant_to_find() -> None:
    assert _check("from uvicorn.protocols._impl import X") == ["from uvicorn.protocols._impl import ..."]
    assert _check("from fastapi.routing import _helper") == ["from fastapi.routing import _helper"]
    assert _check("import httpx._client") == ["import httpx._client"]
    assert _check("def f(route):\n    return route._embed_body_fields") == ["route._embed_body_fields"]
    assert _check("def f(app):\n    return getattr(app, '_native_telemetry', None)") == ["getattr(..., '_native_telemetry')"]


def test_the_check_leaves_alone_what_is_fine() -> None:
    assert _check("import os\nos._exit(1)") == []  # the standard library
    assert _check("class A:\n    def __init__(self):\n        self._x = 1\n    def f(self, o):\n        return o._x") == []
    assert _check("from radical.orbit.x import _ours") == []
    assert _check("import pydantic\npydantic.__version__") == []
    assert _check("from urllib.parse import urlsplit\nurlsplit('x')._replace(query='')") == []
