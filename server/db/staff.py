"""Staff sessions: what makes a desk or supervisor token revocable.

Every staff token names its session (``sid``); a session is live until it expires,
is revoked (logout, a supervisor, the CLI) or its account is disabled. The refresh
token that renews the short-lived access token is stored only as a SHA-256 hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_staff_id", "staff_id"),)

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The staff row (specialists.specialist_id); no foreign key, so that the same
    # table serves every kind of staff account.
    staff_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
