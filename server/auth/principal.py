"""The authenticated caller of a request or socket."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from server.errors import Forbidden


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    SPECIALIST = "specialist"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str
    # The staff session a desk or supervisor token belongs to (server/auth/staff.py);
    # None for customers and for development tokens.
    session_id: str | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"this needs the {allowed} role", code="wrong_role")
