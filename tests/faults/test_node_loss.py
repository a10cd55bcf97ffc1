"""A node leaves under load: drained on SIGTERM, or killed with SIGKILL mid-call.

SIGTERM (recovery bound: the node exits within its drain bound, 15 s here, and
every call is answered once within 60 s): the node's desks are withdrawn from
routing at once, so their pending offers go to the other node's desks without
waiting out the lease (no offer expires, no miss); their sockets close with
1012 and they carry on through the other node.

SIGKILL (recovery bound: the killed node's desks that never come back are
logged out within 30 s, well inside the 45 s presence TTL; every call is
answered once within 60 s): the call in conversation ends cleanly for both
parties through the other node, and the queued calls are spread over the
desks by longest idle rather than piling on one.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import Api, Party, Socket
from tests.api.nodes import Node, nodes

from .support import FaultRedis, Figures, double_assigned, eventually, timeline_kinds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DRAIN_BOUND_S = 15.0


async def _closed_with(socket: Socket, within: float) -> int | None:
    """Read until the socket closes; its close code."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            await socket.next(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionError:
            return socket.ws.close_code
        except TimeoutError:
            break
    return None


async def _reconnect(api: Api, desk: Party) -> tuple[Party, Socket]:
    """The same desk (same token), now talking to ``api``'s node."""
    moved = Party(api, desk.role, desk.subject, desk.token)
    socket = await moved.connect()
    reply = await moved.put("/api/v1/desk/presence", {"state": "available"})
    assert reply.status == 200, reply
    return moved, socket


async def _serve(
    desk: Party, socket: Socket, answered: collections.Counter[str], served: list[str], total: int
) -> None:
    while len(served) < total:
        try:
            offer = await socket.expect("call.offered", timeout=1.0)
        except TimeoutError:
            continue
        call_id = offer["call_id"]
        reply = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
        if reply.status == 409:
            continue
        assert reply.status == 200, reply
        served.append(call_id)
        answered[desk.subject] += 1
        assert (await desk.post(f"/api/v1/calls/{call_id}/end")).status == 200
        wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "served"})
        assert wrapped.status == 200, wrapped


async def _serve_every_call(
    desks: list[tuple[Party, Socket]], call_ids: list[str]
) -> tuple[collections.Counter[str], list[str]]:
    """The desks answer offers until every call is served, within 60 s: (calls
    answered per desk, calls in the order served). Each call is served once."""
    answered: collections.Counter[str] = collections.Counter()
    served: list[str] = []
    await asyncio.wait_for(
        asyncio.gather(*(_serve(d, s, answered, served, len(call_ids)) for d, s in desks)),
        timeout=60,
    )
    assert sorted(served) == sorted(call_ids), "every call answered exactly once"
    return answered, served


async def _exited(node: Node) -> bool:
    return node.process.poll() is not None


async def _create(api: Api, customers: list[str]) -> list[str]:
    ids = []
    for customer_id in customers:
        reply = await (await api.customer(customer_id)).post("/api/v1/calls", {})
        assert reply.status == 201, reply
        ids.append(reply.body["call_id"])
    return ids


async def test_sigterm_drains_within_the_bound_and_loses_nothing(
    fault_redis: FaultRedis, fault_database: str, tmp_path: Path
) -> None:
    figures = Figures("sigterm_drain")
    async with (
        nodes(
            2, fault_database, fault_redis.url, tmp_path,
            repair_interval_s="1", drain_timeout_s=str(DRAIN_BOUND_S),
        ) as (n1, n2),
        aiohttp.ClientSession() as http,
    ):  # fmt: skip
        draining, staying = Api(n1.base_url, http), Api(n2.base_url, http)
        on_draining = [await draining.available_specialist(u) for u in ("chen.li", "wang.fang")]
        spare, spare_ws = await staying.available_specialist("zhang.jun")
        assert (await spare.put("/api/v1/desk/presence", {"state": "away"})).status == 200
        call_ids = await _create(staying, [f"C10{n:02d}" for n in range(1, 6)])
        # Both desks on the draining node hold an offer they do not answer.
        for _desk, socket in on_draining:
            await socket.expect("call.offered", timeout=10)

        n1.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        codes = [await _closed_with(s, DRAIN_BOUND_S) for _, s in on_draining]
        assert codes == [1012, 1012], codes
        exited_s = await eventually(lambda: _exited(n1), DRAIN_BOUND_S + 5, "node 1 exited")
        assert n1.process.returncode == 0, n1.log()[-2000:]

        # The desks carry on through the other node; the spare desk joins in.
        desks = [await _reconnect(staying, d) for d, _ in on_draining]
        assert (await spare.put("/api/v1/desk/presence", {"state": "available"})).status == 200
        desks.append((spare, spare_ws))
        _, served = await _serve_every_call(desks, call_ids)
        recovered_s = time.monotonic() - signalled
        supervisor = await staying.supervisor()
        kinds_by_call = await timeline_kinds(supervisor, call_ids)
        expired = withdrawn = 0
        for kinds in kinds_by_call.values():
            assert kinds.count("accepted") == 1, kinds
            expired += kinds.count("offer_expired")
            withdrawn += kinds.count("offer_withdrawn")
        assert expired == 0, "offers of the draining node were withdrawn, not left to expire"
        assert withdrawn >= 2
        figures.values.update(
            queued=len(call_ids),
            answered=len(served),
            lost=len(set(call_ids) - set(served)),
            double_assigned=double_assigned(kinds_by_call),
            exited_after_s=round(exited_s, 1),
            offers_withdrawn=withdrawn,
            offers_expired=expired,
            close_codes=codes,
            all_answered_after_s=round(recovered_s, 1),
        )
        figures.report()


