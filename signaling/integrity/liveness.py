"""Liveness challenges: what the customer's app is asked to do, and whether the video did it.

Pure: a challenge is drawn from a random generator passed in, and verified
against the call's analysed samples (:class:`~signaling.integrity.state.Sample`).

- ``colour``: the app fills its screen with a random sequence of colours; the
  light reflected by the customer's face (or, with no face found, the whole
  picture) must shift towards each colour in turn, within each step's window.
- ``head_turn``: the customer turns their head one way, then the other; the face
  box must move, as seen in the video the app sends (not mirrored), first to
  the picture's left, then to its right.

A replayed recording follows neither. Times are the server's wall clock; each
step's window allows ``latency_s`` for the app to react and the video to arrive.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .state import Sample

__all__ = ["CHALLENGE_TEXT", "Challenge", "Verdict", "new_challenge", "verify"]

ChallengeKind = Literal["colour", "head_turn"]
COLOURS = {"red": 0, "green": 1, "blue": 2}
LEAD_IN_S = 1.0  # before the first step: the app shows the instruction; baseline colour
COLOUR_STEP_S = 1.5
TURN_STEP_S = 3.0

# Plain words for the customer; nothing in them suggests a suspicion.
CHALLENGE_TEXT: dict[str, dict[str, str]] = {
    "colour": {
        "zh": "请您看着屏幕，屏幕颜色会变化几次，保持脸在画面中就可以了。",
        "en": "Please look at the screen. Its colour will change a few times; just keep "
        "your face in the picture.",
    },
    "head_turn": {
        "zh": "请您慢慢把头转向一边，再转向另一边，跟着屏幕上的箭头就可以了。",
        "en": "Please turn your head slowly to one side, then to the other, following "
        "the arrow on the screen.",
    },
}


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    kind: ChallengeKind
    steps: tuple[dict[str, Any], ...]
    deadline_s: float
    issued_at: float

    def message(self, call_id: str) -> dict[str, Any]:
        return {
            "type": "liveness.challenge",
            "call_id": call_id,
            "challenge_id": self.challenge_id,
            "kind": self.kind,
            "steps": [dict(s) for s in self.steps],
            "deadline_s": self.deadline_s,
            "message": CHALLENGE_TEXT[self.kind],
        }


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str  # followed | colour_not_seen | face_did_not_move | no_face | no_video


def new_challenge(
    kind: ChallengeKind, challenge_id: str, now: float, rng: random.Random
) -> Challenge:
    if kind == "colour":
        colours: list[str] = []
        for _ in range(3):
            colours.append(rng.choice([c for c in COLOURS if not colours or c != colours[-1]]))
        steps = tuple(
            {"colour": c, "at_s": LEAD_IN_S + i * COLOUR_STEP_S, "duration_s": COLOUR_STEP_S}
            for i, c in enumerate(colours)
        )
        deadline = LEAD_IN_S + len(steps) * COLOUR_STEP_S + 1.0
    else:
        first = rng.choice(["left", "right"])
        order = [first, "right" if first == "left" else "left"]
        steps = tuple(
            {"direction": d, "at_s": LEAD_IN_S + i * TURN_STEP_S, "duration_s": TURN_STEP_S}
            for i, d in enumerate(order)
        )
        deadline = LEAD_IN_S + len(steps) * TURN_STEP_S + 1.0
    return Challenge(challenge_id, kind, steps, deadline, now)


def _window(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.at <= end]


def verify(
    challenge: Challenge,
    samples: Sequence[Sample],
    *,
    latency_s: float = 0.5,
    colour_shift: float = 6.0,
    turn_shift: float = 0.06,
    min_share: float = 0.6,
) -> Verdict:
    """Did the analysed video follow ``challenge``? ``samples`` in time order."""
    t0 = challenge.issued_at
    if challenge.kind == "colour":
        return _verify_colour(challenge, samples, t0, latency_s, colour_shift, min_share)
    return _verify_turn(challenge, samples, t0, latency_s, turn_shift)


def _verify_colour(
    challenge: Challenge,
    samples: Sequence[Sample],
    t0: float,
    latency_s: float,
    shift: float,
    min_share: float,
) -> Verdict:
    lead = [s.colour for s in _window(samples, t0 - 2.0, t0 + LEAD_IN_S) if s.colour]
    if not lead:
        return Verdict(False, "no_video")
    baseline = [statistics.fmean(c[i] for c in lead) for i in range(3)]
    for step in challenge.steps:
        start = t0 + float(step["at_s"]) + latency_s
        end = t0 + float(step["at_s"]) + float(step["duration_s"]) + latency_s * 0.4
        seen = [s.colour for s in _window(samples, start, end) if s.colour]
        if len(seen) < 2:
            return Verdict(False, "no_video")
        want = COLOURS[str(step["colour"])]
        hits = 0
        for colour in seen:
            delta = [colour[i] - baseline[i] for i in range(3)]
            others = max(delta[i] for i in range(3) if i != want)
            if delta[want] - others >= shift:
                hits += 1
        if hits < min_share * len(seen):
            return Verdict(False, "colour_not_seen")
    return Verdict(True, "followed")


def _centre(sample: Sample) -> float | None:
    if not sample.faces:
        return None
    x, _, w, _ = sample.faces[0]
    return x + w / 2


def _verify_turn(
    challenge: Challenge, samples: Sequence[Sample], t0: float, latency_s: float, shift: float
) -> Verdict:
    lead = [c for s in _window(samples, t0 - 2.0, t0 + LEAD_IN_S) if (c := _centre(s)) is not None]
    if not lead:
        return Verdict(False, "no_face")
    base = statistics.median(lead)
    for step in challenge.steps:
        start = t0 + float(step["at_s"])
        end = start + float(step["duration_s"]) + latency_s
        centres = [c for s in _window(samples, start, end) if (c := _centre(s)) is not None]
        if not centres:
            return Verdict(False, "no_face")
        if step["direction"] == "left" and min(centres) > base - shift:
            return Verdict(False, "face_did_not_move")
        if step["direction"] == "right" and max(centres) < base + shift:
            return Verdict(False, "face_did_not_move")
    return Verdict(True, "followed")
