"""The recorder as the benchmark's media nodes use it: the real write path per call
(bounded queue, writer thread, Matroska segments, AES-256-GCM chunks, spool file
with fsync, copy into local storage), without the database index and audit rows.
The same for both backends, so their recorder figures compare."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from signaling.media.recording.keys import new_recording_key
from signaling.media.recording.storage import LocalStorage
from signaling.media.recording.track import ClosedSegment
from signaling.media.recording.writer import CallWriter
from signaling.media.tap import EncodedFrame, Party

QUEUE_FRAMES = 5_000


class WriterTap:
    def __init__(self, writer: CallWriter) -> None:
        self.writer = writer
        self.frames = 0
        self.dropped = 0
        self._timer = False

    @property
    def healthy(self) -> bool:
        return self.dropped == 0

    def write(self, frame: EncodedFrame) -> None:
        self.frames += 1
        if not self.writer.submit(frame):
            self.dropped += 1
        # As server/recordings/tap.py: a batch that fills slowly is handed over
        # after a short while, not only when it is full.
        if self.writer.pending and not self._timer:
            self._timer = True
            asyncio.get_running_loop().call_later(0.1, self._flush)

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        return None

    def track_gap(self, party: Party, *, since: float) -> None:
        if not self.writer.gap(party, since):
            self.dropped += 1

    def _flush(self) -> None:
        self._timer = False
        if not self.writer.flush():
            self.dropped += 1

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.stop, 60)


class WriterTaps:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
        self.storage = LocalStorage(self.root / "store")
        self.taps: list[WriterTap] = []
        self.segments = 0

    def _closed(self, segment: ClosedSegment) -> None:
        self.storage.put(segment.storage_key, segment.path, retain_until=None)  # type: ignore[arg-type]
        segment.path.unlink()
        self.segments += 1

    async def open(self, call_id: str, *, started_at: float) -> WriterTap:
        writer = CallWriter(
            call_id=call_id,
            started_at=started_at,
            spool=self.root / "spool",
            recording_key=new_recording_key(),
            wrapped_key=None,
            on_closed=self._closed,
            on_problem=lambda reason, at: print(f"recorder: {reason}", file=sys.stderr),
            queue_size=QUEUE_FRAMES,
        )
        writer.start()
        tap = WriterTap(writer)
        self.taps.append(tap)
        return tap

    def report(self) -> None:
        frames = sum(t.frames for t in self.taps)
        dropped = sum(t.dropped for t in self.taps)
        print(
            f"recorder: {len(self.taps)} calls, {frames} frames, {dropped} dropped, "
            f"{self.segments} segments stored",
            file=sys.stderr,
        )
