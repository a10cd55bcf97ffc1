"""Shared fixtures for real backing services (Redis and PostgreSQL).

``make test`` runs pytest under ``tests/services.py``, which starts throwaway
servers and passes their addresses in two environment variables:

    CLOUDBRANCH_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
    CLOUDBRANCH_TEST_POSTGRES_URL  postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres

A test that needs a service and does not get one FAILS; it is never skipped,
so a green run always means the real service was exercised. The same applies
to any test marked ``redis`` or ``postgres``, whether or not it uses these
fixtures.

Application fixtures (settings, app, clients) belong in the conftest.py of the
test folder that needs them, not here.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_ENV = "CLOUDBRANCH_TEST_REDIS_URL"
POSTGRES_ENV = "CLOUDBRANCH_TEST_POSTGRES_URL"

T = TypeVar("T")


def _missing_message(names: list[str]) -> str:
    return (
        f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} not set, but this test "
        "needs a real server. Run `make test` (it starts throwaway Redis and PostgreSQL "
        "servers), or wrap pytest yourself: "
        "`python tests/services.py -- .venv/bin/python -m pytest ...`, "
        "or set the variable to a server you own."
    )


def _require_env(name: str) -> str:
    url = os.environ.get(name, "").strip()
    if not url:
        pytest.fail(_missing_message([name]), pytrace=False)
    return url


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``redis`` / ``postgres`` fail early without their server."""
    needed = [
        name
        for marker, name in (("redis", REDIS_ENV), ("postgres", POSTGRES_ENV))
        if item.get_closest_marker(marker) is not None and not os.environ.get(name, "").strip()
    ]
    if needed:
        pytest.fail(_missing_message(needed), pytrace=False)


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server (database 0)."""
    return _require_env(REDIS_ENV)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A ``redis.asyncio`` client on an empty database, closed after the test.

    Function scoped, so it lives on the test's own event loop. The database is
    flushed before each test: tests using it must not run in parallel against
    the same server.
    """
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
        yield client
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL (asyncpg driver) of the test PostgreSQL server's ``postgres`` database."""
    return _require_env(POSTGRES_ENV)


# ``_run_async`` and ``_admin`` are also imported by the conftests of test
# folders that manage databases of their own; keep their signatures stable.


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private loop in a worker thread.

    Module-scoped fixtures cannot share the tests' function-scoped event loops,
    so the database administration below runs on its own loop instead.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(server_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fresh_postgres_db(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test module; yields its SQLAlchemy URL.

    The database is dropped after the module (connections still open are
    terminated). Tests in one module share it, so each test should use its
    own tables or clean up what it writes.
    """
    from sqlalchemy.engine import make_url

    module = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.lower()).strip("_")
    name = f"cb_{module[-40:]}_{uuid.uuid4().hex[:12]}"  # < 63 characters
    _run_async(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _run_async(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
