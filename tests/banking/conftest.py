"""Ledger tests run on a seeded SQLite file and a seeded PostgreSQL clone alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.banking import SqlLedger
from server.db.engine import make_engine, make_sessionmaker


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def ledger() -> SqlLedger:
    return SqlLedger()
