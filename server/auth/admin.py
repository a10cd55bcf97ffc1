"""Disabling, enabling and revoking staff access: one audited step for the API and CLI."""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.errors import NotFound

from .staff import StaffAccess


class AccessAction(enum.StrEnum):
    DISABLE = "disable"
    ENABLE = "enable"
    REVOKE = "revoke"


_AUDIT_KIND = {
    AccessAction.DISABLE: "staff.disabled",
    AccessAction.ENABLE: "staff.enabled",
    AccessAction.REVOKE: "staff.sessions_revoked",
}


async def change_access(
    access: StaffAccess,
    session: AsyncSession,
    staff_id: str,
    action: AccessAction,
    *,
    actor_role: str,
    actor_id: str | None,
    now: float,
) -> dict[str, object]:
    """Apply ``action`` to ``staff_id`` and audit it, in the caller's transaction.

    Disabling also revokes every session, so a re-enabled account starts from a
    fresh login. Raises 404 ``specialist_not_found`` for an unknown account.
    """
    from server.db.models import Specialist

    account = await session.get(Specialist, staff_id)
    if account is None:
        raise NotFound(f"no specialist {staff_id!r}", code="specialist_not_found")
    revoked = 0
    if action is AccessAction.DISABLE:
        await access.set_active(session, staff_id, False)
        revoked = await access.revoke_all(session, staff_id, "disabled")
    elif action is AccessAction.ENABLE:
        await access.set_active(session, staff_id, True)
    else:
        revoked = await access.revoke_all(session, staff_id, "revoked")
    await audit.record(
        session,
        _AUDIT_KIND[action],
        at=now,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type="specialist",
        subject_id=staff_id,
        data={"sessions_revoked": revoked},
    )
    access.forget()
    return {"specialist_id": staff_id, "active": bool(account.active), "sessions_revoked": revoked}
