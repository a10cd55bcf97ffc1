"""Compliance recording: opens each call's recorder, salvages after a crash,
answers the supervisor's questions, and sweeps expired recordings.

:class:`RecordingService` is the :class:`signaling.media.tap.MediaTapFactory`
the media node takes (see ``server/bootstrap.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.errors import Conflict, NotFound
from server.settings import Settings
from server.tasks import cancel_and_wait, stop_if_cancel_requested
from signaling.media.recording.keys import PublicKey, new_recording_key
from signaling.media.recording.segment import SegmentFormatError, salvage
from signaling.media.recording.storage import LocalStorage, RecordingStorage, S3Storage
from signaling.media.recording.track import ClosedSegment, SegmentLimits
from signaling.media.recording.writer import CallWriter
from signaling.media.tap import MediaTap, NullTap, Party

from .chain import Verdict, verify
from .index import SUBJECT, RecordingIndex, utc
from .models import Recording, RecordingMarker
from .tap import CallRecorder

log = structlog.get_logger(__name__)


class RecordingConfigError(RuntimeError):
    """The recording settings do not allow starting (production without a key)."""


def recording_applies(settings: Settings) -> bool:
    """Calls are recorded: media goes through the relay and recording is not turned off.

    In ``direct`` mode media goes peer to peer and there is nothing to record.
    """
    return settings.recording_enabled and settings.media_mode == "relay"


def storage_from(settings: Settings) -> RecordingStorage:
    if settings.recording_storage == "s3":
        if not settings.recording_s3_bucket:
            raise RecordingConfigError("CLOUDBRANCH_RECORDING_S3_BUCKET is required for s3")
        return S3Storage.connect(
            settings.recording_s3_bucket,
            endpoint_url=settings.recording_s3_endpoint_url,
            region=settings.recording_s3_region,
            prefix=settings.recording_s3_prefix,
        )
    return LocalStorage(Path(settings.recording_dir))


class RecordingService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        storage: RecordingStorage | None = None,
        request_keyframe: Callable[[str, Party], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.storage = storage if storage is not None else storage_from(settings)
        self.spool = Path(settings.recording_spool_dir)
        self.index = RecordingIndex(sessions, settings.recording_retention_days)
        self.public_key: PublicKey | None = (
            PublicKey.load(settings.recording_public_key) if settings.recording_public_key else None
        )
        self.limits = SegmentLimits(target_s=min(settings.recording_segment_s, 10.0))
        self.open_taps: dict[str, CallRecorder] = {}
        # The media node's: ask a party's sender for a keyframe (a PLI), so that
        # video segments can end on time at a keyframe. Called on the event loop.
        self.request_keyframe = request_keyframe
        self._sweeper: asyncio.Task[None] | None = None
        self._node_stopping = False
        if recording_applies(settings) and self.public_key is None:
            if not settings.dev_mode:
                raise RecordingConfigError(
                    "relay mode records every call: set CLOUDBRANCH_RECORDING_PUBLIC_KEY, "
                    "or CLOUDBRANCH_RECORDING_ENABLED=0 to run without recording"
                )
            log.warning("recording.unencrypted", reason="no recording public key (development)")

    # -- MediaTapFactory ----------------------------------------------------------------
    async def open(self, call_id: str, *, started_at: float) -> MediaTap:
        """The call's recorder from the moment its media starts on this node."""
        if not self.settings.recording_enabled:
            return NullTap()
        key = new_recording_key() if self.public_key is not None else None
        wrapped = self.public_key.wrap(key) if self.public_key is not None and key else None
        start, first_indices = await self.index.open(
            call_id,
            started_at=started_at,
            node_id=self.settings.node_id,
            encryption="AES-256-GCM" if key else "none",
            wrapped_key=wrapped,
        )
        loop = asyncio.get_running_loop()
        tap = CallRecorder(
            call_id,
            started_at=start,
            index=self.index,
            storage=self.storage,
            retain_until=utc(start) + self.index.retention,
            loop=loop,
        )
        writer = CallWriter(
            call_id=call_id,
            started_at=start,
            spool=self.spool,
            recording_key=key,
            wrapped_key=wrapped,
            on_closed=tap.segment_closed,
            on_problem=tap.problem,
            limits=self.limits,
            queue_size=self.settings.recording_queue_frames,
            first_indices=first_indices,
            want_keyframe=lambda party: self._want_keyframe(loop, call_id, party),
        )
        try:
            await asyncio.to_thread(self._check_writable)
        except OSError as exc:
            log.warning("recording.storage_unavailable", call_id=call_id, error=str(exc))
            tap._degrade("storage_unavailable", time.time())
        tap.attach(writer)
        tap.interrupt_on_close = self._node_stopping
        self.open_taps[call_id] = tap
        return tap

    def _want_keyframe(self, loop: asyncio.AbstractEventLoop, call_id: str, party: Party) -> None:
        """From the writer thread: hand the keyframe request to the loop, if anyone listens."""
        requester = self.request_keyframe
        if requester is not None:
            loop.call_soon_threadsafe(requester, call_id, party)

    def _check_writable(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        self.storage.check()

    async def close_call(self, call_id: str, *, interrupted: bool = False) -> None:
        tap = self.open_taps.pop(call_id, None)
        if tap is not None:
            await tap.close(interrupted=interrupted)

    # -- start and stop ---------------------------------------------------------------------
    async def start(self) -> None:
        """Salvage what a crash left in the spool, then start the retention sweeper."""
        await self.salvage_spool()
        async with self.sessions() as session:
            stale = (
                (
                    await session.execute(
                        select(Recording.call_id).where(
                            Recording.state == "recording",
                            Recording.node_id == self.settings.node_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
        for call_id in stale:
            await self.index.mark_interrupted(call_id, time.time(), "node_restarted")
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="recording-sweeper")

    def node_stopping(self) -> None:
        """This node is shutting down with calls still going (they may go on on another
        node): every recording open here, and any opened from now on, closes as
        interrupted, whoever closes it first (an embedded media node closes its calls'
        taps before this service's :meth:`stop` runs)."""
        self._node_stopping = True
        for tap in self.open_taps.values():
            tap.interrupt_on_close = True

    async def stop(self) -> None:
        self.node_stopping()
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        for call_id in list(self.open_taps):
            await self.close_call(call_id, interrupted=True)  # the calls may go on elsewhere

    # -- salvage ------------------------------------------------------------------------------
    async def salvage_spool(self) -> int:
        """Index and store every segment file a crash left open; never delete one."""
        parts = await asyncio.to_thread(lambda: sorted(self.spool.glob("*/*.part")))
        for path in parts:
            try:
                await self._salvage_one(path)
            except Exception as exc:
                if isinstance(exc, Conflict) and exc.code == "recording_not_found":
                    # The database has no recording for the file's call (restored
                    # from an older backup, or pointed at another database): keep
                    # the bytes, aside, for a person to look at, rather than try
                    # again at every start, each start slower than the last.
                    await asyncio.to_thread(path.rename, path.with_suffix(".orphan"))
                    log.warning("recording.segment_orphaned", file=path.name)
                else:
                    log.warning("recording.salvage_failed", file=path.name, error=str(exc))
        return len(parts)

    async def _salvage_one(self, path: Path) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        try:
            found = salvage(data)
        except SegmentFormatError:
            # Not even a whole header: keep the bytes, aside, for a person to look at.
            await asyncio.to_thread(path.rename, path.with_suffix(".unreadable"))
            log.warning("recording.segment_unreadable", file=path.name)
            return
        header = found.header
        if found.keep_bytes < len(data):
            await asyncio.to_thread(_truncate, path, found.keep_bytes)
            data = data[: found.keep_bytes]
        call_id = str(header["call_id"])
        clock = int(header["clock_rate"])
        start_s = float(header["start_s"])
        segment = ClosedSegment(
            call_id=call_id,
            party=header["party"],
            kind=header["kind"],
            codec=str(header["codec"]),
            track_index=int(header["track_index"]),
            segment_id=str(header["segment_id"]),
            start_s=start_s,
            end_s=start_s + found.end_ms / 1000 + (960 / clock if found.frames else 0.0),
            frames=found.frames,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            path=path,
            keyframe_start=bool(header.get("keyframe_start", True)),
            complete=found.complete,
        )
        indexed_sha = await self.index.has_segment(call_id, segment.storage_key)
        if indexed_sha is None:
            status = "closed" if found.complete else ("salvaged" if found.frames else "lost")
            await self.index.add_segment(segment, status, time.time())
        await self.index.mark_interrupted(call_id, time.time(), "writer_crashed")
        row_retain = await self._retain_until(call_id)
        await asyncio.to_thread(self.storage.put, segment.storage_key, path, row_retain)
        await asyncio.to_thread(path.unlink)
        log.info("recording.segment_salvaged", call_id=call_id, complete=found.complete)

    async def _retain_until(self, call_id: str) -> datetime:
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None:
                return datetime.now(UTC) + self.index.retention
            return row.retain_until

    # -- the supervisor's view ------------------------------------------------------------------
    async def status(self, call_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            row, segments, _ = await self.index.load(session, call_id)
            markers = (
                (
                    await session.execute(
                        select(RecordingMarker)
                        .where(RecordingMarker.call_id == call_id)
                        .order_by(RecordingMarker.at_s, RecordingMarker.id)
                    )
                )
                .scalars()
                .all()
            )
        if row is None:
            return {
                "call_id": call_id,
                "state": "none",
                "tracks": [],
                "markers": [],
                "retain_until": None,
                "legal_hold": False,
            }
        tracks: dict[tuple[str, str], dict[str, Any]] = {}
        for seg in segments:
            track = tracks.setdefault(
                (seg.party, seg.kind),
                {"party": seg.party, "kind": seg.kind, "segments": 0, "duration_s": 0.0},
            )
            track["segments"] += 1
            track["duration_s"] = round(track["duration_s"] + (seg.end_s - seg.start_s), 3)
        marker_views = []
        for m in markers:
            view: dict[str, Any] = {"at_s": m.at_s, "kind": m.kind}
            if m.operation_id:
                view["operation_id"] = m.operation_id
            if m.data:
                view["data"] = m.data
            marker_views.append(view)
        return {
            "call_id": call_id,
            "state": "deleted" if row.deleted_at is not None else row.state,
            "healthy": row.healthy,
            "encryption": row.encryption,
            "tracks": sorted(tracks.values(), key=lambda t: (t["party"], t["kind"])),
            "markers": marker_views,
            "retain_until": row.retain_until.isoformat(),
            "legal_hold": row.legal_hold,
            "final_hash": row.final_hash,
        }

    async def verify(self, call_id: str) -> Verdict:
        async with self.sessions() as session:
            row, segments, audited = await self.index.load(session, call_id)
        if row is None:
            raise NotFound(f"no recording of call {call_id!r}", code="recording_not_found")
        stored = await asyncio.to_thread(self._stored_hashes, call_id)
        return verify(call_id, segments, audited, stored, row.final_hash)

    def _stored_hashes(self, call_id: str) -> dict[str, str]:
        hashes: dict[str, str] = {}
        for key in self.storage.keys(f"{call_id}/"):
            hashes[key] = hashlib.sha256(self.storage.get(key)).hexdigest()
        return hashes

    async def set_hold(self, call_id: str, hold: bool, reason: str, by: Any) -> dict[str, Any]:
        now = time.time()
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.deleted_at is not None:
                raise NotFound(f"no recording of call {call_id!r}", code="recording_not_found")
            row.legal_hold = hold
            row.hold_reason = reason
            await audit.record(
                session,
                "recording.hold_set" if hold else "recording.hold_released",
                at=now,
                actor_role=by.role.value,
                actor_id=by.subject,
                subject_type=SUBJECT,
                subject_id=call_id,
                data={"hold": hold, "reason": reason},
            )
            await session.commit()
        try:
            await asyncio.to_thread(self._hold_objects, call_id, hold)
        except OSError as exc:
            # The index holds the recording either way (the sweeper obeys it); the
            # storage's own legal hold is a second lock, retried by the next PUT.
            log.warning("recording.storage_hold_failed", call_id=call_id, error=str(exc))
        return {"call_id": call_id, "legal_hold": hold, "reason": reason}

    def _hold_objects(self, call_id: str, hold: bool) -> None:
        for key in self.storage.keys(f"{call_id}/"):
            self.storage.set_legal_hold(key, hold)

    async def audit_access(self, call_id: str, what: str, by: Any) -> None:
        async with self.sessions() as session:
            await audit.record(
                session,
                "recording.accessed",
                at=time.time(),
                actor_role=by.role.value,
                actor_id=by.subject,
                subject_type=SUBJECT,
                subject_id=call_id,
                data={"what": what},
            )
            await session.commit()

    # -- retention ------------------------------------------------------------------------------
    async def sweep(self, now: float) -> list[str]:
        """Delete every closed recording past its retain-until without a hold; audit each."""
        async with self.sessions() as session:
            due = (
                (
                    await session.execute(
                        select(Recording.call_id).where(
                            Recording.retain_until <= utc(now),
                            Recording.legal_hold.is_(False),
                            Recording.deleted_at.is_(None),
                            Recording.state != "recording",
                        )
                    )
                )
                .scalars()
                .all()
            )
        deleted = []
        for call_id in due:
            try:
                if await self._delete_expired(call_id, now):
                    deleted.append(call_id)
            except Exception as exc:
                log.warning("recording.delete_failed", call_id=call_id, error=str(exc))
        return deleted

    async def _delete_expired(self, call_id: str, now: float) -> bool:
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.legal_hold or row.deleted_at is not None:
                return False  # held (or gone) since the query: keep it
        keys = await asyncio.to_thread(self.storage.keys, f"{call_id}/")
        for key in keys:
            await asyncio.to_thread(self.storage.delete, key)
        async with self.sessions() as session:
            row = await session.get(Recording, call_id)
            if row is None or row.deleted_at is not None:
                return False
            row.deleted_at = utc(now)
            await audit.record(
                session,
                "recording.deleted",
                at=now,
                subject_type=SUBJECT,
                subject_id=call_id,
                data={
                    "objects": len(keys),
                    "retain_until": row.retain_until.isoformat(),
                    "final_hash": row.final_hash,
                },
            )
            await session.commit()
        log.info("recording.deleted", call_id=call_id, objects=len(keys))
        return True

    async def _sweep_forever(self) -> None:
        while True:
            stop_if_cancel_requested("recording sweeper")
            try:
                await self.sweep(time.time())
            except Exception as exc:
                log.warning("recording.sweep_failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.recording_sweep_interval_s)


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)
        f.flush()
        import os

        os.fsync(f.fileno())
