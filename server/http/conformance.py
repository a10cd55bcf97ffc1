"""Checking each answer of a registered route against what the route declares.

Switched on by ``check_responses`` (the test servers do; production does not, it
costs a validation per answer). The check sits outside every other middleware, so
it sees exactly what the client gets, problems included:

- a success must have one of the route's success statuses, and a JSON success
  must validate, strictly, against its ``response`` model (an array of it for
  ``many``), with no field the model does not declare;
- a route that declares no response model answers no JSON success;
- a problem must have a status the route documents and the shape of ``Problem``,
  its ``status`` member equal to the HTTP status (members beyond it are allowed:
  problem details are extensible).

A mismatch is logged and answered as ``500 response_mismatch``, whose detail names
the route and the field, so the test that caused it fails loudly and says why.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, RootModel, TypeAdapter, ValidationError

from server.validation import describe

from .endpoints import Endpoint, endpoint_of, statuses_of
from .problems import problem
from .schemas import Problem

log = structlog.get_logger(__name__)

_JSON = "application/json"
_PROBLEM = "application/problem+json"


def install_response_check(app: web.Application) -> None:
    """Check every answer of ``app``'s registered routes (outermost middleware)."""
    app.middlewares.insert(0, response_check_middleware)


@web.middleware
async def response_check_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    endpoint = endpoint_of(request)
    if endpoint is None or not isinstance(response, web.Response):
        return response
    mismatch = response_mismatch(endpoint, response)
    if mismatch is None:
        return response
    detail = f"{endpoint.name} answered {response.status}: {mismatch}"
    log.error("response.mismatch", route=endpoint.name, status=response.status, detail=mismatch)
    return problem(500, "response_mismatch", "Answer does not match its declaration", detail)


def response_mismatch(endpoint: Endpoint, response: web.Response) -> str | None:
    """What in ``response`` disagrees with ``endpoint``'s declarations, or None."""
    status = response.status
    content_type = response.content_type
    if content_type == _PROBLEM:
        if status == 500:
            return None  # a crash is already the failure to report; keep its answer
        if status not in statuses_of(endpoint):
            return f"problem status {status} is not among the documented {_listed(endpoint)}"
        data, error = _parse(response)
        if error is not None:
            return error
        # Problem details are extensible (RFC 9457): members beyond the model are allowed.
        found = _validate(Problem, False, response, data, closed=False)
        if found is None and isinstance(data, dict) and data.get("status") != status:
            found = f"problem member status {data.get('status')!r} is not the HTTP status"
        return found
    if status not in (endpoint.status, *endpoint.also):
        return f"status {status} is not the declared {(endpoint.status, *endpoint.also)}"
    if content_type != _JSON:
        return None  # PDFs, metrics text, empty 204s: not JSON, nothing to validate
    if endpoint.response is None:
        return "JSON answer, but the route declares no response model"
    data, error = _parse(response)
    if error is not None:
        return error
    return _validate(endpoint.response, endpoint.many, response, data)


def _listed(endpoint: Endpoint) -> str:
    return ", ".join(str(s) for s in sorted(statuses_of(endpoint)))


def _parse(response: web.Response) -> tuple[Any, str | None]:
    body = response.body
    if not isinstance(body, bytes):
        return None, f"body is a {type(body).__name__}, not JSON bytes"
    try:
        return json.loads(body), None
    except ValueError as exc:
        return None, f"body is not JSON: {exc}"


@functools.cache
def _adapter(model: type[BaseModel], many: bool) -> TypeAdapter[Any]:
    return TypeAdapter(list[model] if many else model)  # type: ignore[valid-type]


def _validate(
    model: type[BaseModel], many: bool, response: web.Response, data: Any, *, closed: bool = True
) -> str | None:
    try:
        # Strict, from the JSON as sent: "1" is not an int and 1 is not a bool, as a
        # client's typed decoder would see them.
        value = _adapter(model, many).validate_json(response.body, strict=True)  # type: ignore[arg-type]
    except ValidationError as exc:
        return describe(exc)
    if not closed:
        return None
    where = _undeclared(value, data, "")
    return None if where is None else f"{where}: not declared by {model.__name__}"


def _undeclared(value: Any, data: Any, where: str) -> str | None:
    """The first member of ``data`` that the validated ``value``'s model does not declare."""
    if isinstance(value, RootModel):
        return _undeclared(value.root, data, where)
    if isinstance(value, BaseModel):
        if not isinstance(data, dict):
            return None
        fields = {info.alias or name: name for name, info in type(value).model_fields.items()}
        extra = sorted(key for key in data if key not in fields)
        if extra and type(value).model_config.get("extra") != "allow":
            return ", ".join(_at(where, key) for key in extra)
        for key, name in fields.items():
            if key in data:
                found = _undeclared(getattr(value, name), data[key], _at(where, key))
                if found is not None:
                    return found
        return None
    if isinstance(value, list | tuple) and isinstance(data, list):
        for index, (item, raw) in enumerate(zip(value, data, strict=False)):
            found = _undeclared(item, raw, _at(where, str(index)))
            if found is not None:
                return found
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, item in value.items():
            if key in data:
                found = _undeclared(item, data[key], _at(where, str(key)))
                if found is not None:
                    return found
    return None


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
