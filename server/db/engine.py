"""Engine and session factory, built once by ``create_app``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def make_engine(
    url: str,
    *,
    statement_timeout_s: float | None = None,
    lock_timeout_s: float | None = None,
    pool_timeout_s: float = 10.0,
) -> AsyncEngine:
    """An async engine with the settings each database needs.

    On PostgreSQL, a statement running past ``statement_timeout_s`` or waiting
    for a lock past ``lock_timeout_s`` is cancelled by the server, and a request
    that cannot get a pooled connection within ``pool_timeout_s`` fails: each
    of these is answered 503 (see ``server.errors.dependency_failure``), never a
    hang. asyncpg's ``timeout`` bounds connecting to a server that is down.
    """
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        # One writer at a time is SQLite's rule; wait for the lock rather than fail.
        kwargs["connect_args"] = {"timeout": 15}
    else:
        server_settings: dict[str, str] = {}
        if statement_timeout_s is not None:
            server_settings["statement_timeout"] = str(int(statement_timeout_s * 1000))
        if lock_timeout_s is not None:
            server_settings["lock_timeout"] = str(int(lock_timeout_s * 1000))
        kwargs.update(
            pool_size=10,
            max_overflow=10,
            pool_timeout=pool_timeout_s,
            connect_args={"server_settings": server_settings, "timeout": 5},
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)
