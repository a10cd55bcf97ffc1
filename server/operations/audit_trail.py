"""An operation's audit entries, each mirrored as a marker in the call's recording."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.auth.principal import Principal
from server.recordings.hooks import mark_operation_event


async def audit_operation(
    session: AsyncSession,
    kind: str,
    operation_id: str,
    now: float,
    by: Principal | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One audit entry about an operation, in the caller's transaction."""
    await audit.record(
        session,
        kind,
        at=now,
        actor_role=by.role.value if by else None,
        actor_id=by.subject if by else None,
        subject_type="operation",
        subject_id=operation_id,
        data=data,
    )
    await mark_operation_event(session, kind, operation_id, now, data)  # recording index
