"""The recording index in SQL: recordings, their chained segments, and markers.

Each segment's row and its ``recording.segment`` audit entry are written in one
transaction, so the index and the audit chain never disagree about what was stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.db.banking import AuditEntry
from server.errors import Conflict
from signaling.media.recording.track import ClosedSegment

from .chain import IndexedSegment, entry_content, entry_hash, genesis
from .models import Recording, RecordingMarker, RecordingSegment

SUBJECT = "recording"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class RecordingIndex:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], retention_days: int) -> None:
        self.sessions = sessions
        self.retention = timedelta(days=retention_days)

    async def open(
        self,
        call_id: str,
        *,
        started_at: float,
        node_id: str,
        encryption: str,
        wrapped_key: dict[str, Any] | None,
    ) -> tuple[float, dict[tuple[str, str], int]]:
        """Start (or, after a crash elsewhere, continue) a call's recording.

        Returns the recording's start (media time zero) and the next segment
        index of every track already recorded.
        """
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            resumed = row is not None
            if row is None:
                row = Recording(
                    call_id=call_id,
                    state="recording",
                    healthy=True,
                    was_interrupted=False,
                    started_at=utc(started_at),
                    node_id=node_id,
                    encryption=encryption,
                    wrapped_keys=[wrapped_key] if wrapped_key else [],
                    retain_until=utc(started_at) + self.retention,
                    legal_hold=False,
                    segments=0,
                    last_hash=genesis(call_id),
                )
                session.add(row)
            else:
                if row.deleted_at is not None:
                    raise Conflict("this call's recording was deleted", code="recording_deleted")
                if row.state == "recording" and row.node_id != node_id:
                    # Still open: the node that recorded it died (its open segment
                    # is lost with it). The gap is part of the record.
                    row.was_interrupted = True
                    session.add(
                        RecordingMarker(
                            call_id=call_id,
                            at_s=max(started_at - row.started_at.timestamp(), 0.0),
                            kind="node_lost",
                            data={"node_id": row.node_id},
                        )
                    )
                row.state = "recording"
                row.healthy = True
                row.problem = None
                row.node_id = node_id
                row.final_hash = None
                if wrapped_key:
                    row.wrapped_keys = [*row.wrapped_keys, wrapped_key]
            start = row.started_at.timestamp()
            await audit.record(
                session,
                "recording.resumed" if resumed else "recording.started",
                at=started_at,
                subject_type=SUBJECT,
                subject_id=call_id,
                data={"node_id": node_id, "encryption": encryption},
            )
            if not resumed:
                await _notice_marker(session, call_id, start)
            if resumed:
                session.add(
                    RecordingMarker(
                        call_id=call_id,
                        at_s=max(started_at - start, 0.0),
                        kind="recording_resumed",
                        data={"node_id": node_id},
                    )
                )
            tracks = await session.execute(
                select(
                    RecordingSegment.party,
                    RecordingSegment.kind,
                    func.max(RecordingSegment.track_index),
                )
                .where(RecordingSegment.call_id == call_id)
                .group_by(RecordingSegment.party, RecordingSegment.kind)
            )
            next_index = {(p, k): int(m) + 1 for p, k, m in tracks.all()}
            await session.commit()
        return start, next_index

    async def has_segment(self, call_id: str, storage_key: str) -> str | None:
        """The indexed SHA-256 of a stored key, if the index has it."""
        async with self.sessions() as session:
            found = await session.execute(
                select(RecordingSegment.sha256).where(
                    RecordingSegment.call_id == call_id,
                    RecordingSegment.storage_key == storage_key,
                )
            )
            return found.scalar_one_or_none()

    async def add_segment(self, segment: ClosedSegment, status: str, at: float) -> int:
        """Chain a closed segment onto its recording (and the audit log); its position."""
        async with self.sessions() as session:
            row = await session.get(Recording, segment.call_id)
            if row is None:
                raise Conflict("no recording for that call", code="recording_not_found")
            seq, prev = row.segments, row.last_hash
            content = entry_content(
                call_id=segment.call_id,
                seq=seq,
                party=segment.party,
                kind=segment.kind,
                codec=segment.codec,
                track_index=segment.track_index,
                start_s=segment.start_s,
                end_s=segment.end_s,
                frames=segment.frames,
                size=segment.size,
                sha256=segment.sha256,
                status=status,
                prev_hash=prev,
            )
            own = entry_hash(content)
            moved = await session.execute(
                update(Recording)
                .where(Recording.call_id == segment.call_id, Recording.segments == seq)
                .values(segments=seq + 1, last_hash=own)
            )
            if not getattr(moved, "rowcount", 0):
                raise Conflict("the recording's chain moved meanwhile", code="recording_changed")
            session.add(
                RecordingSegment(
                    call_id=segment.call_id,
                    seq=seq,
                    party=segment.party,
                    kind=segment.kind,
                    codec=segment.codec,
                    track_index=segment.track_index,
                    storage_key=segment.storage_key,
                    start_s=content["start_s"],
                    end_s=content["end_s"],
                    frames=segment.frames,
                    size=segment.size,
                    sha256=segment.sha256,
                    status=status,
                    keyframe_start=segment.keyframe_start,
                    prev_hash=prev,
                    entry_hash=own,
                )
            )
            await audit.record(
                session,
                "recording.segment",
                at=at,
                subject_type=SUBJECT,
                subject_id=segment.call_id,
                data=content,
            )
            await session.commit()
        return seq

    async def set_health(self, call_id: str, healthy: bool, problem: str | None, at: float) -> None:
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.healthy == healthy:
                return
            row.healthy = healthy
            row.problem = problem[:200] if problem else None
            if not healthy:
                row.was_interrupted = True
                session.add(
                    RecordingMarker(
                        call_id=call_id,
                        at_s=max(at - row.started_at.timestamp(), 0.0),
                        kind="recording_degraded",
                        data={"problem": row.problem},
                    )
                )
                await audit.record(
                    session,
                    "recording.degraded",
                    at=at,
                    subject_type=SUBJECT,
                    subject_id=call_id,
                    data={"problem": row.problem},
                )
            await session.commit()

    async def mark(
        self,
        call_id: str,
        kind: str,
        at: float,
        operation_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """Store a marker at its media time; False when the call has no recording."""
        async with self.sessions() as session:
            added = await add_marker(session, call_id, kind, at, operation_id, data)
            await session.commit()
        return added

    async def close(self, call_id: str, at: float, *, interrupted: bool = False) -> None:
        """Close the manifest with its final hash; the retention clock starts now."""
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.state != "recording":
                return
            if interrupted:
                row.was_interrupted = True
            row.state = "interrupted" if row.was_interrupted else "complete"
            row.ended_at = utc(at)
            row.final_hash = row.last_hash
            row.retain_until = max(row.retain_until, utc(at) + self.retention)
            await audit.record(
                session,
                "recording.closed",
                at=at,
                subject_type=SUBJECT,
                subject_id=call_id,
                data={
                    "state": row.state,
                    "segments": row.segments,
                    "final_hash": row.final_hash,
                },
            )
            await session.commit()

    async def mark_interrupted(self, call_id: str, at: float, reason: str) -> None:
        """A recording whose writer died (found after a restart)."""
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.state == "complete":
                return
            changed = row.state != "interrupted"
            row.state = "interrupted"
            row.was_interrupted = True
            row.healthy = False
            row.problem = reason[:200]
            if changed:
                await audit.record(
                    session,
                    "recording.interrupted",
                    at=at,
                    subject_type=SUBJECT,
                    subject_id=call_id,
                    data={"reason": reason},
                )
            await session.commit()

    async def load(
        self, session: AsyncSession, call_id: str
    ) -> tuple[Recording | None, list[IndexedSegment], dict[int, dict[str, Any]]]:
        """The recording row, its segments in chain order, and their audit entries."""
        row = await session.get(Recording, call_id)
        segments = (
            (
                await session.execute(
                    select(RecordingSegment)
                    .where(RecordingSegment.call_id == call_id)
                    .order_by(RecordingSegment.seq)
                )
            )
            .scalars()
            .all()
        )
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(
                        AuditEntry.kind == "recording.segment",
                        AuditEntry.subject_type == SUBJECT,
                        AuditEntry.subject_id == call_id,
                    )
                )
            )
            .scalars()
            .all()
        )
        audited = {int(e.data["seq"]): dict(e.data) for e in entries if "seq" in e.data}
        return row, [indexed(s) for s in segments], audited


def indexed(row: RecordingSegment) -> IndexedSegment:
    return IndexedSegment(
        seq=row.seq,
        party=row.party,
        kind=row.kind,
        codec=row.codec,
        track_index=row.track_index,
        storage_key=row.storage_key,
        start_s=row.start_s,
        end_s=row.end_s,
        frames=row.frames,
        size=row.size,
        sha256=row.sha256,
        status=row.status,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


async def add_marker(
    session: AsyncSession,
    call_id: str,
    kind: str,
    at: float,
    operation_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """A marker in the caller's transaction; False (nothing added) without a recording."""
    started = await session.execute(
        select(Recording.started_at).where(Recording.call_id == call_id)
    )
    start = started.scalar_one_or_none()
    if start is None:
        return False
    session.add(
        RecordingMarker(
            call_id=call_id,
            at_s=round(max(at - start.timestamp(), 0.0), 3),
            kind=kind,
            operation_id=operation_id,
            data=data or {},
        )
    )
    return True


async def _notice_marker(session: AsyncSession, call_id: str, start: float) -> None:
    """The notice went out before media (and this recording) started: mark it at 0."""
    notice = (
        await session.execute(
            select(AuditEntry)
            .where(
                AuditEntry.kind == "recording.notice_sent",
                AuditEntry.subject_type == "call",
                AuditEntry.subject_id == call_id,
            )
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if notice is not None:
        session.add(
            RecordingMarker(
                call_id=call_id,
                at_s=round(max(notice.at.timestamp() - start, 0.0), 3),
                kind="recording_notice",
                data={"to": notice.data.get("to", [])},
            )
        )
