"""The media node's side of the analysis: a tap per call that samples the customer's video.

:class:`AnalysingTaps` wraps the node's other tap factory (the compliance
recorder): each call gets a :class:`ComposedTap` that writes every frame to the
recorder first and then to the call's :class:`AnalyserTap`. The analyser only
batches references to the customer's encoded video frames on the loop and, every
``sample_interval_s``, submits the batch to the worker pool; everything costly
happens in the worker process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from signaling.media.tap import EncodedFrame, MediaTap, MediaTapFactory, NullTap, Party

from .state import CallIntegrity, Sample
from .worker import AnalysisPool, EncodedSample, SampleResult, WireFrame

__all__ = [
    "AnalyserTap",
    "AnalysingTaps",
    "ComposedTap",
    "IntegrityFeed",
    "IntegrityListener",
    "StateSource",
]

log = structlog.get_logger(__name__)

#: A batch that grows past this many frames (a stalled clock) is dropped, not kept.
MAX_BATCH_FRAMES = 240
KEYFRAME_ASK_INTERVAL_S = 1.0


class IntegrityListener(Protocol):
    def integrity_changed(self, call_id: str, state: CallIntegrity) -> None:
        """Called on the loop when a call's status or active signals change; must not block."""


class IntegrityFeed(Protocol):
    """Everything a call's state is made of, in order: what a media node in its own
    process publishes so that the servers keep the same state (server/integrity/remote.py)."""

    def analysed(
        self,
        call_id: str,
        at: float,
        signals: tuple[tuple[str, float, float, str], ...],
        sample: Sample | None,
    ) -> None:
        """A sample's findings were applied to the call's state; must not block."""

    def stopped(self, call_id: str, at: float) -> None:
        """The call's analysis stopped (its customer leg went away, or it ended)."""


class StateSource(Protocol):
    """Calls analysed elsewhere (another process's media node), as this process knows them."""

    def state(self, call_id: str) -> CallIntegrity | None: ...

    def forget(self, call_id: str) -> None: ...


@dataclass
class TrackCounters:
    frames: int = 0
    samples: int = 0
    dropped: int = 0
    waiting: int = 0  # frames skipped while waiting for a keyframe


class AnalyserTap:
    """Samples one call's customer video into the pool; keeps the call's integrity state."""

    def __init__(
        self,
        call_id: str,
        pool: AnalysisPool,
        state: CallIntegrity,
        *,
        sample_interval_s: float,
        changed: Callable[[str, CallIntegrity], None],
        request_keyframe: Callable[[], None] | None = None,
        feed: IntegrityFeed | None = None,
    ) -> None:
        self.call_id = call_id
        self._feed = feed
        self.state = state
        self.counters = TrackCounters()
        self._pool = pool
        self._interval = sample_interval_s
        self._changed = changed
        self._request_keyframe = request_keyframe
        self._batch: list[WireFrame] = []
        self._codec: str | None = None
        self._last_submit = 0.0
        self._restart = True
        self._new_clock = True
        self._waiting_for_keyframe = True
        self._last_keyframe_ask = 0.0
        self._closed = False
        pool.subscribe(call_id, self._result)

    healthy = True  # analysis losing samples never makes a recording unhealthy

    def write(self, frame: EncodedFrame) -> None:
        if self._closed or frame.party != "customer" or frame.kind != "video":
            return
        self.counters.frames += 1
        if not self._pool.running:
            # Analysis not running (yet, or at all): nothing to keep for it, and
            # no keyframe to ask the customer's sender for (each one costs it).
            self._batch = []
            self._waiting_for_keyframe = self._restart = True
            return
        if self._waiting_for_keyframe:
            if not frame.keyframe:
                self.counters.waiting += 1
                self._ask_keyframe(frame.arrival)
                return
            self._waiting_for_keyframe = False
            self._last_submit = frame.arrival - self._interval  # submit this one at once
        if frame.codec != self._codec:
            self._codec, self._restart, self._new_clock = frame.codec, True, True
            self._batch = []
        self._batch.append(
            (frame.data, frame.timestamp, frame.clock_rate, frame.arrival, frame.keyframe)
        )
        if len(self._batch) > MAX_BATCH_FRAMES:
            self._drop(frame.arrival)
        elif frame.arrival - self._last_submit >= self._interval:
            self._submit(frame.arrival)

    def _submit(self, now: float) -> None:
        sample = EncodedSample(
            self.call_id,
            self._codec or "VP8",
            tuple(self._batch),
            restart=self._restart,
            new_clock=self._new_clock,
        )
        self._batch = []
        self._last_submit = now
        if self._pool.submit(sample):
            self.counters.samples += 1
            self._restart = self._new_clock = False
        else:
            self._drop(now, already_counted=True)

    def _drop(self, now: float, already_counted: bool = False) -> None:
        """A lost sample breaks the decoder's chain: start again at a keyframe."""
        self.counters.dropped += 1
        if not already_counted:
            self._pool.dropped += 1
        self._batch = []
        self._waiting_for_keyframe, self._restart = True, True
        self._ask_keyframe(now)

    def _ask_keyframe(self, now: float) -> None:
        if (
            self._request_keyframe is not None
            and now - self._last_keyframe_ask >= KEYFRAME_ASK_INTERVAL_S
        ):
            self._last_keyframe_ask = now
            self._request_keyframe()

    def _result(self, result: SampleResult) -> None:
        if self._closed:
            return
        sample = Sample(result.at, result.faces, result.colour) if result.colour else None
        changed = self.state.update(result.at, result.signals, sample)
        if self._feed is not None:
            self._feed.analysed(self.call_id, result.at, result.signals, sample)
        if changed:
            self._changed(self.call_id, self.state)

    def _stop(self, at: float) -> None:
        changed = self.state.stop(at)
        if self._feed is not None:
            self._feed.stopped(self.call_id, at)
        if changed:
            self._changed(self.call_id, self.state)

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        return None

    def track_gap(self, party: Party, *, since: float) -> None:
        if party != "customer":
            return
        self._batch = []
        self._waiting_for_keyframe, self._restart, self._new_clock = True, True, True
        self._stop(since)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.unsubscribe(self.call_id)
        self._stop(time.time())


