"""Staff login and logout: credentials in, an audited staff session out.

The rules of a login, in order: a locked account or client address is refused
before any lookup, hashing or audit row (429); the password is checked on a
worker thread inside the guard's slot, so attempts sent at once are counted one
by one; a failure is counted against both keys and audited within its budget; a
success forgives the account's failures and opens a session of the account's
role, audited in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from server import audit
from server.db.models import Specialist
from server.errors import Unauthorized

from .principal import Principal, Role

if TYPE_CHECKING:
    from server.calls.service import CallService

    from .login import LoginGuard
    from .staff import IssuedTokens, StaffAccess
    from .throttle import Throttle


def staff_role(stored: str | None) -> Role:
    """The token role of a staff account: supervisor when stored so, else specialist."""
    return Role.SUPERVISOR if stored == Role.SUPERVISOR.value else Role.SPECIALIST


@dataclass(frozen=True)
class LoggedIn:
    issued: IssuedTokens
    specialist_id: str
    display_name: str
    role: Role

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.issued.token,
            "specialist_id": self.specialist_id,
            "display_name": self.display_name,
            "role": self.role.value,
            "refresh_token": self.issued.refresh_token,
            "expires_in_s": self.issued.expires_in_s,
        }


class DeskLogin:
    def __init__(
        self, calls: CallService, guard: LoginGuard, throttle: Throttle, access: StaffAccess
    ) -> None:
        self._calls = calls
        self._guard = guard
        self._throttle = throttle
        self._access = access

    async def login(self, username: str, password: str, address: str) -> LoggedIn:
        """A new staff session for right credentials; 401 ``invalid_credentials``
        otherwise (the same answer for an unknown, disabled or wrong account)."""
        calls, guard = self._calls, self._guard
        keys = {"login:account": username.strip().lower(), "login:address": address}
        async with guard.slot():
            # Before any lookup, hashing or audit row: a locked account or address costs
            # nothing. Inside the slot, so attempts sent at once are counted one by one.
            await self._throttle.check(keys)
            async with calls.sessions() as session:
                found = await session.execute(
                    select(Specialist).where(Specialist.username == username)
                )
                specialist = found.scalars().first()
            password_hash = specialist.password_hash if specialist and specialist.active else None
            ok = await guard.verify(password_hash, password) and specialist is not None
            if not ok:
                await self._throttle.failed(keys)
        if not ok or specialist is None:
            await guard.record_failure(calls, specialist.specialist_id if specialist else None)
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        await self._throttle.forgive("login:account", keys["login:account"])
        # Staff rows that carry a role (supervisors) get a session of that role.
        role = staff_role(specialist.role)
        async with calls.sessions() as session:
            issued = await self._access.open_session(session, specialist.specialist_id, role)
            await audit.record(
                session,
                "auth.login",
                at=calls.clock(),
                actor_role=role.value,
                actor_id=specialist.specialist_id,
                data={"session_id": issued.session_id},
            )
            await session.commit()
        return LoggedIn(issued, specialist.specialist_id, specialist.display_name, role)

    async def logout(self, principal: Principal) -> None:
        """End the caller's staff session (development tokens have none: nothing to end)."""
        if principal.session_id is None:
            return
        calls = self._calls
        async with calls.sessions() as session:
            await self._access.revoke_session(session, principal.session_id, "logout")
            await audit.record(
                session,
                "auth.logout",
                at=calls.clock(),
                actor_role=principal.role.value,
                actor_id=principal.subject,
                data={"session_id": principal.session_id},
            )
            await session.commit()
