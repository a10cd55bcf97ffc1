"""The pure parts of the integrity analysis: detectors, call state, liveness checks.

Fed measurements directly (no video, no process): each detector fires on the
pattern it is for and stays quiet on a live-looking one.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from signaling.integrity.detectors import FrameMeasure, Thresholds, TrackDetectors
from signaling.integrity.liveness import new_challenge, verify
from signaling.integrity.state import CallIntegrity, Sample

FPS = 10.0


def _frames(n: int, seed: int = 1, jitter_ticks: float = 180.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (24, 32)).astype(np.float32)
    return [base + rng.normal(0, 3, base.shape).astype(np.float32) for _ in range(n)]


def _feed(
    det: TrackDetectors,
    thumbs: list[np.ndarray],
    start: float = 0.0,
    jitter_ticks: float = 180.0,
    seed: int = 2,
    faces: int = 1,
) -> float:
    rng = random.Random(seed)
    ts, at = 1000, start
    for index, thumb in enumerate(thumbs):
        ts += round(9000 + rng.gauss(0, jitter_ticks)) if jitter_ticks else 9000
        at = start + index / FPS
        phash = int(thumb[::3, ::4].flatten()[:64].argsort().argsort()[0])  # varies with content
        det.frame(FrameMeasure(at, ts % (1 << 32), 90_000, phash, thumb))
        if index % 3 == 0:
            det.sample(at, faces)
    return at


def _codes(det: TrackDetectors) -> set[str]:
    return {s.code for s in det.active()}


def test_live_looking_frames_raise_nothing() -> None:
    det = TrackDetectors(Thresholds())
    _feed(det, _frames(200))
    assert _codes(det) == set()


def test_one_repeated_picture_is_frozen() -> None:
    det = TrackDetectors(Thresholds(frozen_after_s=2.0))
    still = _frames(1)[0]
    _feed(det, [still] * 40)
    active = {s.code: s for s in det.active()}
    assert "video_frozen" in active and active["video_frozen"].since == 0.0


def test_a_replayed_run_is_a_loop_and_its_lag_is_named() -> None:
    det = TrackDetectors(Thresholds())
    clip = _frames(30, seed=3)
    _feed(det, clip + clip)
    looped = next(s for s in det.active() if s.code == "video_looped")
    assert "3.0 s earlier" in looped.detail


def test_a_metronome_and_a_jump_are_timing_anomalies() -> None:
    det = TrackDetectors(Thresholds())
    _feed(det, _frames(80), jitter_ticks=0.0)
    assert "frame_timing_anomaly" in _codes(det)
    jumpy = TrackDetectors(Thresholds())
    at = _feed(jumpy, _frames(50))
    # The source's clock leaps 30 s ahead in a tenth of a second.
    jumpy.frame(FrameMeasure(at + 0.1, 10_000_000, 90_000, 0, _frames(1, seed=9)[0]))
    assert "frame_timing_anomaly" in _codes(jumpy)
    # A new peer connection starts a new RTP clock: not an anomaly.
    restarted = TrackDetectors(Thresholds())
    at = _feed(restarted, _frames(50))
    restarted.reset_timing()
    rng = random.Random(5)
    for index, thumb in enumerate(_frames(30, seed=6)):
        ts = 3_000_000_000 + index * 9000 + round(rng.gauss(0, 180))
        restarted.frame(FrameMeasure(at + 0.1 * (index + 1), ts, 90_000, index, thumb))
    assert "frame_timing_anomaly" not in _codes(restarted)


def test_faces() -> None:
    nobody = TrackDetectors(Thresholds(face_absent_after_s=3.0))
    _feed(nobody, _frames(60), faces=0)
    assert _codes(nobody) == {"face_absent"}
    crowd = TrackDetectors(Thresholds(multiple_faces_samples=3))
    _feed(crowd, _frames(60), faces=2)
    assert _codes(crowd) == {"multiple_faces"}


def test_call_state_episodes_and_status() -> None:
    state = CallIntegrity()
    assert state.status == "unknown"
    assert state.update(1.0, (), None)  # first result: unknown -> ok
    assert state.status == "ok"
    assert state.update(2.0, (("video_frozen", 1.5, 0.8, "still"),), None)
    assert state.status == "suspect" and state.active_codes() == ("video_frozen",)
    assert not state.update(3.0, (("video_frozen", 1.5, 0.9, "still"),), None)
    assert state.update(4.0, (), None)
    (episode,) = state.episodes
    assert (episode.since, episode.until) == (1.5, 4.0)
    assert state.liveness_result(False, 5.0) and state.status == "suspect"
    assert [v["code"] for v in state.signals_view()] == ["video_frozen", "liveness_failed"]
    assert state.stop(6.0) and state.status == "unknown"


def _samples(t0: float, colour_at: dict[tuple[float, float], str]) -> list[Sample]:
    out = []
    tints = {"red": (40, 0, 0), "green": (0, 40, 0), "blue": (0, 0, 40)}
    t = t0 - 3.0
    while t < t0 + 14:
        colour = [150.0, 130.0, 110.0]
        for (start, end), name in colour_at.items():
            if t0 + start <= t < t0 + end:
                colour = [c + d for c, d in zip(colour, tints[name], strict=True)]
        out.append(Sample(t, ((0.4, 0.2, 0.2, 0.3),), (colour[0], colour[1], colour[2])))
        t += 1 / 3
    return out


@pytest.mark.parametrize("lag", [0.0, 0.8, 1.8])
def test_colour_challenge_followed_late_or_not(lag: float) -> None:
    challenge = new_challenge("colour", "c", 100.0, random.Random(1))
    shown = {
        (float(s["at_s"]) + lag, float(s["at_s"]) + float(s["duration_s"]) + lag): str(s["colour"])
        for s in challenge.steps
    }
    assert verify(challenge, _samples(100.0, shown)).passed
    wrong_order = dict(zip(shown.keys(), reversed(list(shown.values())), strict=True))
    if list(wrong_order.values()) != list(shown.values()):
        assert verify(challenge, _samples(100.0, wrong_order)).reason == "colour_not_seen"
    assert verify(challenge, _samples(100.0, {})).reason == "colour_not_seen"
    assert verify(challenge, []).reason == "no_video"


def test_head_turn_challenge() -> None:
    challenge = new_challenge("head_turn", "h", 50.0, random.Random(2))
    first = str(challenge.steps[0]["direction"])

    def faces(shift_for: dict[str, float]) -> list[Sample]:
        out, t = [], 47.0
        while t < 62:
            x = 0.4
            for step in challenge.steps:
                start = 50.0 + float(step["at_s"]) + 0.5
                if start <= t < start + float(step["duration_s"]):
                    x += shift_for.get(str(step["direction"]), 0.0)
            out.append(Sample(t, ((x, 0.2, 0.2, 0.3),), (120.0, 120.0, 120.0)))
            t += 1 / 3
        return out

    assert verify(challenge, faces({"left": -0.15, "right": 0.15})).passed
    assert verify(challenge, faces({})).reason == "face_did_not_move"
    assert first in ("left", "right")
