"""Reading request bodies into pydantic models with clear 4xx answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.appkeys import SETTINGS
from server.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.validation import describe

M = TypeVar("M", bound=BaseModel)


async def read_raw(request: web.Request, limit: int) -> bytes:
    """The whole body as sent, refusing anything over ``limit`` bytes, or
    not all there within ``http_body_timeout_s`` (408: a slow-body bound)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    timeout_s = request.app[SETTINGS].http_body_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_all(request, limit)
    except TimeoutError as exc:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from exc


async def _read_all(request: web.Request, limit: int) -> bytes:
    raw = bytearray()
    # read(n) returns whatever has arrived, up to n: loop until the end of the body.
    while chunk := await request.content.read(limit + 1 - len(raw)):
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
    return bytes(raw)


def parse_body(raw: bytes, content_type: str, model: type[M], *, optional: bool = False) -> M:
    """Parse ``raw`` as ``model``, with the same 4xx answers for every body;
    an empty body is ``{}`` when ``optional``."""
    if not raw.strip():
        if optional:
            raw = b"{}"
        else:
            raise BadRequest("a JSON body is required", code="malformed_json")
    elif content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType("send the body as application/json")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError, but also the ValueError the int
        # parser raises for numbers longer than Python's 4300-digit limit.
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    except RecursionError as exc:
        # Arrays or objects nested about a thousand deep exhaust the parser's stack.
        raise BadRequest("body is nested too deeply", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    where = unstorable_text(data)
    if where is not None:
        raise ValidationFailed(f"{where}: text must not contain NUL or unpaired surrogates")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc)) from exc


async def read_json(request: web.Request, model: type[M], *, optional: bool = False) -> M:
    """Read and parse the body as ``model``; an empty body is ``{}`` when ``optional``."""
    raw = await read_raw(request, request.app[SETTINGS].max_body_bytes)
    return parse_body(raw, request.content_type, model, optional=optional)


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_text(data: Any) -> str | None:
    """Where in ``data`` a key or string holds text no database or response can carry.

    JSON may spell U+0000 and lone surrogates (``"\\ud800"``); PostgreSQL refuses the
    first in text columns and neither can be encoded as UTF-8 on the way out, so
    they are refused here, as bad input, before they reach a query or a response.
    Iterative, so deeply nested input cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("body", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _unstorable(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                if _unstorable(key):
                    return where
                stack.append((key if where == "body" else f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{index}", item) for index, item in enumerate(value))
    return None
