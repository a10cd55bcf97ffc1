"""NodeHost with a media engine that can fail (the Janus backend): a node whose
engine is down stops heartbeating, and calls it lost are parked so that servers
move them as off a dead node. The engine is a fake; the directory is the real
in-process one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from server.media.directory import LocalDirectory, lost_node
from server.media.nodes import MediaRelay, NodeHost
from signaling.media.node import NodeStats
from signaling.relay import CallParties


class FakeEngine:
    def __init__(self, node_id: str, *args: Any) -> None:
        self.node_id = node_id
        self.capacity = 10
        self.load = 0
        self.healthy = True
        self.on_calls_lost: Callable[[list[str]], None] | None = None

    async def start(self) -> None:
        return None

    async def signal(self, call_id: str, party: str, message: Any) -> None:
        return None

    async def restart(self, call_id: str) -> None:
        return None

    async def party_left(self, call_id: str, party: str) -> None:
        return None

    async def close_call(self, call_id: str) -> None:
        return None

    def stats(self) -> NodeStats:
        return NodeStats(0, 0, 0, 0, 0)

    async def close(self) -> None:
        return None


async def _deliver(role: str, subject: str, message: dict[str, Any]) -> None:
    return None


async def test_an_unhealthy_engine_stops_the_heartbeat_and_lost_calls_are_moved() -> None:
    clock = [time.time()]  # NodeHost stamps heartbeats with the wall clock
    directory = LocalDirectory(ttl_s=6, clock=lambda: clock[0])
    host = NodeHost(
        "n1",
        directory=directory,
        deliver=_deliver,
        ice_servers=lambda call_id: [],
        capacity=10,
        heartbeat_s=60,
        node_factory=FakeEngine,  # type: ignore[arg-type]
    )
    await host.start()
    engine = host.node
    assert isinstance(engine, FakeEngine) and engine.on_calls_lost is not None
    relay = MediaRelay(directory, host)
    assert await relay.assign("call-1") == "n1"
    assert await relay.lost(["call-1"]) == []

    engine.on_calls_lost(["call-1"])
    for _ in range(100):
        if await directory.node_of("call-1") == lost_node("n1"):
            break
        await asyncio.sleep(0.01)
    assert await relay.lost(["call-1"]) == ["call-1"]
    # The node itself is healthy again (a new Janus): the call moves back onto it.
    assert await relay.reassign("call-1")
    assert await directory.node_of("call-1") == "n1"

    engine.healthy = False
    clock[0] += 10  # past the TTL with no fresh heartbeat
    await host._beat()
    assert await directory.live_nodes() == []
    engine.healthy = True
    clock[0] = time.time()
    await host._beat()
    assert [n.node_id for n in await directory.live_nodes()] == ["n1"]
    await host.handle("close", CallParties("call-1", "C1", "S1"), None, None)
    await host.close()
