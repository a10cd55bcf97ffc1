"""Fixtures of the fault suite: private servers, seeded databases, node processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.harness import prepare_template
from tests.conftest import _admin, _run_async

from .support import FaultPostgres, FaultRedis

_counter = iter(range(1_000_000))


@pytest.fixture
def fault_redis() -> Iterator[FaultRedis]:
    redis = FaultRedis()
    try:
        redis.start()
        yield redis
    finally:
        redis.stop()
        redis.cleanup()


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[FaultPostgres]:
    """One private PostgreSQL for the suite, with a seeded template database."""
    postgres = FaultPostgres()
    try:
        postgres.start()
        _run_async(_admin(postgres.url, 'CREATE DATABASE "cb_fault_template"'))
        _run_async(prepare_template(_database_url(postgres, "cb_fault_template")))
        yield postgres
    finally:
        postgres.stop()
        postgres.cleanup()


@pytest.fixture
def fault_database(fault_postgres: FaultPostgres) -> Iterator[str]:
    """A fresh seeded database on the suite's private PostgreSQL."""
    name = f"cb_fault_{next(_counter)}"
    _run_async(_admin(fault_postgres.url, f'CREATE DATABASE "{name}" TEMPLATE "cb_fault_template"'))
    try:
        yield _database_url(fault_postgres, name)
    finally:
        _run_async(_admin(fault_postgres.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _database_url(postgres: FaultPostgres, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(postgres.url).set(database=name).render_as_string(hide_password=False)