async def test_sigkill_mid_call_resumes_on_the_other_node_and_spreads_offers(
    fault_redis: FaultRedis, fault_database: str, tmp_path: Path
) -> None:
    figures = Figures("sigkill_node")
    async with (
        nodes(2, fault_database, fault_redis.url, tmp_path, repair_interval_s="1") as (n1, n2),
        aiohttp.ClientSession() as http,
    ):
        doomed, staying = Api(n1.base_url, http), Api(n2.base_url, http)
        talking, talking_ws = await doomed.available_specialist("chen.li")
        customer = await staying.customer("C1001")
        customer_ws = await customer.connect()
        held = (await customer.post("/api/v1/calls", {})).body["call_id"]
        offer = await talking_ws.expect("call.offered", call_id=held, timeout=10)
        accepted = await talking.post(
            f"/api/v1/calls/{held}/accept", {"offer_id": offer["offer_id"]}
        )
        assert accepted.status == 200, accepted
        await customer_ws.expect("call.assigned", call_id=held, timeout=10)
        comes_back, _ = await doomed.available_specialist("zhou.min")
        ghost, _ = await doomed.available_specialist("wang.fang")  # never comes back
        others = [
            await staying.available_specialist(u) for u in ("zhang.jun", "huang.wei", "li.na")
        ]

        os.kill(n1.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        call_ids = await _create(staying, [f"C10{n:02d}" for n in range(2, 14)])

        # The desk in conversation comes back through node 2 and ends the call.
        talking, talking_ws = await _reconnect(staying, talking)
        ended = await talking.post(f"/api/v1/calls/{held}/end")
        assert ended.status == 200 and ended.body["state"] == "wrap_up", ended
        await customer_ws.expect("call.ended", call_id=held, timeout=10)
        wrapped = await talking.post(f"/api/v1/calls/{held}/wrap-up", {"code": "served"})
        assert wrapped.status == 200, wrapped
        comes_back, back_ws = await _reconnect(staying, comes_back)

        desks = [(talking, talking_ws), (comes_back, back_ws), *others]
        answered, served = await _serve_every_call(desks, call_ids)
        recovered_s = time.monotonic() - killed_at
        supervisor = await staying.supervisor()

        async def ghost_offline() -> bool:
            listed = (await supervisor.get("/api/v1/specialists")).body
            return any(
                s["specialist_id"] == ghost.subject and s["state"] == "offline" for s in listed
            )

        await eventually(ghost_offline, 30, "the ghost desk logged out")
        ghost_gone_s = time.monotonic() - killed_at
        assert ghost_gone_s < 45, "logged out before the presence TTL would have"
        # Longest idle again: nobody takes the lion's share (it was 32 of 45).
        per_desk = [answered[d.subject] for d, _ in desks]
        assert max(per_desk) <= len(call_ids) // 2, per_desk
        double = double_assigned(await timeline_kinds(supervisor, call_ids))
        assert double == 0
        figures.values.update(
            queued=len(call_ids),
            answered=len(served),
            lost=len(set(call_ids) - set(served)),
            double_assigned=double,
            per_desk=per_desk,
            ghost_offline_within_s=round(ghost_gone_s, 1),
            all_answered_after_s=round(recovered_s, 1),
            in_progress_ended_cleanly=1,
        )
        figures.report()
