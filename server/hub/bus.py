"""Node-to-node delivery of client messages.

A node delivers a message to the clients connected to it and publishes it on the
bus; every other node delivers it to *its* clients with that identity. The
in-process bus publishes nowhere (one node); the Redis bus uses one pub/sub
channel, which at a handful of nodes costs less than tracking who is where.

The Redis listener survives any Redis error (a restart, a network cut): it
resubscribes with redis-py's exponential backoff with jitter, capped, logs
every attempt, and reports ``healthy = False`` meanwhile so ``/readyz`` can
say the bus is dead. The pub/sub connection is health-checked by redis-py
(``health_check_interval``), so a silently dead link is noticed too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError

from server.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

Deliver = Callable[[str, str, dict[str, Any]], Awaitable[None]]

# Resubscribe backoff: 0.1 s doubling to at most 2 s (with jitter), so the bus is
# back within about 2 s of Redis returning, without hammering a Redis that is not.
_BACKOFF_BASE_S = 0.1
_BACKOFF_CAP_S = 2.0


class MessageBus(Protocol):
    async def start(self, deliver: Deliver) -> None: ...

    async def publish(self, role: str, subject: str, message: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One node: there is nobody else to tell."""

    healthy = True

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
        self._backoff = EqualJitterBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S)
        self.healthy = False

    async def start(self, deliver: Deliver) -> None:
        self._task = asyncio.create_task(self._listen(deliver), name="hub-bus-listener")
        # Publishing before the subscription is live would lose early messages.
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def publish(self, role: str, subject: str, message: dict[str, Any]) -> None:
        envelope = {"node": self._node_id, "role": role, "subject": subject, "message": message}
        await self._redis.publish(self._channel, json.dumps(envelope, default=str))

    async def _listen(self, deliver: Deliver) -> None:
        failures = 0
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if failures:
                        log.info("hub.bus_resubscribed", after_failures=failures)
                    failures = 0
                    self.healthy = True
                    self._ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        await self._deliver_one(deliver, item["data"])
            except (RedisError, OSError) as exc:
                # redis.exceptions.ConnectionError is a RedisError, not the
                # built-in ConnectionError: catch the library's root.
                self.healthy = False
                failures += 1
                delay = self._backoff.compute(failures)
                log.warning(
                    "hub.bus_reconnect",
                    error=type(exc).__name__,
                    attempt=failures,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _deliver_one(self, deliver: Deliver, data: Any) -> None:
        try:
            envelope = json.loads(data)
            if envelope.get("node") == self._node_id:
                return
            await deliver(envelope["role"], envelope["subject"], envelope["message"])
        except (ValueError, KeyError, TypeError):
            log.warning("hub.bus_bad_envelope")

    async def close(self) -> None:
        task, self._task = self._task, None
        self.healthy = False
        await cancel_and_wait(task)
