"""Fixtures for real backing services (Redis and PostgreSQL).

``make test`` runs pytest under ``tests/services.py``, which starts throwaway
servers and passes their addresses in two environment variables:

    CLOUDBRANCH_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
    CLOUDBRANCH_TEST_POSTGRES_URL  postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres

A test that needs a service and does not get one FAILS; it is never skipped,
so a green run always means the real service was exercised. The same applies
to any test marked ``redis`` or ``postgres``, whether or not it uses these
fixtures.

Databases are in :mod:`tests.plugin.databases`, servers in :mod:`tests.plugin.servers`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_ENV = "CLOUDBRANCH_TEST_REDIS_URL"
POSTGRES_ENV = "CLOUDBRANCH_TEST_POSTGRES_URL"


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
