"""Video between parties connected to different server processes sharing one Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import Api
from tests.api.nodes import nodes
from tests.e2e.media_client import MediaClient
from tests.plugin.databases import clone_name, postgres_clone

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def shared_database(postgres_url: str, postgres_template: str, tmp_path: Path) -> Iterator[str]:
    with postgres_clone(
        postgres_url, postgres_template, clone_name("cb_media_nodes", tmp_path.name)
    ) as url:
        yield url


async def test_parties_on_different_nodes_exchange_video(
    shared_database: str, redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    async with (
        nodes(2, shared_database, redis_url, tmp_path, media_grace_s="5") as (node1, node2),
        aiohttp.ClientSession() as http,
    ):
        front, back = Api(node1.base_url, http), Api(node2.base_url, http)
        desk_party = await back.specialist("chen.li")
        desk = MediaClient(desk_party)
        await desk.connect()
        assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
        customer = MediaClient(await front.customer("C1001"))
        await customer.connect()
        try:
            call_id = (await customer.party.post("/api/v1/calls", {})).body["call_id"]
            offer = await desk.expect("call.offered", call_id=call_id)
            accepted = await desk_party.post(
                f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
            )
            assert accepted.status == 200, accepted
            await desk.frames(10)
            await customer.frames(10)

            # The customer drops and comes back through the *other* node.
            await customer.drop()
            back_again = MediaClient(customer.party, base_url=node2.base_url)
            await back_again.connect()
            await back_again.frames(10)
            await desk.frames(10)
            view = await back_again.party.get(f"/api/v1/calls/{call_id}")
            assert view.body["state"] == "active" and view.body["call_id"] == call_id
            await back_again.close()
        finally:
            await desk.close()
            await customer.close()
