"""Ledger tests run on a seeded SQLite file and a seeded PostgreSQL clone alike
(``database_url`` and ``sessions`` come from tests/plugin/databases.py)."""

from __future__ import annotations

import pytest

from server.banking import SqlLedger


@pytest.fixture
def ledger() -> SqlLedger:
    return SqlLedger()
