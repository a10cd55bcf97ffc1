"""Integrity end-to-end fixtures: the API harness's server (SQLite), media through its node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import clone_sqlite


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
