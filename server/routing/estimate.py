"""Honest wait estimates from the queue snapshot and a windowed average handle time.

For a waiting call we count the specialists who could take it at its current
ladder step and are working (available, reserved, busy or wrapping up), the calls
ahead of it competing for them, and how many of those specialists are idle right
now. Each working specialist frees up about once per average handle time (AHT),
so the call expects to be answered after ``(ahead + 1 - idle)`` completions at a
rate of ``working / AHT``. With no handle-time data yet, or nobody who could take
the call, there is no figure: we say so rather than invent one.

A call on the skill step counts only the specialists with the skill (and its
dialect, if it has one), and competes with earlier skill-step calls of the same
pool, earlier dialect-step calls of its dialect and earlier any-step calls.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .intents import skill_keys
from .model import LadderStep, QueueSnapshot, SpecialistState

_WORKING = frozenset(
    {
        SpecialistState.AVAILABLE,
        SpecialistState.RESERVED,
        SpecialistState.BUSY,
        SpecialistState.WRAP_UP,
    }
)


@dataclass(frozen=True)
class WaitEstimate:
    call_id: str
    position: int
    seconds: int | None

    def message(self) -> dict[str, str]:
        return wait_message(self.seconds)


def estimate_waits(snapshot: QueueSnapshot, aht_s: float | None) -> dict[str, WaitEstimate]:
    """An estimate for every waiting call in ``snapshot``."""
    working_any = 0
    idle_any = 0
    working_by_dialect: Counter[str] = Counter()
    idle_by_dialect: Counter[str] = Counter()
    working_by_skill: Counter[str] = Counter()
    idle_by_skill: Counter[str] = Counter()
    for spec in snapshot.specialists:
        if spec.state not in _WORKING:
            continue
        keys = skill_keys(spec.fluent_dialects, spec.intents)
        working_any += 1
        working_by_dialect.update(spec.fluent_dialects)
        working_by_skill.update(keys)
        if spec.state is SpecialistState.AVAILABLE:
            idle_any += 1
            idle_by_dialect.update(spec.fluent_dialects)
            idle_by_skill.update(keys)

    ahead_any = 0
    ahead_by_dialect: Counter[str] = Counter()
    ahead_by_skill: Counter[str] = Counter()
    estimates: dict[str, WaitEstimate] = {}
    for view in snapshot.waiting:
        call = view.call
        key = call.skill_key
        if view.step is LadderStep.SKILL and key is not None:
            ahead = ahead_by_skill[key] + ahead_any
            if call.dialect is not None:
                ahead += ahead_by_dialect[call.dialect]
            working, idle = working_by_skill[key], idle_by_skill[key]
        elif view.step is LadderStep.DIALECT and call.dialect is not None:
            # Competes with earlier calls for its dialect and with earlier any-step
            # calls, which its dialect's speakers also serve.
            ahead = ahead_by_dialect[call.dialect] + ahead_any
            working = working_by_dialect[call.dialect]
            idle = idle_by_dialect[call.dialect]
        else:
            ahead = view.position - 1
            working, idle = working_any, idle_any
        seconds: int | None = None
        if aht_s is not None and working > 0:
            completions_needed = max(0, ahead + 1 - idle)
            seconds = math.ceil(completions_needed * aht_s / working)
        estimates[call.call_id] = WaitEstimate(call.call_id, view.position, seconds)
        if view.step is LadderStep.SKILL and key is not None:
            ahead_by_skill[key] += 1
        elif view.step is LadderStep.DIALECT and call.dialect is not None:
            ahead_by_dialect[call.dialect] += 1
        else:
            ahead_any += 1
    return estimates


def wait_message(seconds: int | None) -> dict[str, str]:
    """Plain words for the senior app, in Chinese and English."""
    if seconds is None:
        return {
            "zh": "正在为您安排服务专员，请稍候。",
            "en": "We are finding a specialist for you. Please stay on the line.",
        }
    if seconds < 60:
        return {"zh": "马上就到您了，请稍候。", "en": "You are next in a moment."}
    minutes = math.ceil(seconds / 60)
    if minutes == 1:
        return {"zh": "大约还要等1分钟。", "en": "About 1 minute."}
    return {"zh": f"大约还要等{minutes}分钟。", "en": f"About {minutes} minutes."}
