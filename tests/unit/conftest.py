"""The unit tier's database: a copy of the migrated, seeded SQLite template per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import clone_sqlite


@pytest.fixture
def unit_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template: Path = request.getfixturevalue("sqlite_template")
    return clone_sqlite(template, tmp_path / "unit.db")
