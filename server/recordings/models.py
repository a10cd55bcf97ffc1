"""Tables of the recording index: one row per recording, segment and marker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class Recording(Base):
    """A call's recording: its state, health, key, retention and the manifest's final hash."""

    __tablename__ = "recordings"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # recording | complete | interrupted
    state: Mapped[str] = mapped_column(String(16))
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    problem: Mapped[str | None] = mapped_column(String(200))
    # An interruption (crash, storage failure) happened at some point: a recording
    # that continued afterwards still closes as interrupted.
    was_interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    node_id: Mapped[str] = mapped_column(String(64))
    encryption: Mapped[str] = mapped_column(String(32))
    # Every wrapped key this recording used (a restart after a crash uses a new key).
    wrapped_keys: Mapped[list[Any]] = mapped_column(JSON, default=list)
    retain_until: Mapped[datetime]
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str | None] = mapped_column(String(500))
    segments: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    final_hash: Mapped[str | None] = mapped_column(String(64))
    deleted_at: Mapped[datetime | None]


class RecordingSegment(Base):
    """One stored segment, in chain order: ``entry_hash`` covers it and the one before."""

    __tablename__ = "recording_segments"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    party: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    codec: Mapped[str] = mapped_column(String(16))
    track_index: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # closed | salvaged (cut at its last whole chunk after a crash) | lost (nothing whole)
    status: Mapped[str] = mapped_column(String(16))
    keyframe_start: Mapped[bool] = mapped_column(Boolean, default=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class RecordingMarker(Base):
    """A moment that matters, at its media time: notice, decision, warning, confirmation..."""

    __tablename__ = "recording_markers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    at_s: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(48))
    operation_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
