"""The services that write a call's domain events, on the unit tier's fakes, all
writing to one outbox: the call service and dispatcher, the media lifecycle and
coordinator (direct mode), and the operations service. Shared by the tests of
the call's events and the node that is killed between commit and delivery
(tests/outbox/crash_call_child.py).

Seeded parties: customer C1003 (Mandarin), desks S06 and S01 (both Mandarin).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.banking.documents import DocumentStore
from server.banking.ledger import SqlLedger
from server.bootstrap import risk_engine
from server.db.outbox import OutboxEvent
from server.media.coordinator import MediaCoordinator
from server.media.lifecycle import MediaLifecycle
from server.media.store import MediaStore
from server.operations.service import OperationService
from server.outbox.relay import Handler, Outbox, RelayTiming
from tests.unit.fakes import Branch, branch

FAST = RelayTiming(poll_s=0.05, retry_base_s=0.05, retry_cap_s=0.2, handler_timeout_s=5.0)
CUSTOMER = "C1003"
DESK = "S06"
# A small transfer to a payee the customer has not paid before (a redirect's, or the desk's).
TRANSFER = {
    "amount": "100.00",
    "currency": "CNY",
    "payee_account": "6222020200112233445",
    "payee_name": "王小明",
    "payee_bank": "中国工商银行",
}


@dataclass(frozen=True)
class Party:
    """What the media coordinator reads of a socket: who it is and which one."""

    principal: Principal
    conn_id: str


@dataclass(frozen=True)
class World:
    branch: Branch
    outbox: Outbox
    media: MediaLifecycle
    coordinator: MediaCoordinator
    operations: OperationService

    @property
    def desk(self) -> Principal:
        return Principal(Role.SPECIALIST, DESK)

    async def queued_and_offered(self) -> str:
        """C1003 calls and S06 is offered the call; returns the call id."""
        b = self.branch
        await b.desk_available(DESK)
        call_id = await b.customer_calls(CUSTOMER)
        await b.tick()
        return call_id

    async def accept(self, call_id: str) -> None:
        (offer, *_) = reversed(self.branch.notifier.to(DESK, "call.offered"))
        await self.branch.calls.accept(self.desk, call_id, offer["offer_id"])

    async def media_up(self, call_id: str) -> None:
        """Media starts (as the media.start handler does) and both parties report it up."""
        await self.media.start(await self.branch.call(call_id))
        for party in (Principal(Role.CUSTOMER, CUSTOMER), self.desk):
            connection: Any = Party(party, f"conn-{party.subject}")
            message = {"type": "media.state", "call_id": call_id, "state": "connected"}
            await self.coordinator.handle(connection, message)

    async def balance_inquiry(self, call_id: str) -> None:
        await self.operations.start(self.desk, call_id, "balance_inquiry", {}, None)

    async def end(self, call_id: str) -> None:
        await self.branch.calls.end_by_specialist(self.desk, call_id)


@asynccontextmanager
async def world(
    database_url: str,
    documents: Path,
    handlers: Sequence[Handler],
    *,
    record_only: frozenset[str] = frozenset(),
    timing: RelayTiming = FAST,
    **overrides: Any,
) -> AsyncIterator[World]:
    async with branch(
        database_url,
        outbox_handlers=handlers,
        outbox_timing=timing,
        record_only=record_only,
        media_mode="direct",
        **overrides,
    ) as b:
        assert b.outbox is not None
        store = MediaStore(b.sessions, b.settings.media_grace_s)

        def no_ice(_call_id: str) -> list[dict[str, Any]]:
            return []

        parts: dict[str, Any] = {"sessions": b.sessions, "hub": b.notifier, "clock": b.clock}
        ledger = SqlLedger(
            tz=ZoneInfo(b.settings.branch_timezone), documents=DocumentStore(documents)
        )
        yield World(
            b,
            b.outbox,
            MediaLifecycle(store, no_ice, **parts),
            MediaCoordinator(store, no_ice, outbox=b.outbox, **parts),
            OperationService(
                b.settings,
                b.sessions,
                b.notifier,
                risk_engine(b.settings),
                ledger,
                clock=b.clock,
                events=b.outbox.writer,
            ),
        )


async def rows_of(
    sessions: async_sessionmaker[AsyncSession], call_id: str | None = None
) -> list[OutboxEvent]:
    """The outbox's events (of ``call_id``), in the order they were written."""
    async with sessions() as session:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        if call_id is not None:
            query = query.where(OutboxEvent.call_id == call_id)
        return list((await session.execute(query)).scalars().all())


async def until_written(
    sessions: async_sessionmaker[AsyncSession], call_id: str, kind: str, deadline_s: float = 30.0
) -> None:
    """Wait until an event of ``kind`` for ``call_id`` is committed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not any(row.kind == kind for row in await rows_of(sessions, call_id)):
        if loop.time() > end:
            raise AssertionError(f"no {kind} written for {call_id}")
        await asyncio.sleep(0.02)
