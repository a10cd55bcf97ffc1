"""The one exception tree of the service.

Everything the service refuses on purpose raises a :class:`CloudBranchError`
subclass carrying a stable machine-readable ``code``. The tree says what went
wrong, not how a transport answers it: the HTTP status of each class is mapped
in one place (:data:`server.http.problems.STATUS_OF`, shown in brackets below),
where one middleware turns these into RFC 9457 problem responses; the WebSocket
hub turns them into ``error`` messages. Handlers never build error responses by
hand.

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
        └── DependencyUnavailable (503, Retry-After) service_unavailable
            └── NodeDraining (503, Retry-After: 1)

Routing errors (:mod:`server.routing.errors`) are Conflicts and NotFounds of
this tree. Failures of Redis or PostgreSQL (down, timed out, pool exhausted)
are not raised as this tree by the code that meets them; the HTTP middleware
and the WebSocket hub classify them with
:func:`server.failures.dependency_failure` at the boundary instead, so no
call site needs to know every driver's exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CloudBranchError(Exception):
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
    code, title = "bad_request", "Bad request"


class ValidationFailed(CloudBranchError):
    code, title = "validation_error", "Invalid input"


class Unauthorized(CloudBranchError):
    code, title = "unauthorized", "Unauthorized"


class Forbidden(CloudBranchError):
    code, title = "forbidden", "Forbidden"


class NotFound(CloudBranchError):
    code, title = "not_found", "Not found"


class Conflict(CloudBranchError):
    code, title = "conflict", "Conflict"


class RequestTimeout(CloudBranchError):
    """The client did not finish sending its body in time (a slow-body bound)."""

    code, title = "request_timeout", "Request timeout"


class PayloadTooLarge(CloudBranchError):
    code, title = "payload_too_large", "Payload too large"


class UnsupportedMediaType(CloudBranchError):
    code, title = "unsupported_media_type", "Unsupported media type"


class ServiceUnavailable(CloudBranchError):
    code, title = "not_ready", "Service unavailable"


class IllegalTransition(Conflict):
    """A state machine was asked for a move its current state does not allow."""

    code = "illegal_state"

    def __init__(self, machine: str, state: str, action: str) -> None:
        super().__init__(f"{machine} is {state}; cannot {action}")
        self.state = state


# -- infrastructure failures (classified in server/failures.py) ------------------


class DependencyUnavailable(ServiceUnavailable):
    """Redis or the database failed (down, timed out, pool exhausted): try again."""

    code = "service_unavailable"
    retry_after_s: ClassVar[int] = 5


class NodeDraining(DependencyUnavailable):
    """This node is shutting down: the client tries again (and reaches another node)."""

    retry_after_s: ClassVar[int] = 1
