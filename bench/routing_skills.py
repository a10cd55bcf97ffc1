#!/usr/bin/env python3
"""Routing benchmark with skills: what the skill step costs, side by side.

Runs ``bench/routing.py``'s measurements twice in one process, on both backends:

1. the branch as that benchmark builds it (dialects only, calls without intents);
2. the same branch where every specialist has one to three skills and 90% of the
   calls have an intent that needs one (six intents x (three dialects + none) =
   24 skill pools). The calls that arrive while latency is measured are on the
   skill step for their first 15 s, so every timed dispatch promotes and looks
   through live skill pools.

Each run prints the figures of ``bench/routing.py`` (assignment latency, its
floor and ratio for Redis, snapshot time, bulk throughput); the last table puts
the two side by side. Same targets and exit status as ``bench/routing.py``.

Usage: ``.venv/bin/python bench/routing_skills.py`` (Redis as in bench/routing.py).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import routing as base  # bench/routing.py, next to this file

from server.routing.memory import MemoryQueueBackend
from server.routing.model import QueuedCall, SpecialistProfile

SKILLS = ("transfer", "passbook", "password", "deposit", "time_deposit", "pension", "card")
INTENTS = ("transfer", "passbook", "loss_report", "password", "pension_certification", "deposit")


def skilled_profiles(rng: random.Random) -> list[SpecialistProfile]:
    plain = base_profiles(rng)
    return [
        SpecialistProfile(
            p.specialist_id, p.dialects, frozenset(rng.sample(SKILLS, rng.randint(1, 3)))
        )
        for p in plain
    ]


def call_with_intent(rng: random.Random, index: int, now: float) -> QueuedCall:
    call = base_new_call(rng, index, now)
    intent = rng.choice(INTENTS) if rng.random() < 0.9 else None
    return QueuedCall(
        call.call_id, call.customer_id, call.dialect, call.priority, call.enqueued_at, intent
    )


base_profiles: Callable[[random.Random], list[SpecialistProfile]] = base.profiles
base_new_call: Callable[[random.Random, int, float], QueuedCall] = base.new_call


def run(label: str) -> list[base.Result]:
    print(f"\n== {label}")
    results = [asyncio.run(base.measure("memory", MemoryQueueBackend(base.POLICY), None))]
    with base.redis_url() as url:
        results.append(asyncio.run(base.bench_redis(url)))
    return results


def main() -> int:
    plain = run("dialects only (as bench/routing.py)")
    plain_verdicts = base.report(plain)
    base.profiles, base.new_call = skilled_profiles, call_with_intent
    try:
        skilled = run("with skills and intents")
    finally:
        base.profiles, base.new_call = base_profiles, base_new_call
    skilled_verdicts = base.report(skilled)
    print()
    header = f"{'backend':<8} {'p99 ms, dialects only':>22} {'p99 ms, with skills':>20} {'x':>6}"
    print(header)
    print("-" * len(header))
    for a, b in zip(plain, skilled, strict=True):
        p_a, p_b = base.pct(a.latencies_ms, 99), base.pct(b.latencies_ms, 99)
        print(f"{a.backend:<8} {p_a:22.3f} {p_b:20.3f} {p_b / p_a:6.2f}")
    # Either run's misses fail the script; each says its own.
    return max(plain_verdicts.exit_code(), skilled_verdicts.exit_code())


if __name__ == "__main__":
    sys.exit(main())
