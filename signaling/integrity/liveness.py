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
step may show up to ``latency_s`` late (the app reacting, the video arriving).
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
COLOUR_STEP_S = 2.0
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
    latency_s: float = 2.0,
    colour_shift: float = 6.0,
    turn_shift: float = 0.06,
) -> Verdict:
    """Did the analysed video follow ``challenge``? ``samples`` in time order.

    The video reaches the node some time after the app acted (encoding, the
    network, a loaded phone), so the steps are looked for *in order* in the
    samples from the challenge until ``deadline_s + latency_s`` after it, and
    must not all appear at once: the first and last step must lie at least half
    the steps' spacing apart.
    """
    t0 = challenge.issued_at
    lead = _window(samples, t0 - 3.0, t0 + 0.3)
    during = _window(samples, t0, t0 + challenge.deadline_s + latency_s)
    if not lead or len(during) < 2 * len(challenge.steps):
        return Verdict(False, "no_video")
    if challenge.kind == "colour":
        return _verify_colour(challenge, lead, during, colour_shift)
    return _verify_turn(challenge, lead, during, turn_shift)


def _in_order(
    wanted: Sequence[str], labels: Sequence[tuple[float, str | None]], min_span: float
) -> bool:
    """``wanted`` appears in ``labels`` in order, its first and last ``min_span`` apart."""
    found: list[float] = []
    for at, label in labels:
        if len(found) < len(wanted) and label == wanted[len(found)]:
            found.append(at)
    return len(found) == len(wanted) and found[-1] - found[0] >= min_span


def _spacing(challenge: Challenge) -> float:
    starts = [float(step["at_s"]) for step in challenge.steps]
    return (starts[-1] - starts[0]) * 0.5


def _verify_colour(
    challenge: Challenge, lead: Sequence[Sample], during: Sequence[Sample], shift: float
) -> Verdict:
    colours = [s.colour for s in lead if s.colour]
    if not colours:
        return Verdict(False, "no_video")
    baseline = [statistics.fmean(c[i] for c in colours) for i in range(3)]
    names = {index: name for name, index in COLOURS.items()}
    labels: list[tuple[float, str | None]] = []
    for sample in during:
        label = None
        if sample.colour:
            delta = [sample.colour[i] - baseline[i] for i in range(3)]
            top = max(range(3), key=lambda i: delta[i])
            if delta[top] - max(delta[i] for i in range(3) if i != top) >= shift:
                label = names[top]
        labels.append((sample.at, label))
    wanted = [str(step["colour"]) for step in challenge.steps]
    if _in_order(wanted, _collapse(labels), _spacing(challenge)):
        return Verdict(True, "followed")
    return Verdict(False, "colour_not_seen")


def _collapse(labels: Sequence[tuple[float, str | None]]) -> list[tuple[float, str | None]]:
    """Runs of one label become one entry (its first time): a step seen once counts once."""
    out: list[tuple[float, str | None]] = []
    for at, label in labels:
        if not out or out[-1][1] != label:
            out.append((at, label))
    return out


def _centre(sample: Sample) -> float | None:
    if not sample.faces:
        return None
    x, _, w, _ = sample.faces[0]
    return x + w / 2


def _verify_turn(
    challenge: Challenge, lead: Sequence[Sample], during: Sequence[Sample], shift: float
) -> Verdict:
    centres = [c for s in lead if (c := _centre(s)) is not None]
    if not centres:
        return Verdict(False, "no_face")
    base = statistics.median(centres)
    labels: list[tuple[float, str | None]] = []
    for sample in during:
        centre = _centre(sample)
        label = None
        if centre is not None and centre < base - shift:
            label = "left"
        elif centre is not None and centre > base + shift:
            label = "right"
        labels.append((sample.at, label))
    wanted = [str(step["direction"]) for step in challenge.steps]
    if _in_order(wanted, _collapse(labels), _spacing(challenge)):
        return Verdict(True, "followed")
    return Verdict(False, "face_did_not_move")
