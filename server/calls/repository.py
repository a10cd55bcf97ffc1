"""SQL access for calls and their timelines.

Transitions are conditional updates (see :mod:`server.calls.state`): they succeed
for exactly one caller even when several nodes race on the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, desc, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.auth.principal import Role
from server.db.models import Call, CallEvent, Customer, Specialist

from .state import CUSTOMER_OPEN, CallAction, CallState, sources, target


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


async def get_call(session: AsyncSession, call_id: str) -> Call | None:
    # Ids come straight from URL paths. One with a NUL cannot exist, and PostgreSQL
    # rejects NUL in a query parameter outright (an error, not "no row").
    if not call_id or "\x00" in call_id:
        return None
    return await session.get(Call, call_id)


async def open_call_of(session: AsyncSession, customer_id: str) -> Call | None:
    """The customer's call still in progress for them (waiting or in
    conversation); a call in wrap-up is over for the customer."""
    result = await session.execute(
        select(Call).where(
            Call.customer_id == customer_id,
            Call.state.in_([s.value for s in CUSTOMER_OPEN]),
        )
    )
    return result.scalars().first()


async def specialists_by_id(session: AsyncSession, ids: set[str]) -> Sequence[Specialist]:
    if not ids:
        return []
    result = await session.execute(select(Specialist).where(Specialist.specialist_id.in_(ids)))
    return result.scalars().all()


async def transition(
    session: AsyncSession, call_id: str, action: CallAction, **values: Any
) -> bool:
    """Apply ``action`` if the call is in one of its source states. True if it was."""
    return await stepped_call(session, call_id, action, **values) is not None


async def stepped_call(
    session: AsyncSession, call_id: str, action: CallAction, **values: Any
) -> Call | None:
    """:func:`transition`, returning the call as updated (None: not applied).

    The row comes back with the update (RETURNING), so a step that needs the
    call afterwards (its messages, the view it answers with) reads it for free."""
    result = await session.execute(
        update(Call)
        .where(Call.call_id == call_id, Call.state.in_([s.value for s in sources(action)]))
        .values(state=target(action).value, **values)
        .returning(Call),
        execution_options={"populate_existing": True},
    )
    return result.scalars().first()


async def add_event(
    session: AsyncSession,
    call_id: str,
    at: float,
    kind: str,
    actor_role: str | None = None,
    actor_id: str | None = None,
    **data: Any,
) -> None:
    """Add a line to the call's timeline and the same fact to the audit chain."""
    await audit.record(
        session,
        f"call.{kind}",
        at=at,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type="call",
        subject_id=call_id,
        data=data,
    )
    session.add(
        CallEvent(
            call_id=call_id,
            at=utc(at),
            kind=kind,
            actor_role=actor_role,
            actor_id=actor_id,
            data=data,
        )
    )


async def timeline(session: AsyncSession, call_id: str) -> Sequence[CallEvent]:
    result = await session.execute(
        select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.event_id)
    )
    return result.scalars().all()


async def calls_in_states(session: AsyncSession, states: set[CallState]) -> Sequence[Call]:
    result = await session.execute(
        select(Call).where(Call.state.in_([s.value for s in states])).order_by(Call.enqueued_at)
    )
    return result.scalars().all()


async def states_of_calls_in(
    session: AsyncSession, states: set[CallState]
) -> dict[str, tuple[str, str | None]]:
    """call id -> (state, specialist id) of every call in ``states``: three columns,
    no ORM objects (repair reads every open call)."""
    result = await session.execute(
        select(Call.call_id, Call.state, Call.specialist_id).where(
            Call.state.in_([s.value for s in states])
        )
    )
    return {call_id: (state, specialist) for call_id, state, specialist in result.all()}


async def recent_handle_times(session: AsyncSession, window: int) -> list[float]:
    """Seconds from answer to the end of wrap-up, for the latest ``window`` calls."""
    result = await session.execute(
        select(Call.answered_at, Call.ended_at)
        .where(
            Call.state == CallState.ENDED.value,
            Call.answered_at.is_not(None),
            Call.ended_at.is_not(None),
        )
        .order_by(desc(Call.ended_at))
        .limit(window)
    )
    return [
        (ended - answered).total_seconds()
        for answered, ended in result.all()
        if answered is not None and ended is not None
    ]


async def get_customer(session: AsyncSession, customer_id: str) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_specialist(session: AsyncSession, specialist_id: str) -> Specialist | None:
    return await session.get(Specialist, specialist_id)


async def specialist_by_username(session: AsyncSession, username: str) -> Specialist | None:
    result = await session.execute(select(Specialist).where(Specialist.username == username))
    return result.scalars().first()


async def all_specialists(session: AsyncSession) -> Sequence[Specialist]:
    """Staff who take calls (supervisors share the table but are not specialists)."""
    result = await session.execute(
        select(Specialist)
        .where(Specialist.role == Role.SPECIALIST.value)
        .order_by(Specialist.specialist_id)
    )
    return result.scalars().all()


async def count_calls_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Ended calls since ``since`` by end reason (for the supervisor's figures)."""
    result = await session.execute(
        select(Call.end_reason, func.count())
        .where(Call.ended_at.is_not(None), Call.ended_at >= since)
        .group_by(Call.end_reason)
    )
    return {str(reason): int(n) for reason, n in result.all()}


async def answered_waits_since(session: AsyncSession, since: datetime) -> list[float]:
    result = await session.execute(
        select(Call.actual_wait_s).where(Call.answered_at.is_not(None), Call.answered_at >= since)
    )
    return [float(w) for (w,) in result.all() if w is not None]


async def waiting_calls_of(session: AsyncSession, customer_ids: list[str]) -> dict[str, str]:
    """customer_id -> id of their waiting call, for the given customers."""
    found: dict[str, str] = {}
    waiting = [CallState.QUEUED.value, CallState.OFFERED.value]
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        result = await session.execute(
            select(Call.customer_id, Call.call_id).where(
                Call.customer_id.in_(chunk), Call.state.in_(waiting)
            )
        )
        found.update({customer: call for customer, call in result.all()})
    return found


async def mark_customers_seen(session: AsyncSession, customer_ids: list[str], at: float) -> None:
    """These customers' apps are connected: refresh their waiting calls' seen time."""
    waiting = [CallState.QUEUED.value, CallState.OFFERED.value]
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        await session.execute(
            update(Call)
            .where(Call.customer_id.in_(chunk), Call.state.in_(waiting))
            .values(customer_seen_at=utc(at))
        )


async def calls_due_for_housekeeping(
    session: AsyncSession, wait_cutoff: float, gone_cutoff: float, wrap_cutoff: float
) -> Sequence[Call]:
    """Only the calls a housekeeping pass must act on: waiting too long, whose app
    has been gone too long (or never came: an app that never opened a socket is
    gone since the call was created), or left in wrap-up too long (not every open
    call)."""
    waiting = [CallState.QUEUED.value, CallState.OFFERED.value]
    last_seen = func.coalesce(Call.customer_seen_at, Call.created_at)
    result = await session.execute(
        select(Call).where(
            or_(
                and_(Call.state.in_(waiting), Call.enqueued_at < utc(wait_cutoff)),
                and_(Call.state.in_(waiting), last_seen < utc(gone_cutoff)),
                and_(
                    Call.state == CallState.WRAP_UP.value,
                    Call.conversation_ended_at < utc(wrap_cutoff),
                ),
            )
        )
    )
    return result.scalars().all()
