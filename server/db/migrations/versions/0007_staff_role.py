"""staff role on specialists (specialist | supervisor)

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("specialists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="specialist")
        )


def downgrade() -> None:
    with op.batch_alter_table("specialists", schema=None) as batch_op:
        batch_op.drop_column("role")
