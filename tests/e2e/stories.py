"""What the end-to-end stories (and the browser stories) share: a call made
active with aiortc parties, and reads of the server's database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from server.db.banking import Account
from server.db.engine import make_engine
from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient


async def active_call(
    api: Api, username: str, customer_id: str
) -> tuple[MediaClient, MediaClient, str]:
    """A specialist and a customer with media flowing, in an active call: (desk,
    customer, call id)."""
    desk_party = await api.specialist(username)
    desk = MediaClient(desk_party)
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer(customer_id))
    await customer.connect()
    call_id = (await customer.party.post("/api/v1/calls", {"intent": "transfer"})).body["call_id"]
    offer = await desk.expect("call.offered", call_id=call_id)
    accepted = await desk_party.post(
        f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
    )
    assert accepted.status == 200, accepted
    await desk.frames(5)
    await customer.frames(5)
    for _ in range(100):
        if (await customer.party.get(f"/api/v1/calls/{call_id}")).body["state"] == "active":
            break
        await desk.peer.wait_for_frames(1, timeout=1)  # type: ignore[union-attr]
    else:
        raise AssertionError("call never became active")
    return desk, customer, call_id


async def db_rows(server: RunningServer, statement: Any) -> list[Any]:
    """The rows of ``statement`` on the server's database."""
    engine = make_engine(server.settings.database_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(statement))
    finally:
        await engine.dispose()


async def balances(server: RunningServer, customer_id: str) -> dict[str, Decimal]:
    """The customer's balances by account, as stored now."""
    found = await db_rows(
        server,
        select(Account.account_id, Account.balance).where(Account.customer_id == customer_id),
    )
    return {account: Decimal(balance) for account, balance in found}
