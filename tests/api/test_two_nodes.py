"""Two real server processes sharing one Redis and one PostgreSQL serve one queue.

Customers talk only to node 1 and specialists only to node 2, so every offer,
assignment and end-of-call message crosses nodes through Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import Api, Party, Socket
from tests.api.nodes import nodes
from tests.plugin.databases import clone_name, postgres_clone

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

CUSTOMERS = [f"C10{n:02d}" for n in range(1, 9)]
DESKS = ["chen.li", "huang.wei", "zhang.jun"]


@pytest.fixture
def shared_database(postgres_url: str, postgres_template: str, tmp_path: Path) -> Iterator[str]:
    with postgres_clone(
        postgres_url, postgres_template, clone_name("cb_nodes", tmp_path.name)
    ) as url:
        yield url


async def _desk_loop(desk: Party, socket: Socket, answered: list[str], total: int) -> None:
    """Accept every offer, end and wrap up at once, until all calls are answered."""
    while len(answered) < total:
        try:
            offer = await socket.expect("call.offered", timeout=1.0)
        except TimeoutError:
            continue
        call_id = offer["call_id"]
        reply = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
        assert reply.status == 200, reply
        answered.append(call_id)
        assert (await desk.post(f"/api/v1/calls/{call_id}/end")).status == 200
        wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "served"})
        assert wrapped.status == 200, wrapped


async def test_two_nodes_serve_one_queue(
    shared_database: str, redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    async with (
        nodes(2, shared_database, redis_url, tmp_path) as (node1, node2),
        aiohttp.ClientSession() as http,
    ):
        front, back = Api(node1.base_url, http), Api(node2.base_url, http)
        desks = []
        for username in DESKS:
            desks.append(await back.available_specialist(username))
        customers = [await front.customer(c) for c in CUSTOMERS]
        customer_sockets = [await c.connect() for c in customers]

        created = await asyncio.gather(*(c.post("/api/v1/calls", {}) for c in customers))
        assert all(r.status == 201 for r in created), created
        call_ids = {r.body["call_id"] for r in created}
        assert len(call_ids) == len(CUSTOMERS)

        answered: list[str] = []
        await asyncio.wait_for(
            asyncio.gather(*(_desk_loop(d, s, answered, len(CUSTOMERS)) for d, s in desks)),
            timeout=60,
        )
        assert sorted(answered) == sorted(call_ids), "every call answered exactly once"

        # Each customer heard, on node 1, who answered on node 2, and that it ended.
        for customer, socket, reply in zip(customers, customer_sockets, created, strict=True):
            call_id = reply.body["call_id"]
            await socket.expect("call.assigned", call_id=call_id, timeout=10)
            await socket.expect("call.ended", call_id=call_id, timeout=10)
            view = await customer.get(f"/api/v1/calls/{call_id}")
            assert view.body["state"] == "ended"

        supervisor = await front.supervisor()
        for call_id in call_ids:
            timeline = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
            kinds = [e["kind"] for e in timeline.body["events"]]
            assert kinds.count("offered") == 1, kinds
            assert kinds.count("accepted") == 1, kinds
