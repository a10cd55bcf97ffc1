"""Migrated, seeded databases: SQLite files and PostgreSQL clones of one template.

``database_url`` runs a test twice, on a fresh SQLite copy and on a fresh
PostgreSQL clone, both of the session's migrated and seeded templates;
``sessions`` is a sessionmaker on it. Folders
that want SQLite only (end to end, browser, recording) override it in their
conftest.py. :func:`postgres_clone` is the one place a PostgreSQL database is
cloned from a template and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

# ``_run_async`` and ``_admin`` are imported by tests that manage databases of
# their own (tests/faults, tests/recording, tests/deploy); keep their signatures
# stable.


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


def database_on(server_url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``server_url``."""
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


_clones = itertools.count()


def clone_name(prefix: str, hint: str) -> str:
    """A database name unique in this run: ``prefix``, a counter and ``hint``
    (a test's tmp_path name, say), within PostgreSQL's 63 characters."""
    tail = re.sub(r"[^a-z0-9]+", "_", hint.lower())[-20:]
    return f"{prefix}_{next(_clones)}_{tail}"[:63]


@contextmanager
def postgres_clone(server_url: str, template: str, name: str) -> Iterator[str]:
    """Clone database ``template`` as ``name``; yield its URL; drop it afterwards
    (connections still open are terminated)."""
    _run_async(_admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield database_on(server_url, name)
    finally:
        _run_async(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def postgres_template_on(server_url: str, name: str) -> Iterator[str]:
    """A migrated, seeded database ``name`` to clone from; dropped afterwards."""
    from tests.api.harness import prepare_template

    _run_async(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _run_async(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        _run_async(prepare_template(database_on(server_url, name)))
        yield name
    finally:
        _run_async(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --------------------------------------------------------------------------- templates


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded SQLite file that tests copy (never use it directly)."""
    from tests.api.harness import prepare_template

    path = tmp_path_factory.mktemp("template") / "template.db"
    _run_async(prepare_template(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """The name of a migrated, seeded PostgreSQL database that tests clone."""
    with postgres_template_on(postgres_url, "cb_template") as name:
        yield name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly seeded database: SQLite file, or a PostgreSQL clone of the template."""
    from tests.api.harness import clone_sqlite

    if request.param == "sqlite":
        yield clone_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "cb.db")
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    template: str = request.getfixturevalue("postgres_template")
    with postgres_clone(postgres_url, template, clone_name("cb_test", tmp_path.name)) as url:
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``database_url`` through the server's own engine settings."""
    from server.db.engine import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fresh_postgres_db(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test module; yields its SQLAlchemy URL.

    The database is dropped after the module (connections still open are
    terminated). Tests in one module share it, so each test should use its
    own tables or clean up what it writes.
    """
    module = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.lower()).strip("_")
    name = f"cb_{module[-40:]}_{uuid.uuid4().hex[:12]}"  # < 63 characters
    _run_async(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield database_on(postgres_url, name)
    finally:
        _run_async(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
