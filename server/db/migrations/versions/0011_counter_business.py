"""the counter's everyday business: passbooks, loss reports, documents

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:30:00

Every passbook account that exists already gets its printed passbook, so a
database seeded before this revision can report it lost like a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = server.db.types.UTCDateTime(timezone=True)
    op.create_table(
        "passbooks",
        sa.Column("passbook_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("issued_at", when, nullable=False),
        sa.Column("replaces", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_passbooks_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_passbooks_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("passbook_id", name=op.f("pk_passbooks")),
    )
    op.create_index(op.f("ix_passbooks_account_id"), "passbooks", ["account_id"])
    op.create_index(op.f("ix_passbooks_customer_id"), "passbooks", ["customer_id"])
    op.create_table(
        "loss_reports",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("medium_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reported_at", when, nullable=False),
        sa.Column("formal_at", when, nullable=True),
        sa.Column("replaced_at", when, nullable=True),
        sa.Column("replacement_id", sa.String(length=32), nullable=True),
        sa.Column("operation_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_loss_reports_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_loss_reports_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_loss_reports")),
    )
    op.create_index(op.f("ix_loss_reports_account_id"), "loss_reports", ["account_id"])
    op.create_index(op.f("ix_loss_reports_customer_id"), "loss_reports", ["customer_id"])
    op.create_index(op.f("ix_loss_reports_medium_id"), "loss_reports", ["medium_id"])
    op.create_table(
        "documents",
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("operation_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=100), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_documents_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_documents")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_documents_operation_id")),
    )
    op.create_index(op.f("ix_documents_call_id"), "documents", ["call_id"])
    op.create_index(op.f("ix_documents_customer_id"), "documents", ["customer_id"])
    # Passbooks for the passbook accounts that already exist: the book's number
    # is the account's with a "PB" prefix (numbers are at most 30 digits here).
    op.execute(
        "INSERT INTO passbooks (passbook_id, account_id, customer_id, state, issued_at, replaces) "
        "SELECT 'PB' || account_id, account_id, customer_id, 'active', opened_at, NULL "
        "FROM accounts WHERE kind = 'passbook' AND customer_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("loss_reports")
    op.drop_table("passbooks")
