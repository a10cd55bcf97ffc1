"""A call's recording as the relay sees it: the :class:`MediaTap` the recorder gives out.

``write`` only queues (see :class:`CallWriter`); everything that touches the
database runs as a task owned by this tap, everything that touches files in the
writer thread. A lost frame or a failing store turns ``healthy`` false at once,
logs it, and records the degradation in the index, which is what operations
consult before anything that needs a recording.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import structlog

from signaling.media.recording.storage import RecordingStorage
from signaling.media.recording.track import ClosedSegment
from signaling.media.recording.writer import CallWriter
from signaling.media.tap import EncodedFrame, Party

from .index import RecordingIndex

log = structlog.get_logger(__name__)

_INDEX_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 20.0
FLUSH_AFTER_S = 0.1
"""A partial batch of frames goes to the writer thread at the latest this long after
its first frame (the writer sends full batches on its own)."""


class CallRecorder:
    """Implements :class:`signaling.media.tap.MediaTap` for one call."""

    def __init__(
        self,
        call_id: str,
        *,
        started_at: float,
        index: RecordingIndex,
        storage: RecordingStorage,
        retain_until: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.call_id = call_id
        self.started_at = started_at
        self.index = index
        self.storage = storage
        self.retain_until = retain_until
        self.loop = loop
        self.writer: CallWriter | None = None
        self._healthy = True
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        #: Set when this node shuts down with the call still going: whoever closes the
        #: tap then (the media node, as it lets go of the call) closes it interrupted.
        self.interrupt_on_close = False
        self.dropped = 0

    def attach(self, writer: CallWriter) -> None:
        self.writer = writer
        writer.start()

    # -- MediaTap ------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self._healthy

    def write(self, frame: EncodedFrame) -> None:
        if self._closed or self.writer is None:
            return
        if not self.writer.submit(frame):
            self.dropped += 1
            self._degrade("queue_full", frame.arrival)
        if self._flush_timer is None and self.writer.pending:
            self._flush_timer = self.loop.call_later(FLUSH_AFTER_S, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if self.writer is not None and not self._closed and not self.writer.flush():
            self.dropped += 1
            self._degrade("queue_full", time.time())

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        self._spawn(self.index.mark(self.call_id, kind, at, operation_id))

    def track_gap(self, party: Party, *, since: float) -> None:
        if self.writer is not None and not self.writer.gap(party, since):
            self._degrade("queue_full", since)
        self._spawn(self.index.mark(self.call_id, "track_gap", since, data={"party": party}))

    async def close(self, *, interrupted: bool = False) -> None:
        """Finish every open segment and close the manifest.

        ``interrupted``: the recording stops while the call goes on (this node is
        shutting down), so it closes as interrupted rather than complete.
        """
        if self._closed:
            return
        self._closed = True
        ended = time.time()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self.writer is not None:
            stopped = await asyncio.to_thread(self.writer.stop, _STOP_TIMEOUT_S)
            if not stopped:
                self._degrade("writer_stuck", ended)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        interrupted = interrupted or self.interrupt_on_close or not self._healthy
        await self.index.close(self.call_id, ended, interrupted=interrupted)

    # -- from the writer thread ------------------------------------------------------------
    def segment_closed(self, segment: ClosedSegment) -> None:
        """Index, then store, then remove from the spool (runs in the writer thread).

        A failure leaves the file in the spool, where the next start salvages it.
        """
        future = asyncio.run_coroutine_threadsafe(
            self.index.add_segment(segment, "closed", time.time()), self.loop
        )
        future.result(_INDEX_TIMEOUT_S)
        self.storage.put(segment.storage_key, segment.path, self.retain_until)
        segment.path.unlink()

    def problem(self, reason: str, at: float | None) -> None:
        """The writer thread reports a failure."""
        self.loop.call_soon_threadsafe(self._degrade, reason, at or time.time())

    # -- helpers -----------------------------------------------------------------------------
    def _degrade(self, reason: str, at: float) -> None:
        if not self._healthy:
            return
        self._healthy = False
        log.warning("recording.degraded", call_id=self.call_id, reason=reason)
        self._spawn(self.index.set_health(self.call_id, False, reason, at))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "recording.index_failed",
                call_id=self.call_id,
                error=type(task.exception()).__name__,
            )
