"""Which exceptions are failures of a backing service (Redis, the database) rather than bugs.

The HTTP middleware, the WebSocket hub and the background loops classify what
they catch here, at the boundary, so no call site needs to know every driver's
exceptions. It lives apart from :mod:`server.errors` so that the exception tree
(and the pure code that raises it) imports no database or Redis driver.
"""

from __future__ import annotations

from server.errors import DependencyUnavailable


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
