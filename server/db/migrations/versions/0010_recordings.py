"""compliance recording index: recordings, segments, markers

Revision ID: 0010
Revises: 0004
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.types

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = server.db.types.UTCDateTime(timezone=True)
    op.create_table(
        "recordings",
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("problem", sa.String(length=200), nullable=True),
        sa.Column("was_interrupted", sa.Boolean(), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("ended_at", when, nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("encryption", sa.String(length=32), nullable=False),
        sa.Column("wrapped_keys", sa.JSON(), nullable=False),
        sa.Column("retain_until", when, nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.String(length=500), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("final_hash", sa.String(length=64), nullable=True),
        sa.Column("deleted_at", when, nullable=True),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recordings")),
    )
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("track_index", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("keyframe_start", sa.Boolean(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_segments")),
        sa.UniqueConstraint("call_id", "seq", name=op.f("uq_recording_segments_call_id")),
    )
    op.create_index(
        op.f("ix_recording_segments_call_id"), "recording_segments", ["call_id"], unique=False
    )
    op.create_table(
        "recording_markers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("at_s", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("operation_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_markers")),
    )
    op.create_index(
        op.f("ix_recording_markers_call_id"), "recording_markers", ["call_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_recording_markers_call_id"), table_name="recording_markers")
    op.drop_table("recording_markers")
    op.drop_index(op.f("ix_recording_segments_call_id"), table_name="recording_segments")
    op.drop_table("recording_segments")
    op.drop_table("recordings")