class ComposedTap:
    """The recorder's tap first, then the analyser; the analyser never fails the recorder."""

    def __init__(self, primary: MediaTap, analyser: AnalyserTap) -> None:
        self.primary = primary
        self.analyser = analyser
        self.analyser_errors = 0

    @property
    def healthy(self) -> bool:
        return self.primary.healthy

    def write(self, frame: EncodedFrame) -> None:
        self.primary.write(frame)
        try:
            self.analyser.write(frame)
        except Exception:
            self.analyser_errors += 1
            if self.analyser_errors == 1:
                log.exception("integrity.tap_failed", call_id=self.analyser.call_id)

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        self.primary.mark(kind, at=at, operation_id=operation_id)

    def track_gap(self, party: Party, *, since: float) -> None:
        self.primary.track_gap(party, since=since)
        self.analyser.track_gap(party, since=since)

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.analyser.close()


class AnalysingTaps:
    """A :class:`MediaTapFactory` that adds the integrity analyser to another factory's taps.

    The worker pool starts (in the background) when the first call's media
    starts, so a server that relays no video never spawns a worker.
    """

    def __init__(
        self,
        inner: MediaTapFactory | None,
        pool: AnalysisPool,
        *,
        sample_interval_s: float,
        listener: IntegrityListener | None = None,
        request_keyframe: Callable[[str, Party], None] | None = None,
        feed: IntegrityFeed | None = None,
        remote: StateSource | None = None,
    ) -> None:
        self.inner = inner
        self.pool = pool
        self.sample_interval_s = sample_interval_s
        self.listener = listener
        #: The media node's ``request_keyframe(call_id, party)`` (the analyser asks
        #: for the customer's), given by whoever runs the node.
        self.request_keyframe = request_keyframe
        #: In a media node of its own: who publishes each call's findings for the servers.
        self.feed = feed
        #: In a server without the call's media node: the states published by the node's process.
        self.remote = remote
        self.calls: dict[str, CallIntegrity] = {}
        self.taps: dict[str, AnalyserTap] = {}
        self._starting: asyncio.Task[None] | None = None
        self._closed = False

    async def open(self, call_id: str, *, started_at: float) -> MediaTap:
        primary = (
            await self.inner.open(call_id, started_at=started_at)
            if self.inner is not None
            else NullTap()
        )
        if self._closed:
            return primary
        if self._starting is None:
            self._starting = asyncio.create_task(self._start_pool(), name="integrity-pool-start")
        # A call's state is kept across its customer's legs: it stays ``unknown``
        # after a gap until the new leg's first result (CallIntegrity.update).
        state = self.calls.get(call_id) or CallIntegrity()
        self.calls[call_id] = state
        analyser = AnalyserTap(
            call_id,
            self.pool,
            state,
            sample_interval_s=self.sample_interval_s,
            changed=self._changed,
            request_keyframe=lambda: self._keyframe(call_id),
            feed=self.feed,
        )
        self.taps[call_id] = analyser
        return ComposedTap(primary, analyser)

    def forget(self, call_id: str) -> None:
        """The call ended: its state is no longer asked for."""
        self.calls.pop(call_id, None)
        self.taps.pop(call_id, None)
        if self.remote is not None:
            self.remote.forget(call_id)

    def state(self, call_id: str) -> CallIntegrity | None:
        """The call's state: analysed here, else as published by its node's process."""
        state = self.calls.get(call_id)
        if state is None and self.remote is not None:
            state = self.remote.state(call_id)
        return state

    async def _start_pool(self) -> None:
        try:
            await self.pool.start()
        except Exception:
            log.exception("integrity.pool_failed")  # analysis stays off: every call unknown

    def _keyframe(self, call_id: str) -> None:
        if self.request_keyframe is not None:
            self.request_keyframe(call_id, "customer")

    def _changed(self, call_id: str, state: CallIntegrity) -> None:
        if self.listener is not None:
            self.listener.integrity_changed(call_id, state)

    async def close(self) -> None:
        """Stop the workers; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        await self.pool.close()
