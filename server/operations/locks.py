"""The one lock order for an operation's transaction, and the live-call rule.

Every transaction that may move money takes its locks in this order, so two of
them can never wait for each other (PostgreSQL reported "deadlock detected" when
one appended to the audit log before the customer lock and the ledger did the
opposite):

1. the call row, ``FOR SHARE`` (:func:`lock_live_call`): the call cannot end
   (its ``UPDATE`` waits) while an execution that saw it live commits, and an
   end that committed first is seen;
2. the customer row, ``FOR NO KEY UPDATE`` (the ledger takes it again, which is
   a no-op inside the same transaction);
3. the audit head (the first ``audit.record``);
4. the ledger's own rows, the clearing account last (see ``server.banking.ledger``).

SQLite has no row locks: it serialises writers, and the live-call condition is
inside the executing ``UPDATE`` itself (:func:`in_live_call`), which holds there
because that statement runs under the database write lock.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.calls.state import IN_CONVERSATION
from server.db.banking import Operation
from server.db.models import Call, Customer

LIVE_STATES = [s.value for s in IN_CONVERSATION]


def in_live_call() -> ColumnElement[bool]:
    """SQL condition: the operation's call is in conversation right now."""
    return exists(
        select(Call.call_id).where(Call.call_id == Operation.call_id, Call.state.in_(LIVE_STATES))
    )


async def lock_in_order(session: AsyncSession, call_id: str, customer_id: str) -> bool:
    """Steps 1 and 2 of the lock order; True if the call is in conversation."""
    if session.get_bind().dialect.name == "sqlite":
        state = await session.scalar(select(Call.state).where(Call.call_id == call_id))
        return state in LIVE_STATES
    state = await session.scalar(
        select(Call.state).where(Call.call_id == call_id).with_for_update(read=True)
    )
    await session.execute(
        select(Customer.customer_id)
        .where(Customer.customer_id == customer_id)
        .with_for_update(key_share=True)
    )
    return state in LIVE_STATES
