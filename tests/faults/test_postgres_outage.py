"""PostgreSQL stopped for 10 s under traffic, two nodes on one Redis.

Recovery bound: every call created before or after the outage is answered
exactly once within 60 s of PostgreSQL returning. Meanwhile every answer is a
2xx, a 409 or a 503 with ``Retry-After`` (never a 500, never a hang past the
client's timeout); an accept during the outage releases the reservation (no
miss is counted against the desk) and the call is offered again; afterwards no
call is left ``offered`` and no desk ``busy`` without an owner, and the audit
chain verifies.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.api.harness import Api, Party, Reply, Socket
from tests.api.nodes import nodes

from .support import (
    FaultPostgres,
    FaultRedis,
    Figures,
    double_assigned,
    eventually,
    timeline_kinds,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(200)]

OUTAGE_S = 10.0
RECOVERY_BOUND_S = 60.0
DESKS = ["chen.li", "zhang.jun"]
HOLDING_DESK = "wang.fang"
CUSTOMERS = [f"C10{n:02d}" for n in range(1, 13)]


class Traffic:
    """Records every status seen while the database is down."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures
        self.outage = False
        self.bad: list[Reply] = []

    def saw(self, reply: Reply) -> Reply:
        if self.outage:
            self.figures.statuses[reply.status] += 1
        if reply.status >= 500 and reply.status != 503:
            self.bad.append(reply)
        if reply.status == 503:
            assert reply.code == "service_unavailable", reply
            assert "Retry-After" in reply.headers, reply
        return reply

    async def until_ok(self, call: object, *, accept: set[int]) -> Reply:
        """Retry on 503 as a client would. A 503 may come after the change
        committed (the database went away while answering): then the retry is
        refused 409 ``illegal_state``, which means the first attempt landed."""
        retried = False
        while True:
            reply = self.saw(await call())  # type: ignore[operator]
            if reply.status in accept:
                return reply
            if retried and reply.status == 409 and reply.code == "illegal_state":
                return reply
            assert reply.status == 503, reply
            retried = True
            await asyncio.sleep(0.5)


async def _serve(
    traffic: Traffic, desk: Party, socket: Socket, answered: list[str], total: int
) -> None:
    while len(answered) < total:
        try:
            offer = await socket.expect("call.offered", timeout=1.0)
        except TimeoutError:
            continue
        except ConnectionError:
            return
        call_id = offer["call_id"]
        reply = traffic.saw(
            await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
        )
        if reply.status == 503 and await _mine_after_all(traffic, desk, call_id):
            pass  # the accept committed, but its answer was lost with the database
        elif reply.status in (409, 503):
            continue  # released; it is offered again
        else:
            assert reply.status == 200, reply
        answered.append(call_id)
        await traffic.until_ok(lambda c=call_id: desk.post(f"/api/v1/calls/{c}/end"), accept={200})
        await traffic.until_ok(
            lambda c=call_id: desk.post(f"/api/v1/calls/{c}/wrap-up", {"code": "served"}),
            accept={200},
        )


async def _mine_after_all(traffic: Traffic, desk: Party, call_id: str) -> bool:
    """After a 503 on accept, a desk asks again (as the desk page does): a commit
    whose answer was lost shows the call held by this desk."""
    view = await traffic.until_ok(lambda: desk.get(f"/api/v1/calls/{call_id}"), accept={200, 404})
    return view.status == 200 and view.body["state"] in ("connecting", "active")


async def _create_calls(traffic: Traffic, api: Api, customers: list[str], out: set[str]) -> None:
    for customer_id in customers:
        customer = await api.customer(customer_id)
        reply = await traffic.until_ok(
            lambda c=customer: c.post("/api/v1/calls", {}), accept={200, 201}
        )
        out.add(reply.body["call_id"])
        await asyncio.sleep(0.3)


