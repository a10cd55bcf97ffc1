"""Integrity end-to-end fixtures: the API harness's server (SQLite), media through its node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.api.harness import clone_sqlite
from tests.integrity.harness import AnalysedNode, analysed_node


@pytest.fixture
def default_media_mode() -> str:
    """End to end, media goes through the server's media node, as in production."""
    return "relay"


@pytest.fixture
def default_integrity_enabled() -> bool:
    """These tests are about the analysis: on, as in production."""
    return True


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template: Path = request.getfixturevalue("sqlite_template")
    return clone_sqlite(template, tmp_path / "cb.db")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_node() -> AsyncIterator[AnalysedNode]:
    """One media node and analysis worker for a module's tests (each its own call):
    starting the worker process is most of a short test's cost. Modules using it
    run on one event loop: ``pytest.mark.asyncio(loop_scope="module")``."""
    async with analysed_node() as node:
        yield node
