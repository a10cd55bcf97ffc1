"""Reading request bodies into pydantic models with clear 4xx answers."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.appkeys import SETTINGS
from server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """One readable line per problem: ``field: message``."""
    parts = []
    for error in exc.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


async def read_json(request: web.Request, model: type[M], *, optional: bool = False) -> M:
    """Parse the body as ``model``; an empty body is ``{}`` when ``optional``."""
    max_size = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > max_size:
        raise PayloadTooLarge(f"body is larger than {max_size} bytes")
    raw = await request.content.read(max_size + 1)
    if len(raw) > max_size:
        raise PayloadTooLarge(f"body is larger than {max_size} bytes")
    if not raw.strip():
        if optional:
            raw = b"{}"
        else:
            raise BadRequest("a JSON body is required", code="malformed_json")
    elif request.content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType("send the body as application/json")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc)) from exc
