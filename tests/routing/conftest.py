"""Fixtures of the routing contract suite: every test runs against both backends.

The ``redis`` variant uses the shared ``redis_client`` fixture (a real Redis,
flushed before each test) and is marked ``redis``, so it fails rather than skips
when no server is configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from server.routing.backend import QueueBackend
from server.routing.memory import MemoryQueueBackend
from server.routing.redis_backend import RedisQueueBackend
from tests.routing.support import POLICY

if TYPE_CHECKING:
    from redis.asyncio import Redis


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_client(request: pytest.FixtureRequest) -> Redis | None:
    """None for the in-process backend, the test's Redis client for the other."""
    if request.param == "memory":
        return None
    client: Redis = request.getfixturevalue("redis_client")
    return client


@pytest.fixture
async def backend(backend_client: Redis | None) -> AsyncIterator[QueueBackend]:
    queue: QueueBackend
    if backend_client is None:
        queue = MemoryQueueBackend(POLICY)
    else:
        queue = RedisQueueBackend(backend_client, POLICY, prefix="cbtest:")
    try:
        yield queue
    finally:
        await queue.close()
