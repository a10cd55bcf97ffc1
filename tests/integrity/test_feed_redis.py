"""A media-node process's findings through Redis to a server's copy of the state.

Integration tier: a real Redis; the node side (:class:`NodeIntegrity`) writes
the call's stream as in a ``cloudbranch media-node`` process, the server side
(:class:`RemoteIntegrity`) reads it. No analysis worker, database or sockets:
the findings are fed in as the worker's would be, and the desk notices are
checked where they are queued.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from server.hub.hub import Hub
from server.integrity import feed
from server.integrity.node import NodeIntegrity
from server.integrity.remote import RemoteIntegrity
from server.settings import Settings
from signaling.integrity.state import Sample

pytestmark = [pytest.mark.redis]

FACE = ((0.3, 0.2, 0.3, 0.4),)


async def _node(redis: Redis) -> NodeIntegrity:
    sessions: Any = None  # no status change is recorded here: only the stream is written
    node = NodeIntegrity(Settings(dev_mode=True), redis, sessions)
    await node.start()
    return node


async def _flushed(node: NodeIntegrity) -> None:
    async with asyncio.timeout(10):
        await node._queue.join()


def _remote(redis: Redis) -> RemoteIntegrity:
    sessions: Any = None
    return RemoteIntegrity(redis, sessions, Hub(), block_ms=50)


async def _read_all(remote: RemoteIntegrity) -> None:
    while await remote.read_once():
        pass


async def test_a_server_holds_the_nodes_state_samples_included(redis_client: Redis) -> None:
    node = await _node(redis_client)
    try:
        now = time.time()
        for n in range(5):
            node.analysed("c1", now + n, (), Sample(now + n, FACE, (120.0, 100.0, 90.0)))
        frozen = (("video_frozen", now + 5, 0.8, "the picture has not changed"),)
        node.analysed("c1", now + 6, frozen, Sample(now + 6, FACE, (120.0, 100.0, 90.0)))
        await _flushed(node)
        remote = _remote(redis_client)
        await _read_all(remote)
        state = remote.state("c1")
        assert state is not None and state.status == "suspect"
        assert state.active_codes() == ("video_frozen",)
        assert [e.since for e in state.active] == [now + 5]
        assert len(state.samples) == 6 and state.samples[-1].faces == FACE
        assert state.samples[-1].colour == (120.0, 100.0, 90.0)
        # Read for the first time here: the past is applied quietly, the desk is told
        # only where the call stands now.
        assert remote._notices.qsize() == 1
        assert remote._notices.get_nowait().message["status"] == "suspect"

        # The server's own liveness result stays as it is when more entries come.
        state.liveness_result(False, now + 7)
        node.analysed("c1", now + 8, (), Sample(now + 8, FACE, None))
        await _flushed(node)
        await _read_all(remote)
        assert state.liveness == "failed" and state.status == "suspect"
        assert state.active_codes() == ()
        assert state.episodes[0].until == now + 8
        assert remote._notices.qsize() == 1  # the frozen spell ended: one change, one notice

        node.stopped("c1", now + 9)
        await _flushed(node)
        await _read_all(remote)
        assert state.status == "unknown" and not state.analysing
    finally:
        await node.stop()


async def test_a_server_that_stopped_reading_catches_up(redis_client: Redis) -> None:
    node = await _node(redis_client)
    remote = _remote(redis_client)
    try:
        now = time.time()
        node.analysed("c2", now, (), Sample(now, FACE, None))
        await _flushed(node)
        await _read_all(remote)
        assert remote.state("c2").status == "ok"  # type: ignore[union-attr]
        while not remote._notices.empty():
            remote._notices.get_nowait()
        # Entries written while the server does not read (no pub/sub: nothing is lost).
        node.analysed("c2", now + 1, (("face_absent", now + 1, 0.7, "no face"),), None)
        node.analysed("c2", now + 2, (), Sample(now + 2, FACE, None))
        await _flushed(node)
        assert remote.state("c2").status == "ok"  # type: ignore[union-attr]
        await _read_all(remote)
        seen = [remote._notices.get_nowait().message["status"] for _ in range(2)]
        assert seen == ["suspect", "ok"] and remote._notices.empty()
        # The stream is capped, expires, and the call is listed as recently active.
        assert await redis_client.ttl(feed.stream_key("c2")) > 0
        assert await redis_client.zscore(feed.CALLS_KEY, "c2") == pytest.approx(now + 2)

        # An ended call is forgotten and no longer read.
        remote.forget("c2")
        node.analysed("c2", now + 3, (), None)
        await _flushed(node)
        await _read_all(remote)
        assert remote.state("c2") is None
    finally:
        await node.stop()
