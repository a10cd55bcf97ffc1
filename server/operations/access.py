"""Who may see an operation, and the block list specialists add payees to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.auth.principal import Principal, Role
from server.db.banking import BlockedPayee, Operation
from server.db.models import Call
from server.errors import NotFound

from .state import OperationState


async def visible_operation(session: AsyncSession, principal: Principal, op_id: str) -> Operation:
    """The operation, if ``principal`` may see it: its customer, the specialist holding
    its call (any specialist for a held one), supervisors; otherwise not found."""
    # Ids come from URL paths; one with a NUL cannot exist, and PostgreSQL
    # rejects NUL in a query parameter with an error rather than "no row".
    plausible = len(op_id) <= 64 and "\x00" not in op_id
    op = await session.get(Operation, op_id) if plausible else None
    if op is None:
        raise NotFound(f"no operation {op_id!r} for you", code="operation_not_found")
    if principal.role is Role.SUPERVISOR:
        return op
    if principal.role is Role.CUSTOMER and op.customer_id == principal.subject:
        return op
    if principal.role is Role.SPECIALIST:
        call = await session.get(Call, op.call_id)
        if call is not None and call.specialist_id == principal.subject:
            return op
        if op.state == OperationState.HELD.value:
            return op  # held operations are released by any specialist
    raise NotFound(f"no operation {op_id!r} for you", code="operation_not_found")


async def block_payee(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    account_no: str,
    reason: str,
    operation_id: str | None,
    now: float,
) -> dict[str, Any]:
    """Put a payee account on the fraud block list (once; audited)."""
    principal.require(Role.SPECIALIST, Role.SUPERVISOR)
    async with sessions() as session:
        if operation_id is not None:
            await visible_operation(session, principal, operation_id)
        existing = await session.get(BlockedPayee, account_no)
        if existing is None:
            session.add(
                BlockedPayee(
                    account_no=account_no,
                    reason=reason,
                    added_by=principal.subject,
                    added_at=datetime.fromtimestamp(now, tz=UTC),
                )
            )
            await audit.record(
                session,
                "risk.payee_blocked",
                at=now,
                actor_role=principal.role.value,
                actor_id=principal.subject,
                subject_type="payee",
                subject_id=account_no,
                data={"reason": reason, "operation_id": operation_id},
            )
            await session.commit()
    return {"account_no": account_no, "blocked": True, "reason": reason}
