"""Redis restarted empty while two nodes run, with calls queued and in progress.

Recovery bound: offers flow again within 20 s of Redis returning, with no
operator action (each node sees the epoch key gone, rebuilds the queue and the
desks from SQL and from the sockets it holds). Every queued call, including
ones created while Redis was down, is answered exactly once; the calls in
progress end cleanly for both parties; no request is answered 500.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import Api, Party, Socket
from tests.api.nodes import nodes

from .support import FaultRedis, Figures, double_assigned, eventually, probe, timeline_kinds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

RECOVERY_BOUND_S = 20.0
IN_PROGRESS = [("chen.li", "C1001"), ("zhou.min", "C1002")]
SPARE_DESK = "zhang.jun"
QUEUED = [f"C10{n:02d}" for n in range(3, 9)]
DURING_OUTAGE = ["C1009", "C1010"]


async def _answer(desk: Party, socket: Socket) -> str:
    offer = await socket.expect("call.offered", timeout=RECOVERY_BOUND_S + 10)
    call_id: str = offer["call_id"]
    reply = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert reply.status == 200, reply
    return call_id


async def _serve_until(
    desk: Party, socket: Socket, answered: list[str], total: int, offered_at: list[float]
) -> None:
    """Accept every offer, end and wrap up at once, until all calls are answered."""
    while len(answered) < total:
        try:
            offer = await socket.expect("call.offered", timeout=1.0)
        except TimeoutError:
            continue
        offered_at.append(time.monotonic())
        call_id = offer["call_id"]
        reply = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
        if reply.status == 409:
            continue  # withdrawn meanwhile (a rebuild); it will be offered again
        assert reply.status == 200, reply
        answered.append(call_id)
        assert (await desk.post(f"/api/v1/calls/{call_id}/end")).status == 200
        wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "served"})
        assert wrapped.status == 200, wrapped


async def _ready(http: aiohttp.ClientSession, base_url: str) -> bool:
    try:
        async with http.get(base_url + "/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_redis_restarted_empty_heals_by_itself(
    fault_redis: FaultRedis, fault_database: str, tmp_path: Path
) -> None:
    figures = Figures("redis_restart")
    async with (
        nodes(2, fault_database, fault_redis.url, tmp_path, repair_interval_s="1") as (n1, n2),
        aiohttp.ClientSession() as http,
    ):
        front, back = Api(n1.base_url, http), Api(n2.base_url, http)
        # Two calls in progress: customers on node 1, desks on node 2.
        held: list[tuple[Party, Socket, Party, Socket, str]] = []
        for username, customer_id in IN_PROGRESS:
            desk, desk_ws = await back.available_specialist(username)
            customer = await front.customer(customer_id)
            customer_ws = await customer.connect()
            created = await customer.post("/api/v1/calls", {})
            assert created.status == 201, created
            call_id = await _answer(desk, desk_ws)
            assert call_id == created.body["call_id"]
            held.append((desk, desk_ws, customer, customer_ws, call_id))
        # Queued calls, nobody free to take them.
        queued_ids = []
        for customer_id in QUEUED:
            reply = await (await front.customer(customer_id)).post("/api/v1/calls", {})
            assert reply.status == 201, reply
            queued_ids.append(reply.body["call_id"])
        supervisor = await front.supervisor()

        stop_probe = asyncio.Event()
        prober = asyncio.create_task(
            probe(
                http,
                [
                    (n1.base_url + f"/api/v1/calls/{queued_ids[0]}", supervisor.headers()),
                    (n2.base_url + "/api/v1/stats", supervisor.headers()),
                ],
                figures,
                stop_probe,
            )
        )
        fault_redis.stop()
        # While Redis is down: new calls are still taken (SQL has them) or refused 503.
        outage_ids = []
        for customer_id in DURING_OUTAGE:
            reply = await (await front.customer(customer_id)).post("/api/v1/calls", {})
            figures.statuses[reply.status] += 1
            assert reply.status in (201, 503), reply
            if reply.status == 201:
                outage_ids.append(reply.body["call_id"])
        await asyncio.sleep(2)
        fault_redis.start()
        back_at = time.monotonic()
        ready_s = await eventually(
            lambda: _all_ready(http, [n1.base_url, n2.base_url]), 30, "both nodes ready again"
        )
        stop_probe.set()
        await prober

        # The calls in progress end cleanly for both parties, though Redis forgot them.
        for desk, desk_ws, _customer, customer_ws, call_id in held:
            ended = await desk.post(f"/api/v1/calls/{call_id}/end")
            assert ended.status == 200 and ended.body["state"] == "wrap_up", ended
            await customer_ws.expect("call.ended", call_id=call_id, timeout=10)
            await desk_ws.expect("call.ended", call_id=call_id, timeout=10)
            wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "served"})
            assert wrapped.status == 200 and wrapped.body["state"] == "ended", wrapped

        # Offers flow again by themselves: the desks that just wrapped up, and a
        # spare desk that logs in now, are offered the queued calls.
        spare = await back.available_specialist(SPARE_DESK)
        desks = [(d, s) for d, s, *_ in held] + [spare]
        expected = set(queued_ids) | set(outage_ids)
        answered: list[str] = []
        offered_at: list[float] = []
        await asyncio.wait_for(
            asyncio.gather(
                *(_serve_until(d, s, answered, len(expected), offered_at) for d, s in desks)
            ),
            timeout=90,
        )
        offers_resumed_s = min(offered_at) - back_at
        assert offers_resumed_s <= RECOVERY_BOUND_S, offers_resumed_s
        assert sorted(answered) == sorted(expected), "every queued call answered once"
        double = double_assigned(await timeline_kinds(supervisor, expected))
        assert double == 0
        verified = await supervisor.get("/api/v1/audit/verify")
        assert verified.body["ok"] is True, verified.body

        figures.values.update(
            queued=len(expected),
            answered=len(answered),
            lost=len(expected - set(answered)),
            double_assigned=double,
            created_during_outage=len(outage_ids),
            in_progress_ended_cleanly=len(held),
            ready_after_s=round(ready_s, 1),
            offers_resumed_after_s=round(offers_resumed_s, 1),
        )
        figures.report()
        assert figures.statuses[500] == 0, figures.statuses


async def _all_ready(http: aiohttp.ClientSession, urls: list[str]) -> bool:
    return all([await _ready(http, url) for url in urls])
