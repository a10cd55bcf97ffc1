"""Honest wait estimates, from a queue snapshot or from one call's standing, and a
windowed average handle time.

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
A :class:`~server.routing.standing.Standing` carries exactly those counts for one
call, so :func:`standing_estimate` and :func:`estimate_waits` agree.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass

from .model import LadderStep, QueueSnapshot
from .standing import Pool, Staffing, Standing, staffing_of


@dataclass(frozen=True)
class WaitEstimate:
    call_id: str
    position: int
    seconds: int | None

    def message(self) -> dict[str, str]:
        return wait_message(self.seconds)


def wait_seconds(ahead: int, pool: Pool, aht_s: float | None) -> int | None:
    """Seconds until answered with ``ahead`` competing calls before this one."""
    if aht_s is None or pool.working <= 0:
        return None
    completions_needed = max(0, ahead + 1 - pool.idle)
    return math.ceil(completions_needed * aht_s / pool.working)


def _ahead_and_pool(
    step: LadderStep,
    dialect: str | None,
    skill_key: str | None,
    position: int,
    counts: tuple[int, int, int],
    staffing: Staffing,
) -> tuple[int, Pool]:
    """The calls competing ahead of one call and the pool that serves it, from the
    calls ahead of it by step: ``counts`` is (any, its dialect's, its skill pool's)."""
    ahead_any, ahead_dialect, ahead_skill = counts
    if step is LadderStep.SKILL and skill_key is not None:
        ahead = ahead_skill + ahead_any + (ahead_dialect if dialect is not None else 0)
        return ahead, staffing.skill(skill_key)
    if step is LadderStep.DIALECT and dialect is not None:
        # Competes with earlier calls for its dialect and with earlier any-step
        # calls, which its dialect's speakers also serve.
        return ahead_dialect + ahead_any, staffing.dialect(dialect)
    return position - 1, staffing.everyone


def standing_estimate(standing: Standing, staffing: Staffing, aht_s: float | None) -> WaitEstimate:
    """One call's estimate from its standing: the same figure :func:`estimate_waits`
    gives it from a snapshot, without reading the other waiting calls."""
    s = standing
    counts = (s.ahead_any, s.ahead_dialect, s.ahead_skill)
    ahead, pool = _ahead_and_pool(s.step, s.dialect, s.skill_key, s.position, counts, staffing)
    return WaitEstimate(s.call_id, s.position, wait_seconds(ahead, pool, aht_s))


def estimate_waits(snapshot: QueueSnapshot, aht_s: float | None) -> dict[str, WaitEstimate]:
    """An estimate for every waiting call in ``snapshot``, counting the calls ahead
    of each by step as a :class:`~server.routing.standing.Standing` carries them."""
    staffing = staffing_of(snapshot.specialists)
    ahead_any = 0
    ahead_by_dialect: Counter[str] = Counter()
    ahead_by_skill: Counter[str] = Counter()
    estimates: dict[str, WaitEstimate] = {}
    for view in snapshot.waiting:
        call = view.call
        dialect, key = call.dialect, call.skill_key
        counts = (
            ahead_any,
            ahead_by_dialect[dialect] if dialect is not None else 0,
            ahead_by_skill[key] if key is not None else 0,
        )
        ahead, pool = _ahead_and_pool(view.step, dialect, key, view.position, counts, staffing)
        seconds = wait_seconds(ahead, pool, aht_s)
        estimates[call.call_id] = WaitEstimate(call.call_id, view.position, seconds)
        if view.step is LadderStep.SKILL and key is not None:
            ahead_by_skill[key] += 1
        elif view.step is LadderStep.DIALECT and dialect is not None:
            ahead_by_dialect[dialect] += 1
        else:
            ahead_any += 1
    return estimates


@functools.lru_cache(maxsize=512)
def wait_message(seconds: int | None) -> dict[str, str]:
    """Plain words for the senior app, in Chinese and English. Cached (every
    socket's update asks for one): the dict returned is shared, never change it."""
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
