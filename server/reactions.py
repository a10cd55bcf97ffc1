"""The reactions to domain events (server/outbox/events.py) that need more than the
service step they call: each reads the event's call as it is now and is safe to
run twice, since the outbox delivers at least once (a node that dies after a
handler ran and before its delivery was recorded runs it again on restart).

Which handler takes which event, and in what order: ``outbox_handlers`` in
``server/bootstrap.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.repository import get_call
from server.calls.state import CallState
from server.db.banking import AuditEntry, Operation
from server.db.models import Call
from server.errors import CloudBranchError
from server.operations.service import OperationService
from server.outbox.events import Event
from server.recordings.hooks import send_notice
from server.recordings.service import RecordingService, recording_applies

if TYPE_CHECKING:
    from server.ports import Clock, Notifier

log = structlog.get_logger(__name__)

CallStep = Callable[[Call], Awaitable[None]]


def with_call(
    sessions: async_sessionmaker[AsyncSession],
    react: CallStep,
    states: Collection[CallState] | None = None,
) -> Callable[[Event], Awaitable[None]]:
    """A handler that hands ``react`` the event's call, as read now; only while the
    call is in one of ``states`` when given (a late delivery of an event whose
    moment has passed does nothing)."""

    async def handle(event: Event) -> None:
        if event.call_id is None:
            return
        async with sessions() as session:
            call = await get_call(session, event.call_id)
        if call is None or (states is not None and CallState(call.state) not in states):
            return
        await react(call)

    return handle


def recording_notice(
    recordings: RecordingService,
    hub: Notifier,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> CallStep:
    """``media.notice`` to both parties that the call is recorded, once per call (a
    notice already recorded as sent is not sent again)."""

    async def notify(call: Call) -> None:
        if not recording_applies(recordings.settings):
            return
        async with sessions() as session:
            if await _notice_sent(session, call.call_id):
                return
        await send_notice(hub, sessions, call, clock())

    return notify


async def _notice_sent(session: AsyncSession, call_id: str) -> bool:
    query = select(AuditEntry.seq).where(
        AuditEntry.kind == "recording.notice_sent",
        AuditEntry.subject_type == "call",
        AuditEntry.subject_id == call_id,
    )
    return (await session.execute(query.limit(1))).first() is not None


def redirect_transfer(
    operations: OperationService, sessions: async_sessionmaker[AsyncSession]
) -> CallStep:
    """A redirect's attempted transfer becomes a pending operation (risk-checked at
    once, shown to the desk), once per call."""

    async def start(call: Call) -> None:
        transfer = _redirect_transfer_of(call)
        if transfer is None:
            return
        async with sessions() as session:
            started = await session.execute(
                select(Operation.operation_id)
                .where(Operation.call_id == call.call_id, Operation.origin == "redirect")
                .limit(1)
            )
            if started.first() is not None:
                return
        try:
            await operations.start_from_redirect(call, transfer)
        except CloudBranchError as exc:
            # A context the engine cannot take must not break the call (nor be
            # tried again); the desk can still start the transfer by hand.
            log.warning("operations.redirect_transfer_refused", call_id=call.call_id, code=exc.code)

    return start


def _redirect_transfer_of(call: Call) -> dict[str, Any] | None:
    redirect = (call.context or {}).get("redirect")
    transfer = redirect.get("transfer") if isinstance(redirect, dict) else None
    return transfer if isinstance(transfer, dict) else None
