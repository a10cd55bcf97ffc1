"""The test servers are real and reachable: one round trip to each."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from redis.asyncio import Redis

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def test_redis_set_get_round_trip(redis_client: Redis) -> None:
    key = f"smoke:{uuid.uuid4().hex}"
    assert await redis_client.ping() is True
    assert await redis_client.set(key, "ping", ex=60) is True
    assert await redis_client.get(key) == b"ping"
    info = await redis_client.info("server")
    assert info["redis_version"]


async def test_redis_client_starts_on_an_empty_database(redis_client: Redis) -> None:
    assert await redis_client.dbsize() == 0


async def test_postgres_round_trip_is_real_postgresql(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "asyncpg"
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version()"))).scalar_one()
            version_num = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
            answer = (await conn.execute(text("SELECT 6 * 7"))).scalar_one()
    finally:
        await engine.dispose()
    assert version.startswith("PostgreSQL "), version
    assert int(version_num) >= 130000, version  # WITH (FORCE) and friends need 13+
    assert answer == 42


async def test_fresh_postgres_db_is_a_separate_writable_database(fresh_postgres_db: str) -> None:
    engine = create_async_engine(fresh_postgres_db)
    try:
        async with engine.begin() as conn:
            current = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            await conn.execute(text("CREATE TABLE smoke (id int PRIMARY KEY, note text)"))
            await conn.execute(text("INSERT INTO smoke VALUES (1, 'hello')"))
            note = (await conn.execute(text("SELECT note FROM smoke WHERE id = 1"))).scalar_one()
    finally:
        await engine.dispose()
    assert current.startswith("cb_")
    assert current != "postgres"
    assert note == "hello"
