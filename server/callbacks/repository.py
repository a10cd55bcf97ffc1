"""SQL access for callbacks, their attempt log and the customer's contact flags.

Changes of state are conditional updates (``WHERE state IN (...)`` and, for the
sweeper, ``AND next_attempt_at <= now``): when two nodes sweep at once, one update
touches the row and the other touches nothing, so an attempt is made and recorded
once. The attempt row and its audit entry go in the same transaction as the
change they describe.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.calls.repository import utc
from server.db.banking import Callback, CallbackAttempt
from server.db.models import Call, Customer

from .state import AttemptOutcome, CallbackState

SUBJECT = "callback"


async def get(session: AsyncSession, callback_id: str) -> Callback | None:
    # Ids come from URL paths; PostgreSQL refuses NUL in a parameter outright.
    if not callback_id or len(callback_id) > 64 or "\x00" in callback_id:
        return None
    return await session.get(Callback, callback_id)


async def of_call(session: AsyncSession, call_id: str) -> Callback | None:
    result = await session.execute(select(Callback).where(Callback.call_id == call_id))
    return result.scalars().first()


async def in_states(
    session: AsyncSession, states: Collection[CallbackState], customer_id: str | None = None
) -> Sequence[Callback]:
    query = select(Callback).where(Callback.state.in_([s.value for s in states]))
    if customer_id is not None:
        query = query.where(Callback.customer_id == customer_id)
    result = await session.execute(query.order_by(Callback.original_enqueued_at))
    return result.scalars().all()


async def of_customer(session: AsyncSession, customer_id: str, limit: int) -> Sequence[Callback]:
    result = await session.execute(
        select(Callback)
        .where(Callback.customer_id == customer_id)
        .order_by(Callback.requested_at.desc())
        .limit(limit)
    )
    return result.scalars().all()


async def move(
    session: AsyncSession,
    callback_id: str,
    sources: Collection[CallbackState],
    *,
    due_by: float | None = None,
    **values: Any,
) -> bool:
    """Update the callback if it is in one of ``sources`` (and, with ``due_by``, if
    its ``next_attempt_at`` is unset or not after ``due_by``). True if it was."""
    query = update(Callback).where(
        Callback.callback_id == callback_id,
        Callback.state.in_([s.value for s in sources]),
    )
    if due_by is not None:
        query = query.where(
            or_(Callback.next_attempt_at.is_(None), Callback.next_attempt_at <= utc(due_by))
        )
    result = await session.execute(query.values(**values))
    return bool(getattr(result, "rowcount", 0))


async def add_attempt(
    session: AsyncSession,
    callback: Callback,
    at: float,
    outcome: AttemptOutcome,
    zone: ZoneInfo,
    *,
    detail: str | None = None,
    actor_role: str | None = None,
    actor_id: str | None = None,
) -> None:
    """One line of the attempt log, and the same fact in the audit chain."""
    local = datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")
    session.add(
        CallbackAttempt(
            callback_id=callback.callback_id,
            at=utc(at),
            local_time=local,
            outcome=outcome.value,
            detail=detail[:200] if detail else None,
        )
    )
    await audit.record(
        session,
        f"callback.{outcome.value}",
        at=at,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type=SUBJECT,
        subject_id=callback.callback_id,
        data={
            "call_id": callback.call_id,
            "customer_id": callback.customer_id,
            "local_time": local,
            "detail": detail,
        },
    )


async def record(
    session: AsyncSession,
    kind: str,
    callback: Callback,
    at: float,
    *,
    actor_role: str | None = None,
    actor_id: str | None = None,
    **data: Any,
) -> None:
    """An audit entry about ``callback`` that is not an attempt (scheduled, cancelled...)."""
    await audit.record(
        session,
        f"callback.{kind}",
        at=at,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type=SUBJECT,
        subject_id=callback.callback_id,
        data={"call_id": callback.call_id, "customer_id": callback.customer_id, **data},
    )


async def attempts(session: AsyncSession, callback_id: str) -> Sequence[CallbackAttempt]:
    result = await session.execute(
        select(CallbackAttempt)
        .where(CallbackAttempt.callback_id == callback_id)
        .order_by(CallbackAttempt.attempt_id)
    )
    return result.scalars().all()


async def ring_times(session: AsyncSession, customer_id: str, since: float) -> list[float]:
    """When any callback rang this customer since ``since``: the daily cap is the
    customer's, however many callbacks they asked for."""
    result = await session.execute(
        select(CallbackAttempt.at)
        .join(Callback, Callback.callback_id == CallbackAttempt.callback_id)
        .where(
            Callback.customer_id == customer_id,
            CallbackAttempt.outcome == AttemptOutcome.RANG.value,
            CallbackAttempt.at >= utc(since),
        )
    )
    return [at.timestamp() for (at,) in result.all()]


async def offer_facts(
    session: AsyncSession, call_ids: Collection[str]
) -> dict[str, tuple[str, bool, bool, bool]]:
    """call_id -> (call state, callback allowed, customer consent, do-not-call)."""
    found: dict[str, tuple[str, bool, bool, bool]] = {}
    ids = list(call_ids)
    for start in range(0, len(ids), 500):
        result = await session.execute(
            select(
                Call.call_id,
                Call.state,
                Call.callback_allowed,
                Customer.contact_consent,
                Customer.do_not_call,
            )
            .join(Customer, Customer.customer_id == Call.customer_id)
            .where(Call.call_id.in_(ids[start : start + 500]))
        )
        for call_id, state, allowed, consent, dnc in result.all():
            found[call_id] = (state, bool(allowed), bool(consent), bool(dnc))
    return found


async def set_contact_flags(session: AsyncSession, customer_id: str, **values: bool) -> bool:
    result = await session.execute(
        update(Customer).where(Customer.customer_id == customer_id).values(**values)
    )
    return bool(getattr(result, "rowcount", 0))
