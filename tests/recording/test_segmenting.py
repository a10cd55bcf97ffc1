"""How tracks are cut: video segments start at keyframes and end by 10 s; when no
keyframe comes in time the sender is asked for one; audio follows the target."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from signaling.media.recording.track import ClosedSegment, SegmentLimits
from signaling.media.recording.writer import CallWriter
from signaling.media.tap import EncodedFrame, Party


def _record(frames: list[EncodedFrame], spool: Path) -> tuple[list[ClosedSegment], list[Party]]:
    closed: list[ClosedSegment] = []
    asked: list[Party] = []
    writer = CallWriter(
        call_id="call-cut",
        started_at=0.0,
        spool=spool,
        recording_key=None,
        wrapped_key=None,
        on_closed=closed.append,
        on_problem=lambda reason, at: None,
        limits=SegmentLimits(target_s=6.0, max_s=10.0),
        queue_size=10_000,
        want_keyframe=asked.append,
    )
    writer.start()
    for frame in frames:
        assert writer.submit(frame)
    assert writer.stop(60)
    return closed, asked


def test_segments_start_at_keyframes_and_stay_within_ten_seconds(
    media: list[EncodedFrame], tmp_path: Path
) -> None:
    closed, asked = _record(media, tmp_path)
    video = [s for s in closed if s.kind == "video"]
    assert video and all(s.keyframe_start for s in video)
    assert all(s.end_s - s.start_s <= 10.0 for s in closed)
    assert asked == []  # keyframes every second: nothing to ask for
    # Segments of a track follow each other without overlap.
    for party in ("customer", "specialist"):
        spans = sorted((s.start_s, s.end_s) for s in video if s.party == party)
        assert all(a[1] <= b[0] + 1e-6 for a, b in pairwise(spans))


def test_without_keyframes_the_sender_is_asked_and_ten_seconds_still_holds(
    media: list[EncodedFrame], tmp_path: Path
) -> None:
    first_key = {f.party: False for f in media}
    rare: list[EncodedFrame] = []
    for frame in media:
        if frame.kind == "video":
            keep_key = frame.keyframe and not first_key[frame.party]
            first_key[frame.party] = first_key[frame.party] or frame.keyframe
            frame = replace(frame, keyframe=keep_key)
        rare.append(frame)
    closed, asked = _record(rare, tmp_path)
    assert set(asked) == {"customer", "specialist"}
    video = [s for s in closed if s.kind == "video"]
    assert all(s.end_s - s.start_s <= 10.0 + 1 / 30 for s in video)
    # The segment forced at 10 s without a keyframe says so.
    assert any(not s.keyframe_start for s in video)
