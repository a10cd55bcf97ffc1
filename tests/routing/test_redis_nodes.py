"""The Redis backend shared by several nodes: concurrent callers never double-book.

Each "node" is a :class:`RedisQueueBackend` on its own client (one decoding
replies, one not) against the same server and prefix, driven concurrently with
``asyncio.gather`` so their scripts interleave on the server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from server.routing.errors import OfferExpired
from server.routing.model import (
    DesiredPresence,
    Offer,
    PriorityClass,
    SpecialistProfile,
    SpecialistState,
)
from server.routing.redis_backend import RedisQueueBackend
from tests.routing.support import POLICY, call, staff

if TYPE_CHECKING:
    from redis.asyncio import Redis

pytestmark = pytest.mark.redis

DIALECT_MIXES = ({"cmn": 5}, {"cmn": 4, "wuu": 5}, {"yue": 5}, {"yue": 3, "cmn": 3}, {"wuu": 2})


@pytest.fixture
async def nodes(
    redis_client: Redis, redis_url: str
) -> AsyncIterator[tuple[RedisQueueBackend, RedisQueueBackend]]:
    first = RedisQueueBackend(redis_client, POLICY, prefix="nodes:")
    second = RedisQueueBackend.from_url(redis_url, POLICY, prefix="nodes:")
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_concurrent_dispatch_never_double_books(
    nodes: tuple[RedisQueueBackend, RedisQueueBackend],
) -> None:
    rng = random.Random(7)
    first, second = nodes
    for index in range(30):
        await staff(first, f"s{index:02}", DIALECT_MIXES[index % len(DIALECT_MIXES)], at=index)
    dialects = (None, "cmn", "wuu", "yue")
    priorities = tuple(PriorityClass)
    for index in range(120):
        await first.enqueue(
            call(f"c{index:03}", rng.choice(dialects), rng.choice(priorities), at=index), index
        )
    live: dict[str, Offer] = {}  # by specialist
    now = 120.0
    for _ in range(80):
        batches = await asyncio.gather(
            first.dispatch(now), second.dispatch(now), first.dispatch(now), second.dispatch(now)
        )
        made = [offer for batch in batches for offer in batch]
        assert len({o.call_id for o in made}) == len(made)
        assert len({o.specialist_id for o in made}) == len(made)
        for offer in made:
            assert offer.specialist_id not in live
            assert offer.call_id not in {o.call_id for o in live.values()}
            live[offer.specialist_id] = offer
        # Settle some offers: accepted (racing on both nodes), declined, or left to lapse.
        for specialist_id, offer in list(live.items()):
            roll = rng.random()
            if roll < 0.3:
                results = await asyncio.gather(
                    first.accept(offer.offer_id, specialist_id, now),
                    second.accept(offer.offer_id, specialist_id, now),
                    return_exceptions=True,
                )
                assert sum(not isinstance(r, BaseException) for r in results) == 1
                assert all(isinstance(r, OfferExpired) for r in results if isinstance(r, Exception))
                del live[specialist_id]
            elif roll < 0.45:
                await second.decline(offer.offer_id, specialist_id, now)
                del live[specialist_id]
        now += rng.choice((1.0, 5.0, 16.0))
        expired = await asyncio.gather(first.expire_offers(now), second.expire_offers(now))
        withdrawn = [e.offer for batch in expired for e in batch]
        assert len({o.offer_id for o in withdrawn}) == len(withdrawn)
        for offer in withdrawn:
            assert live.pop(offer.specialist_id) == offer
        snapshot = await second.snapshot(now)
        busy = [s for s in snapshot.specialists if s.call_id is not None]
        for view in busy:
            if rng.random() < 0.5:
                await first.end_call(view.specialist_id, now)
                await second.finish_wrap_up(view.specialist_id, now)
        for view in snapshot.specialists:
            if view.state is SpecialistState.AWAY:  # three misses in a row
                await second.set_presence(view.specialist_id, DesiredPresence.AVAILABLE, now)
        offered = {w.call.call_id for w in snapshot.waiting if w.offered}
        assert offered == {o.call_id for o in live.values()}
        assert sum(s.state is SpecialistState.RESERVED for s in snapshot.specialists) == len(live)


async def test_racing_accepts_of_one_offer_have_one_winner(
    nodes: tuple[RedisQueueBackend, RedisQueueBackend],
) -> None:
    first, second = nodes
    await staff(first, "s1", {"cmn": 5}, at=0)
    for index in range(25):
        await first.enqueue(call(f"c{index}", at=0), 0)
        [offer] = await second.dispatch(index)
        results = await asyncio.gather(
            first.accept(offer.offer_id, "s1", index),
            second.accept(offer.offer_id, "s1", index),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Assignment", "OfferExpired"]
        await second.finish_wrap_up("s1", index)


async def test_expiry_racing_an_accept_settles_the_offer_once(
    nodes: tuple[RedisQueueBackend, RedisQueueBackend],
) -> None:
    first, second = nodes
    await staff(first, "s1", {"cmn": 5}, at=0)
    for index in range(25):
        now = index * 100.0
        await first.enqueue(call(f"c{index}", at=now), now)
        [offer] = await second.dispatch(now)
        accepted, expired = await asyncio.gather(
            first.accept(offer.offer_id, "s1", offer.expires_at - 0.001),
            second.expire_offers(offer.expires_at),
            return_exceptions=True,
        )
        assert isinstance(expired, list)
        if isinstance(accepted, BaseException):
            assert isinstance(accepted, OfferExpired)
            assert [e.offer for e in expired] == [offer]
            assert await first.remove(offer.call_id, now) is None
        else:
            assert expired == []
            await first.finish_wrap_up("s1", now)
        state = await first.set_presence("s1", DesiredPresence.AVAILABLE, now)
        assert state is SpecialistState.AVAILABLE


async def test_prefixes_keep_deployments_apart(redis_client: Redis) -> None:
    blue = RedisQueueBackend(redis_client, POLICY, prefix="blue:")
    green = RedisQueueBackend(redis_client, POLICY, prefix="green:")
    await blue.enqueue(call("c1"), 0)
    await green.register(SpecialistProfile("s1", {"cmn": 5}))
    assert await green.position("c1") is None
    assert await blue.specialist("s1") is None
    keys = [k.decode() if isinstance(k, bytes) else k for k in await redis_client.keys("*")]
    assert keys and all(key.startswith(("blue:", "green:")) for key in keys)


async def test_close_is_safe_twice_and_leaves_a_borrowed_client_open(
    redis_client: Redis, redis_url: str
) -> None:
    borrowed = RedisQueueBackend(redis_client, POLICY)
    await borrowed.close()
    await borrowed.close()
    assert await redis_client.ping()
    owned = RedisQueueBackend.from_url(redis_url, POLICY)
    assert await owned.position("nothing") is None
    await owned.close()
    await owned.close()


async def test_settled_calls_leave_nothing_behind(redis_client: Redis) -> None:
    backend = RedisQueueBackend(redis_client, POLICY, prefix="leak:")
    await staff(backend, "s1", {"cmn": 5}, at=0)
    await staff(backend, "s2", {"yue": 5}, at=0)
    for index, dialect in enumerate(("cmn", "yue", None, "wuu", "cmn", "yue")):
        await backend.enqueue(call(f"c{index}", dialect, at=index), index)
    first, second = await backend.dispatch(10)
    await backend.accept(first.offer_id, first.specialist_id, 11)
    await backend.expire_offers(second.expires_at)  # withdrawn, back in the queue
    [again] = await backend.dispatch(40)  # now on the "any" step
    await backend.decline(again.offer_id, again.specialist_id, 41)
    [last] = await backend.dispatch(42)
    assert await backend.remove(last.call_id, 43) == last  # withdrawn by the removal
    for index in range(6):
        await backend.remove(f"c{index}", 44)
    assert (await backend.snapshot(45)).waiting == ()
    keys = {k.decode() for k in await redis_client.keys("leak:*")}
    assert not {k for k in keys if k.startswith(("leak:call:", "leak:offer:"))}
    for name in ("order", "q:any", "offers", "callinfo", "offered"):
        assert f"leak:{name}" not in keys
    assert not {k for k in keys if k.startswith(("leak:q:d:", "leak:promo:"))}


async def test_calls_queued_before_standings_were_kept_are_placed_when_requeued(
    redis_client: Redis,
) -> None:
    """A rolling upgrade: calls a previous version queued have no standing-set
    entry; the start-up's re-enqueue of the waiting calls places them."""
    backend = RedisQueueBackend(redis_client, POLICY, prefix="upgrade:")
    try:
        for n, call_id in enumerate(("a", "b", "c"), start=1):
            await backend.enqueue(call(call_id, None, at=n), n)
        # What the previous version left: the calls, without their standing entries.
        await redis_client.delete("upgrade:w:any")
        _, lost = await backend.standings(["a", "b", "c"])
        assert [s.ahead_any for s in lost] != [0, 1, 2]
        version = await backend.queue_version()

        for n, call_id in enumerate(("a", "b", "c"), start=1):
            again = await backend.enqueue_standing(call(call_id, None, at=n), 10)
            assert again.position == n
        _, placed = await backend.standings(["a", "b", "c"])
        assert [(s.position, s.ahead_any) for s in placed] == [(1, 0), (2, 1), (3, 2)]
        assert await backend.queue_version() == version + 3  # logged, so nodes shift
        # Placed once: a further re-enqueue changes nothing.
        await backend.enqueue(call("b", None, at=2), 11)
        assert await backend.queue_version() == version + 3
    finally:
        await backend.close()


async def test_a_storm_of_requests_shares_the_nodes_bounded_redis_connections(
    redis_client: Redis, redis_url: str
) -> None:
    from server.bootstrap import redis_client as node_redis_client

    node = RedisQueueBackend(
        node_redis_client(redis_url), POLICY, prefix="storm:", owns_client=True
    )
    await node.enqueue(call("c1", at=0), now=0)
    before = len(await redis_client.client_list())
    try:
        # As many at once as a reconnect storm brings: each waits for a pooled
        # connection instead of opening its own.
        places = await asyncio.gather(*(node.position("c1") for _ in range(500)))
        opened = len(await redis_client.client_list()) - before
    finally:
        await node.close()
    assert places == [1] * 500
    assert 1 <= opened <= 64
