"""Putting routing back in line with SQL: after a restart (the in-process queue
starts empty) and after Redis lost its data (:mod:`server.calls.repair`).

SQL is the record of what happened; routing is rebuilt from it. Every step is
idempotent, so a node that runs it twice, or two nodes at once, change nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Call, Specialist
from server.routing.backend import QueueBackend
from server.routing.model import PriorityClass, QueuedCall, SpecialistProfile

from . import repository as repo
from .state import HELD, WAITING, CallState


def queued_call(call: Call) -> QueuedCall:
    """The call as routing keeps it: its place comes from when it was first queued."""
    return QueuedCall(
        call_id=call.call_id,
        customer_id=call.customer_id,
        dialect=call.dialect,
        priority=PriorityClass(call.priority),
        enqueued_at=call.enqueued_at.timestamp(),
        intent=call.intent,
    )


def profile_of(specialist: Specialist) -> SpecialistProfile:
    return SpecialistProfile(
        specialist_id=specialist.specialist_id,
        dialects={d.dialect: d.proficiency for d in specialist.dialects},
        skills=frozenset(specialist.skills or ()),
    )


# Offered → queued with its event (the call service's ``withdraw_offer``).
WithdrawOffer = Callable[[AsyncSession, str, float, str], Awaitable[bool]]


async def rebuild_queue(
    sessions: async_sessionmaker[AsyncSession],
    backend: QueueBackend,
    now: float,
    withdraw_offer: WithdrawOffer,
) -> int:
    """Every call SQL says is waiting goes back in the queue, after the specialists
    got back the calls they hold; returns how many calls wait."""
    async with sessions() as session:
        waiting = await repo.calls_in_states(session, set(WAITING))
        for call in waiting:
            if call.state == CallState.OFFERED.value:
                # The offer died with the old process; the call keeps its place.
                await withdraw_offer(session, call.call_id, now, "node_restarted")
        await session.commit()
    await restore_assignments(sessions, backend, now)
    for call in waiting:
        await backend.enqueue(queued_call(call), now)
    return len(waiting)


async def restore_assignments(
    sessions: async_sessionmaker[AsyncSession], backend: QueueBackend, now: float
) -> int:
    """Specialists hold, in routing, the calls SQL says they hold: run before desks
    are logged in again, so none is offered a call while busy. Returns how many
    assignments were restored."""
    async with sessions() as session:
        held = await repo.calls_in_states(session, set(HELD))
        specialists = {
            s.specialist_id: s
            for s in await repo.specialists_by_id(
                session, {c.specialist_id for c in held if c.specialist_id}
            )
        }
    restored = 0
    for call in held:
        specialist = specialists.get(call.specialist_id or "")
        if specialist is None:
            continue
        await backend.register(profile_of(specialist))
        restored += await backend.restore_assignment(
            specialist.specialist_id,
            call.call_id,
            call.state == CallState.WRAP_UP.value,
            now,
        )
    return restored
