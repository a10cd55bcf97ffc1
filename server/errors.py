"""The one exception tree of the service.

Everything the service refuses on purpose raises a :class:`CloudBranchError`
subclass carrying an HTTP status and a stable machine-readable ``code``. One
middleware (:mod:`server.http.problems`) turns these into RFC 9457 problem
responses, and the WebSocket hub turns them into ``error`` messages, so handlers
never build error responses by hand.

    CloudBranchError
    ├── BadRequest (400)        malformed_json, bad_request
    ├── ValidationFailed (422)  validation_error
    ├── Unauthorized (401)      unauthorized, invalid_token, invalid_credentials
    ├── Forbidden (403)         forbidden
    ├── NotFound (404)          not_found, call_not_found, ...
    ├── Conflict (409)          offer_expired, illegal_state, ...
    ├── RequestTimeout (408)    request_timeout
    ├── PayloadTooLarge (413)   payload_too_large
    ├── UnsupportedMediaType (415)
    └── ServiceUnavailable (503) not_ready
"""

from __future__ import annotations

from typing import Any, ClassVar


class CloudBranchError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra or {}


class BadRequest(CloudBranchError):
    status, code, title = 400, "bad_request", "Bad request"


class ValidationFailed(CloudBranchError):
    status, code, title = 422, "validation_error", "Invalid input"


class Unauthorized(CloudBranchError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(CloudBranchError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(CloudBranchError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(CloudBranchError):
    status, code, title = 409, "conflict", "Conflict"


class RequestTimeout(CloudBranchError):
    """The client did not finish sending its body in time (a slow-body bound)."""

    status, code, title = 408, "request_timeout", "Request timeout"


class PayloadTooLarge(CloudBranchError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(CloudBranchError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class ServiceUnavailable(CloudBranchError):
    status, code, title = 503, "not_ready", "Service unavailable"


class IllegalTransition(Conflict):
    """A state machine was asked for a move its current state does not allow."""

    code = "illegal_state"

    def __init__(self, machine: str, state: str, action: str) -> None:
        super().__init__(f"{machine} is {state}; cannot {action}")
        self.state = state
