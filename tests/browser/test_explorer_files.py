"""The Explorer's files as shipped, read as text (no browser needed): what the strict
CSP requires of them, that server data can only become text, that the page stores
nothing and loads nothing from elsewhere."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

UI = Path(str(resources.files("radical.orbit") / "ui"))
SCRIPTS = sorted(UI.rglob("*.js"))
PAGES = sorted(UI.rglob("*.html"))
STYLES = sorted(UI.rglob("*.css"))
ALL = sorted(p for p in UI.rglob("*") if p.is_file() and p.suffix in {".js", ".html", ".css", ".svg"})
#: the one absolute URL the scripts hold: SVG's XML namespace, an identifier, never fetched
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def code_of(path: Path) -> str:
    """A script without its comments (they may name things the code must not do)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"(^|[^:\\])//.*$", r"\1", text, flags=re.MULTILINE)


def test_the_page_is_there() -> None:
    names = {p.relative_to(UI).as_posix() for p in ALL}
    assert {"index.html", "callback.html", "explorer.css", "js/main.js", "js/callback.js"} <= names
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.relative_to(UI).as_posix())
def test_scripts_never_parse_markup_or_store_anything(path: Path) -> None:
    code = code_of(path)
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "setAttribute(\"style\"", "localStorage", "sessionStorage", "indexedDB", "document.cookie",
                      "console.log", "setTimeout(\"", "setInterval(\""):
        assert forbidden not in code, f"{path.name} uses {forbidden}"
    for module in re.findall(r"""^\s*import\b[^;]*?from\s+["']([^"']+)["']""", code, flags=re.MULTILINE):
        assert module.startswith(("./", "../")) and module.endswith(".js"), f"{path.name} imports {module!r}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_hold_no_inline_script_or_style(path: Path) -> None:
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"<style\b", html, flags=re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", html, flags=re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE), "inline event handler"
    for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.IGNORECASE | re.DOTALL):
        assert tag.strip() == "", "inline script"
    assert all('type="module"' in t and "src=" in t for t in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.relative_to(UI).as_posix())
def test_nothing_comes_from_elsewhere(path: Path) -> None:
    text = code_of(path) if path.suffix == ".js" else path.read_text(encoding="utf-8")
    urls = [u for u in re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)]*""", text) if u != SVG_NAMESPACE]
    if path.suffix == ".svg":
        urls = [u for u in urls if u != SVG_NAMESPACE]
    assert urls == [], f"{path.name} names outside URLs: {urls}"
    if path.suffix == ".css":
        assert "@import" not in text and "@font-face" not in text
        assert not re.search(r"url\(\s*['\"]?(?!data:)", text), "CSS loads a resource"
