"""The one place errors become RFC 9457 problem responses."""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from server.auth.throttle import TooManyAttempts
from server.errors import (
    BadRequest,
    CloudBranchError,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.failures import dependency_failure
from server.routing.errors import SpecialistNotFound

log = structlog.get_logger(__name__)

PROBLEM_TYPE = "https://cloudbranch.example/problems/"

# aiohttp raises these for routing and protocol problems; give them stable codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


# -- the HTTP status of each error class ------------------------------------------
# The exception tree carries no HTTP status; this is the one map. A class answers
# with the status of its nearest ancestor listed here (a subclass listed itself
# wins over its parents); a class with none answers 500.
STATUS_OF: dict[type[CloudBranchError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    TooManyAttempts: 429,
    ServiceUnavailable: 503,
    # A routing error (a Conflict) that names a specialist who does not exist.
    SpecialistNotFound: 404,
}


def status_of(error: CloudBranchError | type[CloudBranchError]) -> int:
    """The HTTP status that answers ``error`` (an instance or a class)."""
    cls = error if isinstance(error, type) else type(error)
    for klass in cls.__mro__:
        status = STATUS_OF.get(klass)
        if status is not None:
            return status
    return 500


def problem(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
        charset="utf-8",
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CloudBranchError as exc:
        status = status_of(exc)
        if status >= 500:
            log.error("request.failed", code=exc.code, detail=exc.detail, path=request.path)
        return _with_retry_after(problem(status, exc.code, exc.title, exc.detail, exc.extra), exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = problem(exc.status, code, exc.reason, exc.text or exc.reason)
        # A 405 must say which methods the resource does allow (RFC 9110, 15.5.6).
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        unavailable = dependency_failure(exc)
        if unavailable is not None:
            log.warning(
                "request.dependency_unavailable",
                path=request.path,
                method=request.method,
                error=type(exc).__name__,
            )
            return _with_retry_after(
                problem(503, unavailable.code, unavailable.title, unavailable.detail), unavailable
            )
        log.exception("request.crashed", path=request.path, method=request.method)
        return problem(500, "internal_error", "Internal error", "something went wrong on our side")


def _with_retry_after(response: web.Response, exc: CloudBranchError) -> web.Response:
    """A failing dependency tells the client when to try again (RFC 9110, 10.2.3)."""
    if isinstance(exc, DependencyUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response
