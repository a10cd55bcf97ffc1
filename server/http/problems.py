"""The one place errors become RFC 9457 problem responses."""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from server.errors import CloudBranchError, DependencyUnavailable, dependency_failure

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
        if exc.status >= 500:
            log.error("request.failed", code=exc.code, detail=exc.detail, path=request.path)
        return _with_retry_after(
            problem(exc.status, exc.code, exc.title, exc.detail, exc.extra), exc
        )
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
