"""A media node in its own process refuses a party's offer: the server never sees
the refusal (the node tells the party itself, over the bus), so the node uncounts
the offer in the call's media session before the party hears of it, and the
party's next offer in the same generation is relayed instead of waiting for a
restart. Real Redis (the control channel), a real database (the session), a
refusing engine in place of aiortc or Janus."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Call
from server.media.directory import RedisDirectory
from server.media.node_process import _uncount_refused
from server.media.nodes import MediaRelay, NodeHost
from server.media.store import MediaStore
from signaling.media.bridge import BridgeRefused
from signaling.media.node import NodeStats
from signaling.relay import CallParties


class RefusingEngine:
    """Refuses every offer, as a node does one it cannot parse."""

    def __init__(self, node_id: str, *args: Any) -> None:
        self.node_id = node_id
        self.capacity = 10
        self.load = 0
        self.healthy = True
        self.on_calls_lost: Callable[[list[str]], None] | None = None

    async def start(self) -> None:
        return None

    async def signal(self, call_id: str, party: str, message: Any) -> None:
        raise BridgeRefused("invalid_sdp", "the offer cannot be parsed")

    async def restart(self, call_id: str) -> None:
        return None

    async def party_left(self, call_id: str, party: str) -> None:
        return None

    async def close_call(self, call_id: str) -> None:
        return None

    def request_keyframe(self, call_id: str, party: str) -> None:
        return None

    def stats(self) -> NodeStats:
        return NodeStats(0, 0, 0, 0, 0)

    async def close(self) -> None:
        return None


async def _negotiating_call(sessions: async_sessionmaker[AsyncSession], store: MediaStore) -> str:
    call_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(
            Call(
                call_id=call_id,
                customer_id="C1001",
                state="active",
                priority="normal",
                specialist_id=None,
                created_at=now,
                enqueued_at=now,
            )
        )
        await session.commit()
    await store.create(call_id, lambda record: record.session.start(time.time()))
    return call_id


async def test_a_refusal_in_a_node_process_uncounts_the_offer_before_the_party_hears(
    sessions: async_sessionmaker[AsyncSession], redis_client: Redis
) -> None:
    store = MediaStore(sessions, grace_s=60)
    call_id = await _negotiating_call(sessions, store)

    def count_offer(record: Any) -> int:
        record.session.offer_relayed(time.time())
        return int(record.session.generation)

    generation = await store.change(call_id, count_offer)
    heard: list[tuple[str, dict[str, Any], float | None]] = []
    told = asyncio.Event()

    async def deliver(role: str, subject: str, message: dict[str, Any]) -> None:
        record = await store.read(call_id)
        assert record is not None
        heard.append((role, message, record.session.offer_relayed_at))
        told.set()

    prefix = f"cb:test:{uuid.uuid4().hex[:8]}"
    directory = RedisDirectory(redis_client, ttl_s=30, prefix=prefix)
    host = NodeHost(
        "n-remote",
        directory=directory,
        deliver=deliver,
        ice_servers=lambda call_id: [],
        capacity=10,
        heartbeat_s=5,
        redis=redis_client,
        node_factory=RefusingEngine,  # type: ignore[arg-type]
        on_description_refused=_uncount_refused(store),
    )
    await host.start()
    try:
        # The server side: no node of its own, so the offer goes over Redis.
        relay = MediaRelay(directory, None, redis_client)
        assert await relay.assign(call_id) == "n-remote"
        parties = CallParties(call_id, "C1001", "S1")
        offer = {"type": "webrtc.offer", "call_id": call_id, "sdp": "v=0 broken"}
        await relay.signal(parties, "specialist", offer, generation=generation)
        await asyncio.wait_for(told.wait(), 10)
    finally:
        await host.close()
    [(role, message, offer_relayed_at)] = heard
    assert role == "specialist"
    assert message["type"] == "error" and message["code"] == "invalid_sdp"
    assert offer_relayed_at is None  # uncounted before the party was told
    # The party's next offer in the same generation counts (it would be refused as a
    # second offer of this connection had the first stayed counted).
    assert await store.change(call_id, count_offer) == generation
