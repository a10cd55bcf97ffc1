"""Node-to-node delivery of client messages.

A node delivers a message to the clients connected to it and publishes it on the
bus; every other node delivers it to *its* clients with that identity. The
in-process bus publishes nowhere (one node); the Redis bus uses one pub/sub
channel, which at a handful of nodes costs less than tracking who is where.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis

from server.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

Deliver = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class MessageBus(Protocol):
    async def start(self, deliver: Deliver) -> None: ...

    async def publish(self, role: str, subject: str, message: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One node: there is nobody else to tell."""

    async def start(self, deliver: Deliver) -> None:
        return None

    async def publish(self, role: str, subject: str, message: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus:
    """Pub/sub over one channel; each envelope names the sending node."""

    def __init__(self, redis: Redis, node_id: str, channel: str = "cb:hub") -> None:
        self._redis = redis
        self._node_id = node_id
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, deliver: Deliver) -> None:
        self._task = asyncio.create_task(self._listen(deliver), name="hub-bus-listener")
        # Publishing before the subscription is live would lose early messages.
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def publish(self, role: str, subject: str, message: dict[str, Any]) -> None:
        envelope = {"node": self._node_id, "role": role, "subject": subject, "message": message}
        await self._redis.publish(self._channel, json.dumps(envelope, default=str))

    async def _listen(self, deliver: Deliver) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        envelope = json.loads(item["data"])
                        if envelope.get("node") == self._node_id:
                            continue
                        await deliver(envelope["role"], envelope["subject"], envelope["message"])
            except (ConnectionError, OSError) as exc:
                # Redis restarted or the network blinked: resubscribe after a pause.
                log.warning("hub.bus_reconnect", error=str(exc))
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
