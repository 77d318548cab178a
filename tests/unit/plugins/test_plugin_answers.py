"""Plugin answers holding text UTF-8 cannot carry: JSON escapes, never a 500.

Every route shape FastAPI answers itself (``fast_routes = False``, a GET with a query,
a route without a response model) must write a lone surrogate the way the fast path
does, and leave every other answer byte-identical to plain FastAPI.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi._compat import ModelField
from pydantic import BaseModel

from radical.orbit.plugins.answers import (
    PluginRoute,
    SafeJSONResponse,
    with_escape_fallback,
)
from radical.orbit.plugins.base import Plugin, PluginContext, SessionRequest
from radical.orbit.web.errors import install_error_handlers

NAME = "caf\udce9.txt"  # what os.fsdecode makes of b"caf\xe9.txt"


class Entry(BaseModel):
    name: str
    size: int


class Listing(SessionRequest):
    path: str


def add_shapes(router: APIRouter) -> None:
    """The same routes on a plugin app and on a plain FastAPI app."""

    @router.get("/dict")
    async def as_dict(name: str = NAME) -> dict[str, Any]:
        return {"name": name, "n": 1}

    @router.get("/model")
    async def as_model(name: str = NAME) -> Entry:
        return Entry(name=name, size=3)

    @router.get("/bare", response_model=None)
    async def bare(name: str = NAME):  # type: ignore[no-untyped-def]  # no response model at all
        return {"name": name, "list": [name, "ü"]}

    @router.post("/ls")
    async def ls(body: Listing) -> dict[str, Any]:  # fast-path shape
        return {"entries": [{"name": NAME}, {"name": "plain"}], "path": body.path}

    @router.get("/broken")
    async def broken() -> dict[str, Any]:
        return {"x": object()}  # a plugin bug, not text: still an error


class PluginShapes(Plugin):
    name = "shapes"
    fast_routes = False

    @classmethod
    def check_enabled(cls) -> str | None:
        return None

    def add_routes(self, router: APIRouter) -> None:
        add_shapes(router)


class PluginShapesFast(PluginShapes):
    fast_routes = True


def plugin_app(cls: type[Plugin]) -> Any:
    return cls(PluginContext(endpoint="ep", notify=lambda *a: None)).app


def plain_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    add_shapes(app.router)
    return app


async def get(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


LS = {"json": {"sid": "s" * 32, "path": "/data"}}


@pytest.mark.parametrize("cls", [PluginShapes, PluginShapesFast])
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    [
        ("GET", "/dict", {}, {"name": NAME, "n": 1}),
        ("GET", "/model", {}, {"name": NAME, "size": 3}),
        ("GET", "/bare", {}, {"name": NAME, "list": [NAME, "ü"]}),
        ("POST", "/ls", LS, {"entries": [{"name": NAME}, {"name": "plain"}], "path": "/data"}),
    ],
)
def test_lone_surrogates_are_escaped_on_every_route_shape(
    cls: type[Plugin], method: str, path: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    resp = asyncio.run(get(plugin_app(cls), method, path, **kwargs))
    assert resp.status_code == 200, resp.text
    assert resp.content.isascii() and b"\\udce9" in resp.content
    assert json.loads(resp.content) == expected  # the client gets the same str back
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-length"] == str(len(resp.content))


def test_plain_fastapi_fails_there_which_is_why_this_exists() -> None:
    for path in ("/dict", "/model", "/bare"):
        assert asyncio.run(get(plain_app(), "GET", path)).status_code == 500, path


@pytest.mark.parametrize("cls", [PluginShapes, PluginShapesFast])
@pytest.mark.parametrize("path", ["/dict?name=plain", "/model?name=caf%C3%A9", "/bare?name=%E2%82%AC"])
def test_every_other_answer_is_byte_identical_to_fastapi(cls: type[Plugin], path: str) -> None:
    ours = asyncio.run(get(plugin_app(cls), "GET", path))
    theirs = asyncio.run(get(plain_app(), "GET", path))
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.headers.raw == theirs.headers.raw


@pytest.mark.parametrize("cls", [PluginShapes, PluginShapesFast])
def test_a_value_that_is_not_json_still_fails(cls: type[Plugin]) -> None:
    """The fallback covers text only; a plugin returning an arbitrary object is a bug."""
    resp = asyncio.run(get(plugin_app(cls), "GET", "/broken"))
    assert resp.status_code == 500


def test_the_plugin_app_uses_the_escaping_pieces() -> None:
    app = plugin_app(PluginShapes)
    assert app.router.route_class is PluginRoute
    routes = {r.path: r for r in app.router.routes if isinstance(r, PluginRoute)}
    assert set(routes) >= {"/dict", "/model", "/bare", "/ls", "/register_session"}
    assert routes["/bare"].response_field is None
    assert routes["/bare"].response_class.value is SafeJSONResponse
    assert isinstance(routes["/model"].response_field, ModelField)  # identity and type kept
    schema = app.openapi()  # OpenAPI still builds from the switched fields
    assert "Entry" in json.dumps(schema)


def test_fastapi_field_shape_is_what_the_fallback_needs() -> None:
    """Fails loudly when a FastAPI release changes the field the fallback extends."""
    assert callable(getattr(ModelField, "serialize_json", None)) and callable(getattr(ModelField, "serialize", None))
    app = plain_app()
    field = next(r.response_field for r in app.router.routes if getattr(r, "path", "") == "/model")
    before = field.serialize_json(Entry(name="x", size=1))
    assert with_escape_fallback(field) is field and with_escape_fallback(field) is field  # idempotent
    assert field.serialize_json(Entry(name="x", size=1)) == before
    assert field.serialize_json(Entry(name=NAME, size=1)) == b'{"name":"caf\\udce9.txt","size":1}'


def test_safe_response_renders_like_jsonresponse() -> None:
    from fastapi.responses import JSONResponse

    for content in ({"a": "ü", "b": [1, 2.5, None, True]}, [], "x", {"€": {"n": -1}}):
        assert SafeJSONResponse(content).body == JSONResponse(content).body
    assert SafeJSONResponse({"k": NAME}).body == b'{"k":"caf\\udce9.txt"}'
    with pytest.raises(ValueError, match="Out of range float"):
        SafeJSONResponse({"x": float("nan")})  # as JSONResponse: NaN is not JSON
