"""a customer's one open call no longer counts a call in wrap-up

A customer who taps again while the specialist is still wrapping up gets a new
call: wrap-up is the specialist's time, not an open call for the customer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD = "state != 'ended'"
_NEW = "state NOT IN ('ended', 'wrap_up')"


def _replace(where: str) -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("uq_calls_open_customer")
        batch_op.create_index(
            "uq_calls_open_customer",
            ["customer_id"],
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def upgrade() -> None:
    _replace(_NEW)


def downgrade() -> None:
    _replace(_OLD)
