"""A stand-in for a browser on the emulator's login pages: httpx plus the stdlib HTML parser.

It does what a person's browser does and no more: load the authorize URL, read the
page's form, press the button with the given visible name, and hand back the 303 the
emulator answers with (never following it: the redirect_uri belongs to the client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


@dataclass
class Button:
    name: str | None
    value: str | None
    text: str = ""


@dataclass
class Form:
    action: str
    method: str
    hidden: dict[str, str] = field(default_factory=dict)
    buttons: list[Button] = field(default_factory=list)


class PageReader(HTMLParser):
    """The forms of a page and its visible text (what a person reads)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._button: Button | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "form":
            self.forms.append(Form(action=a.get("action") or "", method=(a.get("method") or "get").lower()))
        elif tag == "input" and self.forms and a.get("type") == "hidden" and a.get("name"):
            self.forms[-1].hidden[str(a["name"])] = a.get("value") or ""
        elif tag == "button" and self.forms:
            self._button = Button(a.get("name"), a.get("value"))
            self.forms[-1].buttons.append(self._button)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self._button.text += data

    @property
    def visible_text(self) -> str:
        return "".join(self.text)


def read_page(html: str) -> PageReader:
    reader = PageReader()
    reader.feed(html)
    reader.close()
    return reader


def press(client: httpx.Client, page: httpx.Response, button_text: str) -> httpx.Response:
    """Submit the page's form with the button whose visible name is ``button_text``."""
    reader = read_page(page.text)
    assert len(reader.forms) == 1, reader.forms
    form = reader.forms[0]
    buttons = [b for b in form.buttons if b.text.strip() == button_text]
    assert len(buttons) == 1, f"no single button named {button_text!r} in {form.buttons}"
    data = dict(form.hidden)
    if buttons[0].name:
        data[buttons[0].name] = buttons[0].value or ""
    assert form.method == "post"
    return client.post(urljoin(str(page.url), form.action), data=data)


def login(url: str, button_text: str = "Allow") -> httpx.Response:
    """Open ``url`` (an authorize URL), press ``button_text``; the emulator's 303 answer."""
    with httpx.Client(timeout=10) as client:
        page = client.get(url)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        answer = press(client, page, button_text)
    assert answer.status_code == 303, answer.text
    return answer


def redirect_query(answer: httpx.Response) -> dict[str, str]:
    """The query of the 303's Location, one value per name."""
    parsed = parse_qs(urlsplit(answer.headers["location"]).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}
