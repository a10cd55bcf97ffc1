"""A call's writer thread: frames in through a bounded queue, closed segments out.

:meth:`CallWriter.submit` is what the event loop calls for every frame: a
``put_nowait`` on a bounded queue, nothing else. The thread muxes, seals and
appends (see :mod:`.track`) and hands each closed segment to ``on_closed``
(index it, store it), also in the thread. A full queue drops the frame and
reports it; a video track that lost a frame waits for the next keyframe so what
is kept stays decodable.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from signaling.media.tap import EncodedFrame, Kind, Party

from .track import ClosedSegment, SegmentLimits, TrackWriter

log = structlog.get_logger(__name__)

_STOP = object()

BATCH_FRAMES = 64
"""Frames handed to the writer thread at once (about 0.4 s of a call's media)."""
BATCH_SPAN_S = 0.25
"""A batch goes to the thread at the latest once its frames span this long."""


@dataclass(frozen=True)
class _Gap:
    party: Party
    since: float


class CallWriter:
    """Owns one call's writer thread and its tracks."""

    def __init__(
        self,
        *,
        call_id: str,
        started_at: float,
        spool: Path,
        recording_key: bytes | None,
        wrapped_key: dict[str, Any] | None,
        on_closed: Callable[[ClosedSegment], None],
        on_problem: Callable[[str, float | None], None],
        limits: SegmentLimits | None = None,
        queue_size: int = 2000,
        first_indices: dict[tuple[str, str], int] | None = None,
        want_keyframe: Callable[[Party], None] | None = None,
    ) -> None:
        self.call_id = call_id
        self.started_at = started_at
        self.spool = spool
        self.key = recording_key
        self.wrapped_key = wrapped_key
        self.on_closed = on_closed
        self.on_problem = on_problem
        self.limits = limits or SegmentLimits()
        self.first_indices = first_indices or {}
        self.want_keyframe = want_keyframe
        # The queue holds batches; its bound in frames stays ``queue_size``.
        self.batch_frames = max(1, min(BATCH_FRAMES, queue_size))
        self.queue: queue.Queue[object] = queue.Queue(
            maxsize=max(1, queue_size // self.batch_frames)
        )
        self._batch: list[EncodedFrame] = []
        self.tracks: dict[tuple[Party, Kind], TrackWriter] = {}
        self._lock = threading.Lock()
        self._dropped: dict[tuple[Party, Kind], int] = {}
        self._seen_dropped: dict[tuple[Party, Kind], int] = {}
        self.segments_closed = 0
        self.failed = False
        self._thread = threading.Thread(
            target=self._run, name=f"recording-{call_id[:8]}", daemon=True
        )
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    # -- called on the event loop ------------------------------------------------------
    def submit(self, frame: EncodedFrame) -> bool:
        """Take a frame without blocking; False when the batch it completed found the
        queue full (that batch is lost)."""
        batch = self._batch
        batch.append(frame)
        if len(batch) >= self.batch_frames or frame.arrival - batch[0].arrival >= BATCH_SPAN_S:
            return self.flush()
        return True

    @property
    def pending(self) -> int:
        """Frames taken by :meth:`submit` and not yet handed to the thread."""
        return len(self._batch)

    def flush(self) -> bool:
        """Hand the frames taken so far to the thread; False (and they are lost) when
        the queue is full."""
        batch = self._batch
        if not batch:
            return True
        self._batch = []
        try:
            self.queue.put_nowait(batch)
            return True
        except queue.Full:
            with self._lock:
                for frame in batch:
                    track = (frame.party, frame.kind)
                    self._dropped[track] = self._dropped.get(track, 0) + 1
            return False

    def gap(self, party: Party, since: float) -> bool:
        flushed = self.flush()  # the frames before the gap go first
        try:
            self.queue.put_nowait(_Gap(party, since))
            return flushed
        except queue.Full:
            return False

    def stop(self, timeout: float) -> bool:
        """Finish every open segment and end the thread (blocking); True if it ended."""
        if not self._started:
            return True
        batch, self._batch = self._batch, []
        while batch and self._thread.is_alive():
            try:
                self.queue.put(batch, timeout=0.2)
                break
            except queue.Full:
                continue
        while self._thread.is_alive():
            try:
                self.queue.put(_STOP, timeout=0.2)
                break
            except queue.Full:
                continue
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                break
            if isinstance(item, list):
                for frame in item:
                    try:
                        self._frame(frame)
                    except Exception as exc:
                        self._fail(f"writer_error: {type(exc).__name__}", exc)
            elif isinstance(item, _Gap):
                try:
                    for (party, _kind), track in self.tracks.items():
                        if party == item.party:
                            self._hand_on(track.close())
                            track.resync()
                except Exception as exc:
                    self._fail(f"writer_error: {type(exc).__name__}", exc)
        for track in self.tracks.values():
            try:
                self._hand_on(track.close())
            except Exception as exc:
                track.abandon()
                self._fail(f"close_error: {type(exc).__name__}", exc)

    def _frame(self, frame: EncodedFrame) -> None:
        key = (frame.party, frame.kind)
        track = self.tracks.get(key)
        if track is None:
            track = TrackWriter(
                call_id=self.call_id,
                party=frame.party,
                kind=frame.kind,
                spool=self.spool,
                started_at=self.started_at,
                recording_key=self.key,
                wrapped_key=self.wrapped_key,
                limits=self.limits,
                first_index=self.first_indices.get(key, 0),
                want_keyframe=self.want_keyframe,
            )
            self.tracks[key] = track
        with self._lock:
            dropped = self._dropped.get(key, 0)
        if dropped != self._seen_dropped.get(key, 0):
            self._seen_dropped[key] = dropped
            if frame.kind == "video":
                track.need_keyframe = True  # what follows a lost frame cannot be decoded
        self._hand_on(track.add(frame))

    def _hand_on(self, closed: ClosedSegment | None) -> None:
        if closed is None:
            return
        self.segments_closed += 1
        try:
            self.on_closed(closed)
        except Exception as exc:
            self._fail(f"store_error: {type(exc).__name__}", exc)

    def _fail(self, reason: str, exc: BaseException) -> None:
        self.failed = True
        log.warning("recording.write_failed", call_id=self.call_id, reason=reason, error=str(exc))
        self.on_problem(reason, None)
