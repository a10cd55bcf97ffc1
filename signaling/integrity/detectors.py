"""The integrity detectors: pure functions of what the worker measured, time passed in.

Each detector turns a stream of per-frame or per-sample measurements into an
*active* flag with a start time and a confidence. The worker process runs one
:class:`TrackDetectors` per analysed track; the episodes (since/until) are kept
on the loop side by :class:`~signaling.integrity.state.CallIntegrity`.

Why each signal is what it is:

- ``video_frozen``: a camera that keeps sending while its picture does not change
  at all. A perceptual hash alone would also call a customer sitting very still
  frozen, so the picture's fine difference (mean absolute difference of a small
  grey thumbnail) must also stay under a threshold: sensor noise alone keeps a
  real camera above it.
- ``video_looped``: a replayed clip. The latest run of frame-to-frame changes
  (of small grey thumbnails) is correlated with the track's history, at a lag of at
  least ``loop_min_lag_s``; live video (sensor noise, unrepeatable motion) never
  correlates with its own past, a replay repeats itself. A run that barely
  changes is not judged: that is frozen or still.
- ``frame_timing_anomaly``: a real camera's capture timestamps jitter by a
  millisecond or so; a file played out by a virtual camera is a perfect
  metronome. A timestamp that jumps far from what the arrival times say, or goes
  backwards, is a splice or a reset of the source.
- ``face_absent`` / ``multiple_faces``: from the face detector's boxes in samples.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ActiveSignal", "FrameMeasure", "Thresholds", "TrackDetectors", "hamming"]

SIGNAL_CODES = (
    "video_frozen",
    "video_looped",
    "frame_timing_anomaly",
    "face_absent",
    "multiple_faces",
)
_RTP_WRAP = 1 << 32


@dataclass(frozen=True)
class Thresholds:
    """Detector thresholds; the server builds them from its settings (one line each there)."""

    frozen_hash_distance: int = 3
    frozen_pixel_delta: float = 0.6
    frozen_after_s: float = 2.5
    loop_run_frames: int = 12
    loop_distance_ratio: float = 0.5
    loop_min_lag_s: float = 1.0
    loop_history_s: float = 30.0
    loop_min_change: float = 0.5
    timing_window_frames: int = 45
    timing_min_jitter_ms: float = 0.05
    timing_jump_s: float = 2.0
    face_absent_after_s: float = 4.0
    multiple_faces_samples: int = 3

    def __post_init__(self) -> None:
        if self.loop_run_frames < 2 or self.timing_window_frames < 3:
            raise ValueError("loop_run_frames >= 2 and timing_window_frames >= 3 are needed")


@dataclass(frozen=True, slots=True)
class FrameMeasure:
    """One decoded frame: its 64-bit difference hash, thumbnail and timing."""

    at: float  # arrival, wall-clock seconds
    rtp_timestamp: int
    clock_rate: int
    phash: int
    thumbnail: np.ndarray  # small grey picture, float32


@dataclass(frozen=True, slots=True)
class ActiveSignal:
    code: str
    since: float
    confidence: float
    detail: str


class FrameHistory:
    """The track's recent thumbnails, centred and flattened, in one growing array.

    Rows are appended at the end and old ones dropped from the front; when the
    array is full the kept rows move back to its start once (amortised: no copy of
    the history per sample, which the loop detector reads as one contiguous block).
    """

    def __init__(self, width: int = 768, capacity: int = 1024) -> None:
        self._frames = np.empty((capacity, width), dtype=np.float32)
        self._times = np.empty(capacity, dtype=np.float64)
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, at: float, thumbnail: np.ndarray) -> None:
        row = thumbnail.reshape(-1)
        if row.shape[0] != self._frames.shape[1]:
            self._frames = np.empty((self._frames.shape[0], row.shape[0]), dtype=np.float32)
            self._start = self._end = 0
        if self._end == self._frames.shape[0]:
            kept = self._end - self._start
            if kept * 2 > self._frames.shape[0]:  # mostly full: grow
                self._frames = np.concatenate([self._frames, np.empty_like(self._frames)])
                self._times = np.concatenate([self._times, np.empty_like(self._times)])
            self._frames[:kept] = self._frames[self._start : self._end]
            self._times[:kept] = self._times[self._start : self._end]
            self._start, self._end = 0, kept
        self._frames[self._end] = row
        self._frames[self._end] -= self._frames[self._end].mean()  # slow light changes do not count
        self._times[self._end] = at
        self._end += 1

    def drop_before(self, at: float) -> None:
        self._start += int(np.searchsorted(self._times[self._start : self._end], at, side="left"))

    def clear(self) -> None:
        self._start = self._end = 0

    @property
    def frames(self) -> np.ndarray:
        return self._frames[self._start : self._end]

    @property
    def times(self) -> np.ndarray:
        return self._times[self._start : self._end]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _rtp_delta(now: int, before: int) -> int:
    """Signed difference of two 32-bit RTP timestamps (wrap-around aware)."""
    return (now - before + _RTP_WRAP // 2) % _RTP_WRAP - _RTP_WRAP // 2


@dataclass
class _Episode:
    since: float | None = None
    confidence: float = 0.0
    detail: str = ""

    def set(self, active: bool, at: float, confidence: float, detail: str) -> None:
        if active:
            if self.since is None:
                self.since = at
            self.confidence, self.detail = confidence, detail
        else:
            self.since = None


@dataclass
class TrackDetectors:
    """Every detector of one track; feed frames and samples in arrival order."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    _history: FrameHistory = field(default_factory=FrameHistory)
    _timing: deque[tuple[int, float]] = field(default_factory=deque)
    _still_since: float | None = None
    _anchor: FrameMeasure | None = None
    _last_face_at: float | None = None
    _first_at: float | None = None
    _many_faces_run: int = 0
    _jump_at: float | None = None
    _episodes: dict[str, _Episode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._episodes = {code: _Episode() for code in SIGNAL_CODES}

    def reset_timing(self) -> None:
        """The track restarted (a new peer connection): its RTP clock starts afresh."""
        self._timing.clear()
        self._anchor = None
        self._still_since = None

    # -- per frame ------------------------------------------------------------------------
    def frame(self, m: FrameMeasure) -> None:
        t = self.thresholds
        if self._first_at is None:
            self._first_at = m.at
        self._frozen(m)
        self._history.append(m.at, m.thumbnail)
        self._history.drop_before(m.at - t.loop_history_s)
        self._timing_frame(m)

    def _frozen(self, m: FrameMeasure) -> None:
        t = self.thresholds
        anchor = self._anchor
        same = (
            anchor is not None
            and hamming(anchor.phash, m.phash) <= t.frozen_hash_distance
            and float(np.mean(np.abs(anchor.thumbnail - m.thumbnail))) <= t.frozen_pixel_delta
        )
        if not same:
            self._anchor, self._still_since = m, m.at
        still_for = m.at - (self._still_since if self._still_since is not None else m.at)
        active = still_for > t.frozen_after_s
        confidence = min(
            1.0, 0.6 + 0.4 * (still_for - t.frozen_after_s) / max(t.frozen_after_s, 1e-6)
        )
        self._episodes["video_frozen"].set(
            active,
            self._still_since if self._still_since is not None else m.at,
            confidence,
            f"the picture has not changed for {still_for:.1f} s while frames keep arriving",
        )

    def _timing_frame(self, m: FrameMeasure) -> None:
        t = self.thresholds
        if self._timing:
            last_ts, last_at = self._timing[-1]
            rtp_dt = _rtp_delta(m.rtp_timestamp, last_ts) / m.clock_rate
            arrival_dt = m.at - last_at
            # Backwards, or far ahead of the time that passed. (Late arrival after a
            # stall on the way is not the source's doing and is not counted.)
            if rtp_dt < 0 or rtp_dt - arrival_dt > t.timing_jump_s:
                self._jump_at = m.at
                self._timing.clear()
        self._timing.append((m.rtp_timestamp, m.at))
        while len(self._timing) > t.timing_window_frames:
            self._timing.popleft()
        episode = self._episodes["frame_timing_anomaly"]
        if self._jump_at is not None and m.at - self._jump_at <= 10.0:
            episode.set(True, self._jump_at, 0.9, "the video's timestamps jumped or restarted")
            return
        self._jump_at = None
        if len(self._timing) < t.timing_window_frames:
            episode.set(False, m.at, 0.0, "")
            return
        stamps = np.fromiter((ts for ts, _ in self._timing), dtype=np.int64)
        # Signed 32-bit differences (wrap-around aware), in milliseconds.
        steps = (np.diff(stamps) + _RTP_WRAP // 2) % _RTP_WRAP - _RTP_WRAP // 2
        intervals_ms = steps * (1000.0 / m.clock_rate)
        jitter = float(intervals_ms.std())
        metronome = jitter < t.timing_min_jitter_ms
        episode.set(
            metronome,
            self._timing[0][1],
            0.8,
            f"frame intervals vary by {jitter:.3f} ms over {len(intervals_ms)} frames: "
            "no camera is that regular",
        )

    # -- per sample -----------------------------------------------------------------------
    def sample(self, at: float, faces: int) -> None:
        """A sampled frame's face count (the face detector runs on samples only)."""
        t = self.thresholds
        if faces > 0:
            self._last_face_at = at
        reference = self._last_face_at if self._last_face_at is not None else self._first_at
        absent_for = at - (reference if reference is not None else at)
        self._episodes["face_absent"].set(
            faces == 0 and absent_for > t.face_absent_after_s,
            reference if reference is not None else at,
            0.7,
            f"no face seen for {absent_for:.1f} s",
        )
        self._many_faces_run = self._many_faces_run + 1 if faces >= 2 else 0
        self._episodes["multiple_faces"].set(
            self._many_faces_run >= t.multiple_faces_samples,
            at,
            min(1.0, 0.5 + 0.1 * self._many_faces_run),
            f"{faces} faces in the picture",
        )
        self._looped(at)

    def _looped(self, at: float) -> None:
        t = self.thresholds
        episode = self._episodes["video_looped"]
        found = self._loop_lag()
        episode.set(
            found is not None,
            at,
            round(found[1], 2) if found else 0.0,
            f"the last {t.loop_run_frames} frames repeat frames seen {found[0]:.1f} s earlier"
            if found is not None
            else "",
        )

    def _loop_lag(self) -> tuple[float, float] | None:
        """(seconds back, confidence) to where the latest run of frames already appeared.

        A replay repeats its pictures exactly, sensor noise and motion included,
        so at the right lag the run's distance to its earlier copy is only what
        the encoder changed: far less than the run's own frame-to-frame change.
        Live video never comes back that close: its noise is new in every frame.
        Frames are compared as small grey thumbnails less their mean brightness
        (slow light changes do not count). A run with hardly any change (a still
        or frozen picture) is not judged here.
        """
        t = self.thresholds
        n = t.loop_run_frames
        if len(self._history) < 2 * n:
            return None
        times, frames = self._history.times, self._history.frames  # views, centred rows
        run = frames[-n:]
        change = float(np.sqrt((np.diff(run, axis=0) ** 2).mean()))
        if change < t.loop_min_change:
            return None
        run_start_at = times[-n]
        starts = int(np.searchsorted(times, run_start_at - t.loop_min_lag_s, side="right"))
        starts = min(starts, len(frames) - 2 * n + 1)
        if starts <= 0:
            return None
        history = frames[: starts + n - 1]
        # |h - r|^2 = |h|^2 + |r|^2 - 2 h.r, summed along each candidate diagonal.
        cross = np.trace(
            np.lib.stride_tricks.sliding_window_view(history @ run.T, (n, n))[:, 0],
            axis1=1,
            axis2=2,
        )
        energy = np.concatenate([[0.0], np.cumsum((history**2).sum(axis=1))])
        window_energy = energy[n : n + starts] - energy[:starts]
        squared = window_energy + float((run**2).sum()) - 2.0 * cross
        distance = np.sqrt(np.maximum(squared, 0.0) / run.size)
        best = int(np.argmin(distance))
        ratio = float(distance[best]) / change
        if ratio > t.loop_distance_ratio:
            return None
        return float(run_start_at - times[best]), min(1.0, 1.0 - ratio / 2)

    # -- what is active -----------------------------------------------------------------------
    def active(self) -> list[ActiveSignal]:
        return [
            ActiveSignal(code, e.since, round(e.confidence, 2), e.detail)
            for code, e in self._episodes.items()
            if e.since is not None
        ]
