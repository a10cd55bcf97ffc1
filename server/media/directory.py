"""Where media nodes are, how loaded, and which node relays which call.

Media nodes register with their address, capacity and load, and refresh that
entry with a heartbeat; an entry whose heartbeat stopped for ``ttl_s`` is dead.
A call is assigned the least-loaded live node when it is accepted, and the
assignment is looked up for every signaling message of the call.

Two implementations of one Protocol: in-process (one server, its embedded node)
and Redis (several servers and ``cloudbranch media-node`` processes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

__all__ = [
    "LocalDirectory",
    "MediaDirectory",
    "NoMediaNode",
    "NodeEntry",
    "RedisDirectory",
]

CALL_ASSIGNMENT_TTL_S = 24 * 3600

_REASSIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NoMediaNode(Exception):
    """No live media node has room for another call."""


@dataclass(frozen=True, slots=True)
class NodeEntry:
    node_id: str
    address: str
    capacity: int
    load: int
    seen_at: float

    def alive(self, now: float, ttl_s: float) -> bool:
        return now - self.seen_at < ttl_s

    @property
    def spare(self) -> int:
        return self.capacity - self.load


class MediaDirectory(Protocol):
    async def heartbeat(self, entry: NodeEntry) -> None: ...

    async def deregister(self, node_id: str) -> None: ...

    async def live_nodes(self) -> list[NodeEntry]: ...

    async def assign(self, call_id: str, avoid: str | None = None) -> str:
        """Give the call the least-loaded live node (not ``avoid``); its id."""
        ...

    async def node_of(self, call_id: str) -> str | None: ...

    async def nodes_of(self, call_ids: Sequence[str]) -> list[str | None]:
        """:meth:`node_of` for each call, in one lookup (every server's sweep asks
        this of every call in conversation)."""
        ...

    async def release(self, call_id: str) -> None: ...

    async def reassign(self, call_id: str, dead: str) -> bool:
        """Move the call from ``dead`` to another live node, unless someone already did."""
        ...

    async def mark_lost(self, call_id: str, node_id: str) -> None:
        """The node lost the call's media (its Janus died): point the call at
        :func:`lost_node` so that servers move it as off a dead node."""
        ...


def lost_node(node_id: str) -> str:
    """The never-live node a node's lost calls are parked on until they are moved."""
    return f"{node_id}:lost"


def _least_loaded(nodes: list[NodeEntry], avoid: str | None) -> NodeEntry:
    candidates = [n for n in nodes if n.spare > 0 and n.node_id != avoid]
    if not candidates:
        raise NoMediaNode("no live media node has room for another call")
    return min(candidates, key=lambda n: (n.load / max(n.capacity, 1), n.node_id))


class LocalDirectory:
    """One process: its own embedded node(s), no sharing."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._nodes: dict[str, NodeEntry] = {}
        self._calls: dict[str, str] = {}

    async def heartbeat(self, entry: NodeEntry) -> None:
        self._nodes[entry.node_id] = entry

    async def deregister(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)

    async def live_nodes(self) -> list[NodeEntry]:
        now = self._clock()
        return [n for n in self._nodes.values() if n.alive(now, self._ttl_s)]

    async def assign(self, call_id: str, avoid: str | None = None) -> str:
        node = _least_loaded(await self.live_nodes(), avoid)
        self._calls[call_id] = node.node_id
        return node.node_id

    async def node_of(self, call_id: str) -> str | None:
        return self._calls.get(call_id)

    async def nodes_of(self, call_ids: Sequence[str]) -> list[str | None]:
        return [self._calls.get(call_id) for call_id in call_ids]

    async def release(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    async def reassign(self, call_id: str, dead: str) -> bool:
        if self._calls.get(call_id) != dead:
            return False
        await self.assign(call_id, avoid=dead)
        return True

    async def mark_lost(self, call_id: str, node_id: str) -> None:
        if self._calls.get(call_id) == node_id:
            self._calls[call_id] = lost_node(node_id)


class RedisDirectory:
    """Nodes as JSON values with a TTL (a missed heartbeat lets them expire);
    call assignments as plain keys."""

    def __init__(self, redis: Redis, ttl_s: float, prefix: str = "cb:media") -> None:
        self._redis = redis
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix

    def _node_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    def _call_key(self, call_id: str) -> str:
        return f"{self._prefix}:call:{call_id}"

    async def heartbeat(self, entry: NodeEntry) -> None:
        value = json.dumps(
            {
                "node_id": entry.node_id,
                "address": entry.address,
                "capacity": entry.capacity,
                "load": entry.load,
                "seen_at": entry.seen_at,
            }
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._node_key(entry.node_id), value, px=self._ttl_ms)
            pipe.sadd(f"{self._prefix}:nodes", entry.node_id)
            await pipe.execute()

    async def deregister(self, node_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._node_key(node_id))
            pipe.srem(f"{self._prefix}:nodes", node_id)
            await pipe.execute()

    async def live_nodes(self) -> list[NodeEntry]:
        ids = sorted(_text(i) for i in await self._redis.smembers(f"{self._prefix}:nodes"))
        if not ids:
            return []
        values = await self._redis.mget([self._node_key(i) for i in ids])
        entries: list[NodeEntry] = []
        gone: list[str] = []
        for node_id, value in zip(ids, values, strict=True):
            if value is None:
                gone.append(node_id)  # its heartbeat expired: dead
                continue
            data = json.loads(value)
            entries.append(NodeEntry(**data))
        if gone:
            await self._redis.srem(f"{self._prefix}:nodes", *gone)
        return entries

    async def assign(self, call_id: str, avoid: str | None = None) -> str:
        node = _least_loaded(await self.live_nodes(), avoid)
        await self._redis.set(self._call_key(call_id), node.node_id, ex=CALL_ASSIGNMENT_TTL_S)
        return node.node_id

    async def node_of(self, call_id: str) -> str | None:
        value = await self._redis.get(self._call_key(call_id))
        return None if value is None else _text(value)

    async def nodes_of(self, call_ids: Sequence[str]) -> list[str | None]:
        if not call_ids:
            return []
        values = await self._redis.mget([self._call_key(call_id) for call_id in call_ids])
        return [None if value is None else _text(value) for value in values]

    async def release(self, call_id: str) -> None:
        await self._redis.delete(self._call_key(call_id))

    async def reassign(self, call_id: str, dead: str) -> bool:
        target = _least_loaded(await self.live_nodes(), dead).node_id
        # Several servers notice the same dead node: only the first swap counts.
        swapped = await self._redis.eval(
            _REASSIGN, 1, self._call_key(call_id), dead, target, CALL_ASSIGNMENT_TTL_S
        )
        return bool(swapped)

    async def mark_lost(self, call_id: str, node_id: str) -> None:
        # The same compare-and-swap: only a call still on this node is parked.
        await self._redis.eval(
            _REASSIGN,
            1,
            self._call_key(call_id),
            node_id,
            lost_node(node_id),
            CALL_ASSIGNMENT_TTL_S,
        )
