"""Fixtures of the fault suite: private servers, seeded databases, node processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.harness import prepare_template
from tests.plugin.databases import _admin, _run_async, clone_name, database_on, postgres_clone

from .support import FaultPostgres, FaultRedis


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
        _run_async(prepare_template(database_on(postgres.url, "cb_fault_template")))
        yield postgres
    finally:
        postgres.stop()
        postgres.cleanup()


@pytest.fixture
def fault_database(fault_postgres: FaultPostgres) -> Iterator[str]:
    """A fresh seeded database on the suite's private PostgreSQL."""
    name = clone_name("cb_fault", "")
    with postgres_clone(fault_postgres.url, "cb_fault_template", name) as url:
        yield url
