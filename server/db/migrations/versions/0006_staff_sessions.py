"""staff sessions: revocable staff tokens

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", server.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_staff_sessions_refresh_hash")),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_staff_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
