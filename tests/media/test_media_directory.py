"""The media node directory: least-loaded live node, dead nodes, one mover per dead node.
The same checks run in memory and against a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.media.directory import (
    LocalDirectory,
    MediaDirectory,
    NodeEntry,
    NoMediaNode,
    RedisDirectory,
)

TTL_S = 5.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def directory(request: pytest.FixtureRequest) -> AsyncIterator[MediaDirectory]:
    if request.param == "memory":
        yield LocalDirectory(TTL_S)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        await client.flushdb()
        yield RedisDirectory(client, TTL_S)
    finally:
        await client.aclose()


def entry(node_id: str, load: int, capacity: int = 10, age_s: float = 0.0) -> NodeEntry:
    return NodeEntry(node_id, "127.0.0.1", capacity, load, time.time() - age_s)


async def test_a_call_goes_to_the_least_loaded_live_node(directory: MediaDirectory) -> None:
    await directory.heartbeat(entry("a", load=5))
    await directory.heartbeat(entry("b", load=2))
    await directory.heartbeat(entry("c", load=9, capacity=10))
    assert await directory.assign("call-1") == "b"
    assert await directory.node_of("call-1") == "b"
    await directory.heartbeat(entry("b", load=10))  # full now
    assert await directory.assign("call-2") == "a"
    assert await directory.nodes_of(["call-2", "call-0", "call-1"]) == ["a", None, "b"]
    await directory.release("call-1")
    assert await directory.node_of("call-1") is None
    assert await directory.nodes_of([]) == []


async def test_no_node_with_room_is_an_error(directory: MediaDirectory) -> None:
    with pytest.raises(NoMediaNode):
        await directory.assign("call-1")
    await directory.heartbeat(entry("a", load=3, capacity=3))
    with pytest.raises(NoMediaNode):
        await directory.assign("call-1")


async def test_only_the_first_mover_reassigns_a_call_off_a_dead_node(
    directory: MediaDirectory,
) -> None:
    await directory.heartbeat(entry("a", load=0))
    await directory.heartbeat(entry("b", load=1))
    assert await directory.assign("call-1") == "a"
    await directory.deregister("a")  # as if its heartbeat had expired
    assert [n.node_id for n in await directory.live_nodes()] == ["b"]
    assert await directory.reassign("call-1", "a") is True
    assert await directory.node_of("call-1") == "b"
    # A second server noticing the same dead node moves nothing.
    assert await directory.reassign("call-1", "a") is False
    assert await directory.node_of("call-1") == "b"


async def test_memory_directory_forgets_nodes_past_their_ttl() -> None:
    directory = LocalDirectory(TTL_S)
    await directory.heartbeat(entry("old", load=0, age_s=TTL_S + 1))
    await directory.heartbeat(entry("new", load=5))
    assert [n.node_id for n in await directory.live_nodes()] == ["new"]


@pytest.mark.redis
async def test_redis_node_entries_expire_without_heartbeats(redis_client: Redis) -> None:
    directory = RedisDirectory(redis_client, 0.2)
    await directory.heartbeat(entry("a", load=0))
    assert [n.node_id for n in await directory.live_nodes()] == ["a"]
    deadline = time.monotonic() + 10
    while await directory.live_nodes() and time.monotonic() < deadline:
        await redis_client.ping()
    assert await directory.live_nodes() == []
