"""``GET /api/v1/openapi.json`` and the WebSocket message schemas, from the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .registry import registry
from .respond import json_response
from .schemas import Problem

_REF = "#/components/schemas/{model}"


@cache
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for endpoint in registry.endpoints:
        models.update(m for m in (endpoint.body, endpoint.response) if m is not None)
    modes: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (m, "validation") for m in sorted(models, key=lambda m: m.__name__)
    ]
    _, defs = models_json_schema(modes, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in registry.endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "responses": {},
        }
        if endpoint.roles:
            operation["security"] = [{"bearer": []}]
            operation["x-roles"] = list(endpoint.roles)
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _ref(endpoint.body)}}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if endpoint.response is not None:
            ok["content"] = {"application/json": {"schema": {"$ref": _ref(endpoint.response)}}}
        operation["responses"][str(endpoint.status)] = ok
        for status in endpoint.errors:
            operation["responses"][str(status)] = {
                "description": "Problem",
                "content": {"application/problem+json": {"schema": {"$ref": _ref(Problem)}}},
            }
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in endpoint.path.split("/")
            if part.startswith("{")
        ]
        if params:
            operation["parameters"] = params
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cloud Branch API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _ref(model: type[BaseModel]) -> str:
    return _REF.format(model=model.__name__)


async def openapi(_request: web.Request) -> web.Response:
    return json_response(openapi_document())


async def ws_schema(_request: web.Request) -> web.Response:
    from server.hub.protocol import ws_schema as build

    return json_response(build())


def install_openapi(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/schemas/ws.json", ws_schema)
