"""The analyser tap on its own: what it batches and what it tells the worker.

A recording pool stands in for the worker processes (unit tier): it keeps the
samples it is given, so what the tap submits after a leg's gap is visible.
"""

from __future__ import annotations

from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalyserTap
from signaling.integrity.worker import EncodedSample
from signaling.media.tap import EncodedFrame


class RecordingPool:
    running = True
    dropped = 0

    def __init__(self) -> None:
        self.samples: list[EncodedSample] = []

    def subscribe(self, track: str, handler: object) -> None:
        return None

    def unsubscribe(self, track: str) -> None:
        return None

    def submit(self, sample: EncodedSample) -> bool:
        self.samples.append(sample)
        return True


def _video(at: float, timestamp: int, *, keyframe: bool) -> EncodedFrame:
    return EncodedFrame("customer", "video", "VP8", b"\x00", timestamp, 90_000, keyframe, at)


def _tap(pool: RecordingPool, keyframes: list[float] | None = None) -> AnalyserTap:
    def changed(call_id: str, state: CallIntegrity) -> None:
        return None

    return AnalyserTap(
        "call-1",
        pool,  # type: ignore[arg-type]
        CallIntegrity(),
        sample_interval_s=1.0,
        changed=changed,
        request_keyframe=None if keyframes is None else lambda: keyframes.append(0.0),
    )


def test_a_new_leg_tells_the_worker_its_rtp_clock_starts_afresh() -> None:
    pool = RecordingPool()
    tap = _tap(pool)
    tap.write(_video(0.0, 1000, keyframe=True))
    for index in range(1, 12):
        tap.write(_video(index * 0.1, 1000 + index * 9000, keyframe=False))
    first, second = pool.samples
    assert first.restart and first.new_clock
    assert not second.restart and not second.new_clock
    # The customer's leg drops; the new leg's RTP timestamps start somewhere else.
    tap.track_gap("customer", since=1.2)
    tap.write(_video(2.0, 3_000_000_000, keyframe=True))
    third = pool.samples[2]
    assert third.restart and third.new_clock


def test_no_keyframe_is_asked_for_while_the_analysis_is_not_running() -> None:
    pool = RecordingPool()
    pool.running = False  # the workers are starting, or failed to
    asked: list[float] = []
    tap = _tap(pool, asked)
    for index in range(50):
        tap.write(_video(index * 0.1, index * 9000, keyframe=index % 10 == 0))
    assert pool.samples == [] and asked == []
    pool.running = True
    tap.write(_video(5.0, 50 * 9000, keyframe=False))
    assert len(asked) == 1  # now the decoder needs one to start on
    tap.write(_video(5.1, 51 * 9000, keyframe=True))
    assert len(pool.samples) == 1 and pool.samples[0].restart
