"""Which calls still have an operation waiting for review or confirmation.

The live-state repair (server/calls/repair.py) is given this query: a pending
operation on a call that is no longer in conversation is a mismatch to repair.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Operation

from .state import PENDING


async def calls_with_pending_operations(session: AsyncSession) -> list[str]:
    result = await session.execute(
        select(Operation.call_id).where(Operation.state.in_([s.value for s in PENDING])).distinct()
    )
    return [call_id for (call_id,) in result.all()]
