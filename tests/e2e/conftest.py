"""End-to-end fixtures: the API harness's server, on SQLite (media does not depend
on the database; the multi-node test brings PostgreSQL itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import clone_sqlite


@pytest.fixture
def default_media_mode() -> str:
    """End to end, media goes through the server's media node, as in production."""
    return "relay"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template: Path = request.getfixturevalue("sqlite_template")
    return clone_sqlite(template, tmp_path / "cb.db")
