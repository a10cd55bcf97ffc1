"""Routing rules as pure functions: priority order, the ladder, and the policy's bounds.

How the queue backends apply these (offers, leases, idle order) is the routing
contract suite's subject (``tests/routing``); here only the rules themselves.
"""

from __future__ import annotations

import pytest

from server.routing.model import (
    LadderStep,
    PriorityClass,
    QueuedCall,
    RoutingPolicy,
    SpecialistProfile,
    ladder_step,
)

POLICY = RoutingPolicy(dialect_wait_s=30, urgent_dialect_wait_s=10, weight_redirect_s=120)


def call(
    priority: PriorityClass = PriorityClass.NORMAL, at: float = 0.0, dialect: str | None = "wuu"
) -> QueuedCall:
    return QueuedCall(f"{priority}-{at}", "C1", dialect, priority, at)


def served_order(calls: list[QueuedCall]) -> list[str]:
    return [c.call_id for c in sorted(calls, key=lambda c: c.rank_key(POLICY))]


def test_priority_outranks_waiting_time_up_to_its_weight() -> None:
    normal = call(at=0)
    redirect = call(PriorityClass.REDIRECT, at=100)  # 100 s later, but weighted 120 s
    urgent = call(PriorityClass.URGENT, at=500)  # 500 s later, weighted 600 s
    assert served_order([normal, redirect, urgent]) == [
        urgent.call_id,
        redirect.call_id,
        normal.call_id,
    ]


def test_nobody_starves_a_long_wait_beats_a_late_urgent_call() -> None:
    normal = call(at=0)
    late_urgent = call(PriorityClass.URGENT, at=601)
    assert served_order([late_urgent, normal]) == [normal.call_id, late_urgent.call_id]


def test_score_grows_with_waiting_and_matches_the_rank_order() -> None:
    a, b = call(at=0), call(PriorityClass.REDIRECT, at=100)
    for now in (100.0, 150.0, 1000.0):
        assert (a.score(POLICY, now) > b.score(POLICY, now)) == (
            a.rank_key(POLICY) < b.rank_key(POLICY)
        )
    assert a.score(POLICY, 50) == 50 and b.score(POLICY, 50) == 120  # never negative waiting


def test_the_ladder() -> None:
    normal, urgent = call(at=0), call(PriorityClass.URGENT, at=0)
    assert ladder_step(normal, POLICY, 29.9, True) is LadderStep.DIALECT
    assert ladder_step(normal, POLICY, 30.0, True) is LadderStep.ANY
    assert ladder_step(urgent, POLICY, 9.9, True) is LadderStep.DIALECT
    assert ladder_step(urgent, POLICY, 10.0, True) is LadderStep.ANY
    # Nobody who speaks the dialect is logged in: skip the step at once.
    assert ladder_step(normal, POLICY, 0.0, False) is LadderStep.ANY
    # No preferred dialect: any specialist from the start.
    assert ladder_step(call(dialect=None), POLICY, 0.0, True) is LadderStep.ANY


def test_fluency_uses_the_threshold() -> None:
    profile = SpecialistProfile("S07", {"cmn": 5, "wuu": 2, "yue": 3})
    assert profile.fluent_dialects(POLICY) == {"cmn", "yue"}
    assert not profile.speaks("wuu", POLICY) and not profile.speaks("xx", POLICY)


@pytest.mark.parametrize(
    "bad", [{"offer_lease_s": 0}, {"max_consecutive_misses": 0}, {"proficiency_threshold": 6}]
)
def test_policy_bounds(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RoutingPolicy(**bad)  # type: ignore[arg-type]
