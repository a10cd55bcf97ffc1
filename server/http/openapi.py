"""``GET /api/v1/openapi.json`` and the WebSocket message schemas, from the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .registry import registry, statuses_of
from .respond import json_response
from .schemas import Problem

_REF = "#/components/schemas/{model}"

# What each problem status means here; the ``code`` in the body says which case.
_PROBLEMS = {
    400: "Malformed request: body is not JSON (malformed_json), bad headers",
    401: "No usable credentials: missing, invalid or expired token; staff account "
    "disabled or session revoked (account_disabled, session_revoked)",
    403: "The token's role may not do this (wrong_role)",
    404: "No such resource, or not one this caller can see",
    408: "The body did not arrive in time (request_timeout)",
    409: "The resource is not in a state that allows this",
    413: "Body too large (payload_too_large)",
    415: "Body is not application/json (unsupported_media_type)",
    422: "The body does not match the schema; detail names the field (validation_error)",
    429: "Too many failed attempts; wait Retry-After seconds (too_many_attempts)",
    503: "A dependency is unavailable; retry after Retry-After (service_unavailable)",
}


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
                "required": not endpoint.body_optional,
                "content": {"application/json": {"schema": {"$ref": _ref(endpoint.body)}}},
            }
        success: dict[str, Any] = {"description": "OK" if endpoint.status != 204 else "Done"}
        if endpoint.response is not None:
            schema: dict[str, Any] = {"$ref": _ref(endpoint.response)}
            if endpoint.many:
                schema = {"type": "array", "items": schema}
            success["content"] = {"application/json": {"schema": schema}}
        for status in (endpoint.status, *endpoint.also):
            operation["responses"][str(status)] = success
        for status in sorted(statuses_of(endpoint)):
            operation["responses"][str(status)] = {
                "description": _PROBLEMS.get(status, "Problem"),
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
