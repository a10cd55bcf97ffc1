"""A large queue on Redis: what one change costs, and what doing nothing costs.

10,000 calls wait (Redis + PostgreSQL); the customers of the first 1,000 have a
socket open on the server. Measured on the server process:

- idle: server CPU per second while nothing happens, as a share of one core,
  over ``IDLE_S`` (a whole ping period of the customers' sockets);
- enqueue: server CPU per new call (``POST /api/v1/calls``, one at a time, with
  what the dispatcher does for it), against a floor of the bare handler's CPU
  for one INSERT (``bench/_floor.py``) plus one ZADD + ZRANK round trip on a
  10,000-member sorted set;
- cancel at the head: server CPU per ``DELETE`` of the first call until each of
  the other sockets has been told its new place, against a floor of one ZREM +
  ZRANK round trip plus the bare server sending one small message to each of the
  same number of sockets.

The enqueue and cancel windows each start just after the sockets' round of
reminders (a send per socket every ``queue_update_interval_s``), so that none
falls inside them. The idle share subtracted from them includes the reminders'
cost, which the windows no longer hold, so their figures may read slightly low
(by reasoning, not measured).

Targets: idle <= 1% of a core; enqueue <= 5x its floor; cancel <= 2x its floor.

    .venv/bin/python bench/queue_scale.py [--waiting 10000] [--sockets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _fleet
import aiohttp
from _verdict import Verdicts, with_services

from server.settings import Settings

# The idle window spans a whole period of everything a quiet server does per
# socket (a customer's ping, two queue.update reminders), so that none of it
# falls outside the window and goes uncounted.
_DEFAULTS = Settings.model_fields
IDLE_S = max(
    float(_DEFAULTS["ws_customer_heartbeat_s"].default),
    2 * float(_DEFAULTS["queue_update_interval_s"].default),
)
ENQUEUES = 50
CANCELS = 20


async def add_waiting_calls(url: str, customers: list[str]) -> list[str]:
    """Queued calls in SQL, oldest first; the server's start-up rebuild queues them."""
    from sqlalchemy import insert

    from server.db.engine import make_engine
    from server.db.models import Call

    start = datetime.now(tz=UTC) - timedelta(seconds=len(customers) * 0.01 + 60)
    ids = [uuid.uuid4().hex for _ in customers]
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            rows = []
            for index, (call_id, customer) in enumerate(zip(ids, customers, strict=True)):
                at = start + timedelta(seconds=index * 0.01)
                rows.append(
                    {
                        "call_id": call_id,
                        "customer_id": customer,
                        "state": "queued",
                        "dialect": "cmn",
                        "priority": "normal",
                        "callback_allowed": False,
                        "context": {},
                        "created_at": at,
                        "enqueued_at": at,
                        "customer_seen_at": at,
                        "media_version": 0,
                    }
                )
            for chunk in range(0, len(rows), 1000):
                await conn.execute(insert(Call), rows[chunk : chunk + 1000])
    finally:
        await engine.dispose()
    return ids


async def redis_floor(url: str, waiting: int) -> tuple[float, float]:
    """(ZADD + ZRANK, ZREM + ZRANK) round trips on a ``waiting``-member zset, in seconds."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    key = f"bench:floor:{uuid.uuid4().hex[:8]}"
    try:
        for chunk in range(0, waiting, 1000):
            await client.zadd(
                key, {f"m{i:08d}": i for i in range(chunk, min(waiting, chunk + 1000))}
            )
        adds, removes = [], []
        for n in range(200):
            member = f"x{n:08d}"
            started = time.perf_counter()
            await client.zadd(key, {member: waiting + n})
            await client.zrank(key, member)
            adds.append(time.perf_counter() - started)
            started = time.perf_counter()
            await client.zrem(key, f"m{n:08d}")
            await client.zrank(key, f"m{n + 1:08d}")
            removes.append(time.perf_counter() - started)
        return sorted(adds)[len(adds) // 2], sorted(removes)[len(removes) // 2]
    finally:
        await client.delete(key)
        await client.aclose()


async def wait_for(seen: list[int], target: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while seen[0] < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen[0]} of {target} updates arrived")
        await asyncio.sleep(0.01)


async def after_a_reminder_round(seen: list[int], sockets: int) -> None:
    """Wait until the sockets' queue.update reminders (all of them in a pass or two
    every ``queue_update_interval_s``: they were greeted together) have gone by, so
    that the next seconds hold none. A round is a send per socket; landing in a
    window of a few seconds by chance, it would add its cost to that window's
    figure, and its messages would be counted as the cancel's."""
    period = float(_DEFAULTS["queue_update_interval_s"].default)
    deadline = time.monotonic() + 2 * period + 5
    marks: list[tuple[float, int]] = []
    while True:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError("no round of reminders came")
        marks = [(t, n) for t, n in marks if now - t <= 1.0] + [(now, seen[0])]
        if marks[-1][1] - marks[0][1] >= 0.9 * sockets:
            break
        await asyncio.sleep(0.05)
    quiet_from = seen[0]
    while True:  # the round's last messages
        await asyncio.sleep(0.5)
        if seen[0] == quiet_from:
            return
        quiet_from = seen[0]