async def test_postgres_stopped_under_traffic_only_503s_and_nothing_stranded(
    fault_redis: FaultRedis, fault_postgres: FaultPostgres, fault_database: str, tmp_path: Path
) -> None:
    figures = Figures("postgres_outage")
    traffic = Traffic(figures)
    async with (
        nodes(
            2, fault_database, fault_redis.url, tmp_path, repair_interval_s="1",
            db_pool_timeout_s="2",
            # The test's desks read their sockets only between requests, and
            # retry for the whole outage: give them time to answer pings.
            ws_heartbeat_s="60",
        ) as (n1, n2),
        aiohttp.ClientSession() as http,
    ):  # fmt: skip
        front, back = Api(n1.base_url, http), Api(n2.base_url, http)
        supervisor = await front.supervisor()
        # A desk holding an offer that it will try to accept while SQL is down.
        holder, holder_ws = await back.available_specialist(HOLDING_DESK)
        first = await (await front.customer(CUSTOMERS[0])).post("/api/v1/calls", {})
        assert first.status == 201, first
        held_offer = await holder_ws.expect("call.offered", timeout=10)
        desks = [await back.available_specialist(u) for u in DESKS]

        created: set[str] = {first.body["call_id"]}
        answered: list[str] = []
        total = len(CUSTOMERS)
        creator = asyncio.create_task(_create_calls(traffic, front, CUSTOMERS[1:], created))
        servers = [asyncio.create_task(_serve(traffic, d, s, answered, total)) for d, s in desks]
        await asyncio.sleep(1.0)

        traffic.outage = True
        await asyncio.to_thread(fault_postgres.stop_now)
        stopped_at = time.monotonic()
        late_accept = traffic.saw(
            await holder.post(
                f"/api/v1/calls/{held_offer['call_id']}/accept",
                {"offer_id": held_offer["offer_id"]},
            )
        )
        assert late_accept.status in (409, 503), late_accept
        for path in ("/api/v1/stats", f"/api/v1/calls/{first.body['call_id']}"):
            traffic.saw(await supervisor.get(path))
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        await asyncio.to_thread(fault_postgres.start_again)
        back_at = time.monotonic()
        traffic.outage = False
        # The holding desk joins in too now.
        servers.append(asyncio.create_task(_serve(traffic, holder, holder_ws, answered, total)))
        await asyncio.wait_for(creator, timeout=RECOVERY_BOUND_S)
        await asyncio.wait_for(asyncio.gather(*servers), timeout=RECOVERY_BOUND_S)
        recovered_s = time.monotonic() - back_at

        assert not traffic.bad, traffic.bad
        assert sorted(answered) == sorted(created), "every call answered exactly once"
        double = double_assigned(await timeline_kinds(supervisor, created))
        assert double == 0

        # Nothing stranded: every desk is free again in routing and no call is left open.
        last_states: dict[str, str] = {}

        async def settled() -> bool:
            listed = (await supervisor.get("/api/v1/specialists")).body
            last_states.update({s["username"]: s["state"] for s in listed})
            return all(last_states[u] == "available" for u in [*DESKS, HOLDING_DESK])

        try:
            await eventually(settled, 20, "every desk available again")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; states {last_states}") from None
        for call_id in created:
            view = (await supervisor.get(f"/api/v1/calls/{call_id}")).body
            assert view["state"] == "ended", view
        # The accept refused during the outage was not counted a miss.
        redis = Redis.from_url(fault_redis.url, decode_responses=True)
        try:
            holder_misses = await redis.hget(f"cb:spec:{holder.subject}", "misses")
        finally:
            await redis.aclose()
        assert holder_misses == "0", holder_misses
        verified = await supervisor.get("/api/v1/audit/verify")
        assert verified.body["ok"] is True, verified.body

        figures.values.update(
            queued=len(created),
            answered=len(answered),
            lost=len(created - set(answered)),
            double_assigned=double,
            outage_s=OUTAGE_S,
            recovered_after_s=round(recovered_s, 1),
            accept_during_outage=late_accept.status,
            holder_misses=holder_misses,
        )
        figures.report()
        assert figures.statuses[500] == 0
