"""Fixtures for API tests: a seeded database per test, a running server, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.harness import Api, RunningServer, clone_sqlite, prepare_template, running_server
from tests.conftest import _admin, _run_async


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run_async(prepare_template(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    from sqlalchemy.engine import make_url

    name = "cb_template"
    _run_async(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _run_async(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    _run_async(prepare_template(url))
    try:
        yield name
    finally:
        _run_async(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly seeded database: SQLite file, or a PostgreSQL clone of the template."""
    if request.param == "sqlite":
        yield clone_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "cb.db")
        return
    from sqlalchemy.engine import make_url

    postgres_url: str = request.getfixturevalue("postgres_url")
    template: str = request.getfixturevalue("postgres_template")
    name = f"cb_test_{next(_counter)}_{tmp_path.name[-20:].lower()}".replace("-", "_")
    _run_async(_admin(postgres_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _run_async(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """Override in a test module to change settings of the server under test."""
    return {}


@pytest.fixture
def default_media_mode() -> str:
    """The API tests report both parties' media state without real peers, so media
    goes peer to peer (``direct``): nothing reaches a media node and nothing is
    recorded. The relay, recording and their fail-closed rule are exercised with
    real aiortc peers in tests/e2e, tests/recording and the browser tests, which
    override this with ``relay``."""
    return "direct"


@pytest.fixture
async def server(
    database_url: str, server_settings: dict[str, Any], default_media_mode: str
) -> AsyncIterator[RunningServer]:
    settings = {"media_mode": default_media_mode, **server_settings}
    async with running_server(database_url=database_url, **settings) as handle:
        yield handle


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Api(server.base_url, session)
