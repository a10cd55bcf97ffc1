"""What a desk login costs, bounded: password hashing and failed-login audit entries.

argon2 is slow on purpose and runs on worker threads; at most ``max_hashing``
attempts are in flight at once, so a burst of logins queues here instead of taking
every core from the event loop's other work (and each attempt sees the failures
counted before it: see :meth:`LoginGuard.slot`). Failed logins are audited up to a
budget per minute (:class:`server.auth.audit_budget.AuditBudget`); the next entry
written says how many were left out, so a burst is recorded as its volume.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from server import audit
from server.auth.audit_budget import AuditBudget

from .passwords import verify_password_async
from .principal import Role

if TYPE_CHECKING:
    from server.calls.service import CallService


class LoginGuard:
    def __init__(self, audit_per_minute: int, max_hashing: int = 2) -> None:
        self._hashing = asyncio.Semaphore(max_hashing)
        self._budget = AuditBudget(per_window=audit_per_minute, window_s=60.0)

    def slot(self) -> asyncio.Semaphore:
        """Held for a whole attempt: throttle check, hashing, counting a failure.

        Checking the throttle inside the slot is what makes a concurrent burst count:
        with the check outside, sixty attempts sent at once would all pass it before
        the first failure was recorded. Across nodes the overshoot is at most
        ``max_hashing`` attempts per node.
        """
        return self._hashing

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Verify on a worker thread; call with :meth:`slot` held."""
        return await verify_password_async(password_hash, password)

    async def record_failure(self, service: CallService, staff_id: str | None) -> None:
        now = service.clock()
        left_out = self._budget.admit(now)
        if left_out is None:
            return
        data: dict[str, object] = {} if staff_id else {"username_known": False}
        if left_out:
            data["left_out_before"] = left_out
        async with service.sessions() as session:
            await audit.record(
                session,
                "auth.login_failed",
                at=now,
                actor_role=Role.SPECIALIST.value,
                actor_id=staff_id,
                data=data,
            )
            await session.commit()


LOGIN_GUARD: web.AppKey[LoginGuard] = web.AppKey("login_guard", LoginGuard)
