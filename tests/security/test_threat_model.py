"""docs/threat-model.md keeps its promise: every "cannot" names a test, and every test
it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"
PREFIXES = {"S/": "tests/security/", "U/": "tests/unit/", "I/": "tests/integration/"}
CITATION = re.compile(r"`([SUI]/[\w/]+\.py)::([\w:]+)`")


def cannot_bullets() -> list[str]:
    """The bullets of every **Cannot** list, each joined into one line."""
    bullets: list[str] = []
    inside = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("**Cannot**"):
            inside = True
        elif line.startswith("#"):
            inside = False
        elif inside and line.startswith("* "):
            bullets.append(line)
        elif inside and line.startswith("  ") and bullets:
            bullets[-1] += " " + line.strip()
    return bullets


def test_every_cannot_names_a_test() -> None:
    bullets = cannot_bullets()
    assert len(bullets) >= 30
    missing = [b for b in bullets if not CITATION.search(b)]
    assert not missing, missing


def test_every_named_test_exists() -> None:
    found = CITATION.findall(DOC.read_text(encoding="utf-8"))
    assert found
    for short, name in found:
        path = ROOT / (PREFIXES[short[:2]] + short[2:])
        assert path.is_file(), short
        source = path.read_text(encoding="utf-8")
        *classes, function = name.split("::")
        for cls in classes:
            assert re.search(rf"^class {cls}\b", source, re.MULTILINE), f"{short}::{name}"
        assert re.search(rf"^\s*def {function}\(", source, re.MULTILINE), f"{short}::{name}"