async def create_one_by_one(http: aiohttp.ClientSession, url: str, tokens: list[str]) -> None:
    """POST a call for each token in turn; each must be created (201)."""
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(url, json={}, headers=headers) as r:
            assert r.status == 201, await r.text()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--sockets", type=int, default=1_000)
    args = parser.parse_args()
    verdicts = Verdicts()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = await _fleet.database("redis+postgres", tmp)
        assert db.redis_url is not None
        customers = await _fleet.add_customers(db.url, args.waiting + ENQUEUES)
        call_ids = await add_waiting_calls(db.url, customers[: args.waiting])
        socket_tokens = [_fleet.customer_token(c) for c in customers[: args.sockets]]
        new_tokens = [_fleet.customer_token(c) for c in customers[args.waiting :]]
        add_floor, remove_floor = await redis_floor(db.redis_url, args.waiting)
        moved = args.sockets - 1
        async with _fleet.session() as http:
            # The floor: one INSERT per create, one small send per moved socket.
            async with _fleet.floor(db, tmp) as node:
                ws_url = node.base_url.replace("http://", "ws://") + "/ws"
                seen = [0]
                result = await _fleet.storm(
                    http, ws_url, node.process.pid, socket_tokens, seen=seen
                )
                pid = node.process.pid
                before = _fleet.cpu_s(pid)
                await create_one_by_one(http, node.base_url + "/calls", new_tokens)
                floor_create_cpu = (_fleet.cpu_s(pid) - before) / len(new_tokens)
                before, target = _fleet.cpu_s(pid), seen[0]
                for _ in range(CANCELS):
                    async with http.post(node.base_url + "/broadcast") as r:
                        await r.read()
                    target += result.answered
                    await wait_for(seen, target)
                floor_send_cpu = (_fleet.cpu_s(pid) - before) / CANCELS
                await _fleet.close_all(result)
            # The server.
            async with _fleet.server(db, tmp, log_level="WARNING") as node:
                pid = node.process.pid
                ws_url = node.base_url.replace("http://", "ws://") + "/api/v1/ws"
                seen = [0]
                result = await _fleet.storm(http, ws_url, pid, socket_tokens, seen=seen)
                print(
                    f"  server: {result.answered} sockets answered, {result.dropped} dropped "
                    f"in {result.wall_s:.1f} s",
                    flush=True,
                )
                # Outside the windows: the read costs the server CPU too.
                gc_before = await _fleet.collections(http, node.base_url)
                await asyncio.sleep(3.0)
                before, started = _fleet.cpu_s(pid), time.perf_counter()
                await asyncio.sleep(IDLE_S)
                idle_share = (_fleet.cpu_s(pid) - before) / (time.perf_counter() - started)

                await after_a_reminder_round(seen, result.answered)
                before, started = _fleet.cpu_s(pid), time.perf_counter()
                await create_one_by_one(http, node.base_url + "/api/v1/calls", new_tokens)
                await asyncio.sleep(2.0)  # what the dispatcher does for them
                spent = _fleet.cpu_s(pid) - before - idle_share * (time.perf_counter() - started)
                create_cpu = spent / len(new_tokens)

                await after_a_reminder_round(seen, result.answered)
                before, started = _fleet.cpu_s(pid), time.perf_counter()
                for n in range(CANCELS):
                    # The head's customer leaves; the sockets behind it move up.
                    target = seen[0] + result.answered - 1 - n
                    async with http.delete(
                        node.base_url + f"/api/v1/calls/{call_ids[n]}",
                        headers={"Authorization": f"Bearer {socket_tokens[n]}"},
                    ) as r:
                        assert r.status == 204, await r.text()
                    await wait_for(seen, target)
                spent = _fleet.cpu_s(pid) - before - idle_share * (time.perf_counter() - started)
                cancel_cpu = spent / CANCELS
                gc = (await _fleet.collections(http, node.base_url)).since(gc_before)
                await _fleet.close_all(result)

    enqueue_floor = floor_create_cpu + add_floor
    cancel_floor = remove_floor + floor_send_cpu * moved / args.sockets
    print(f"{args.waiting:,} calls waiting on Redis, {args.sockets:,} sockets on the server")
    print(f"  idle: {idle_share * 100:.2f}% of a core")
    print(
        f"  enqueue: {create_cpu * 1000:.2f} ms server CPU per call; floor "
        f"{enqueue_floor * 1000:.2f} ms (INSERT handler {floor_create_cpu * 1000:.2f} ms CPU "
        f"+ ZADD+ZRANK {add_floor * 1000:.3f} ms)"
    )
    print(
        f"  cancel at the head: {cancel_cpu * 1000:.2f} ms server CPU until {moved} sockets "
        f"were told; floor {cancel_floor * 1000:.2f} ms (ZREM+ZRANK {remove_floor * 1000:.3f} ms "
        f"+ {moved} small sends {floor_send_cpu * moved / args.sockets * 1000:.2f} ms CPU)"
    )
    # Not a target: how much of the server's CPU above went to the cycle collector,
    # and how often it held every socket's messages back for longer than 50 ms.
    print(
        f"  garbage collection from idle to the last cancel: {gc.seconds * 1000:.0f} ms in all, "
        f"{gc.full} full collections, {gc.over_50ms} pauses over 50 ms"
    )
    verdicts.check("idle CPU", f"{idle_share * 100:.2f}% of a core", "<= 1%", idle_share <= 0.01)
    verdicts.check(
        "enqueue CPU / floor",
        f"{_fleet.ratio(create_cpu, enqueue_floor):.2f}x",
        "<= 5x",
        _fleet.ratio(create_cpu, enqueue_floor) <= 5,
    )
    verdicts.check(
        "cancel at the head CPU / floor",
        f"{_fleet.ratio(cancel_cpu, cancel_floor):.2f}x",
        "<= 2x",
        _fleet.ratio(cancel_cpu, cancel_floor) <= 2,
    )
    return verdicts.exit_code()


if __name__ == "__main__":
    with_services()
    sys.exit(asyncio.run(main()))
