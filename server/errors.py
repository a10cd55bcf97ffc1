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
        └── DependencyUnavailable (503, Retry-After) service_unavailable
            └── NodeDraining (503, Retry-After: 1)

Routing errors (:mod:`server.routing.errors`) are Conflicts and NotFounds of
this tree. Failures of Redis or PostgreSQL (down, timed out, pool exhausted)
are not raised as this tree by the code that meets them; the HTTP middleware
and the WebSocket hub classify them with :func:`dependency_failure` at the
boundary instead, so no call site needs to know every driver's exceptions.
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


# -- infrastructure failures ---------------------------------------------------------


class DependencyUnavailable(ServiceUnavailable):
    """Redis or the database failed (down, timed out, pool exhausted): try again."""

    code = "service_unavailable"
    retry_after_s: ClassVar[int] = 5


class NodeDraining(DependencyUnavailable):
    """This node is shutting down: the client tries again (and reaches another node)."""

    retry_after_s: ClassVar[int] = 1


def dependency_failure(exc: BaseException) -> DependencyUnavailable | None:
    """A :class:`DependencyUnavailable` if ``exc`` (or what caused it) is a failure of
    Redis or the database rather than a bug; None otherwise."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        what = _dependency_named(current)
        if what is not None:
            return DependencyUnavailable(f"{what} is unavailable; please try again shortly")
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _dependency_named(exc: BaseException) -> str | None:
    # Imported here: the error tree stays importable without the drivers.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "the live routing store"
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return "the database"
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or _is_transient_database_error(exc.orig)
    ):
        return "the database"
    if _is_transient_database_error(exc):
        return "the database"
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return "a backing service"
    return None


def _is_transient_database_error(exc: BaseException | None) -> bool:
    """asyncpg's connection losses, cancelled (timed-out) statements, lock
    timeouts, deadlocks and serialization failures: retrying is the answer."""
    if exc is None:
        return False
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    transient = (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.QueryCanceledError,
        asyncpg.LockNotAvailableError,
        asyncpg.DeadlockDetectedError,
        asyncpg.SerializationError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
    )
    return isinstance(exc, transient)
