"""Plugin answers holding text UTF-8 cannot carry: JSON escapes, never a 500.

Every route shape (with and without a response model, a GET with a query, a POST
with a JSON body, a route of an included router) must write a lone surrogate with
escapes, and leave every other answer byte-identical to plain FastAPI.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from radical.orbit.plugins.answers import SafeJSONResponse
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
    async def ls(body: Listing) -> dict[str, Any]:  # the common plugin route: one JSON body model
        return {"entries": [{"name": NAME}, {"name": "plain"}], "path": body.path}

    @router.get("/broken")
    async def broken() -> dict[str, Any]:
        return {"x": object()}  # a plugin bug, not text: still an error


class PluginShapes(Plugin):
    name = "shapes"

    @classmethod
    def check_enabled(cls) -> str | None:
        return None

    def add_routes(self, router: APIRouter) -> None:
        add_shapes(router)


class PluginIncluded(PluginShapes):
    """The same routes on an ``APIRouter`` of the plugin's own, included under ``/sub``."""

    def add_routes(self, router: APIRouter) -> None:
        own = APIRouter()
        add_shapes(own)
        router.include_router(own, prefix="/sub")


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


@pytest.mark.parametrize(("cls", "prefix"), [(PluginShapes, ""), (PluginIncluded, "/sub")])
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
    cls: type[Plugin], prefix: str, method: str, path: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    resp = asyncio.run(get(plugin_app(cls), method, prefix + path, **kwargs))
    assert resp.status_code == 200, resp.text
    assert resp.content.isascii() and b"\\udce9" in resp.content
    assert json.loads(resp.content) == expected  # the client gets the same str back
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-length"] == str(len(resp.content))


def test_plain_fastapi_fails_there_which_is_why_this_exists() -> None:
    for path in ("/dict", "/model", "/bare"):
        assert asyncio.run(get(plain_app(), "GET", path)).status_code == 500, path


@pytest.mark.parametrize(("cls", "prefix"), [(PluginShapes, ""), (PluginIncluded, "/sub")])
@pytest.mark.parametrize("path", ["/dict?name=plain", "/model?name=caf%C3%A9", "/bare?name=%E2%82%AC"])
def test_every_other_answer_is_byte_identical_to_fastapi(cls: type[Plugin], prefix: str, path: str) -> None:
    ours = asyncio.run(get(plugin_app(cls), "GET", prefix + path))
    theirs = asyncio.run(get(plain_app(), "GET", path))
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.headers.raw == theirs.headers.raw


def test_a_value_that_is_not_json_still_fails() -> None:
    """The fallback covers text only; a plugin returning an arbitrary object is a bug."""
    resp = asyncio.run(get(plugin_app(PluginShapes), "GET", "/broken"))
    assert resp.status_code == 500


def test_the_plugin_app_is_plain_fastapi_with_the_escaping_default() -> None:
    app = plugin_app(PluginShapes)
    assert type(app) is FastAPI
    routes = {r.path: r for r in app.router.routes if hasattr(r, "response_class")}
    assert set(routes) >= {"/dict", "/model", "/bare", "/ls", "/register_session"}
    assert all(r.response_class is SafeJSONResponse for r in routes.values())
    assert "Entry" in json.dumps(app.openapi())  # OpenAPI unchanged: models and media type
    assert app.openapi()["paths"]["/model"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Entry"}}
    }


def test_safe_response_renders_like_jsonresponse() -> None:
    for content in ({"a": "ü", "b": [1, 2.5, None, True]}, [], "x", {"€": {"n": -1}}):
        assert SafeJSONResponse(content).body == JSONResponse(content).body
    assert SafeJSONResponse({"k": NAME}).body == b'{"k":"caf\\udce9.txt"}'
    with pytest.raises(ValueError, match="Out of range float"):
        SafeJSONResponse({"x": float("nan")})  # as JSONResponse: NaN is not JSON
