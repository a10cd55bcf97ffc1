"""Per-socket message budgets: token buckets per type, ICE per negotiation."""

from __future__ import annotations

from server.hub.budget import MessageBudget, TokenBucket


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(burst=3, per_s=2)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.4)  # 0.8 of a token back
    assert bucket.take(0.5)  # 1.0
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped


def test_each_type_has_its_own_bucket() -> None:
    budget = MessageBudget(burst=4, per_s=1, ice_per_negotiation=100)
    assert all(budget.admit("ping", 0.0) is None for _ in range(4))
    assert budget.admit("ping", 0.0) is not None
    assert budget.admit("webrtc.ice", 0.0) is None  # a flood of pings costs ICE nothing


def test_ice_candidates_are_bounded_per_negotiation() -> None:
    budget = MessageBudget(burst=1000, per_s=1000, ice_per_negotiation=3)
    assert [budget.admit("webrtc.ice", 0.0) for _ in range(3)] == [None, None, None]
    assert "ICE" in (budget.admit("webrtc.ice", 0.0) or "")
    assert budget.admit("webrtc.answer", 1.0) is None  # a new negotiation
    assert budget.admit("webrtc.ice", 1.0) is None


def test_offers_are_rarer_than_other_messages() -> None:
    budget = MessageBudget(burst=8, per_s=8, ice_per_negotiation=100)
    admitted = sum(budget.admit("webrtc.offer", 0.0) is None for _ in range(8))
    assert admitted == 2


def test_unknown_types_cannot_grow_the_table_without_bound() -> None:
    budget = MessageBudget(burst=2, per_s=1, ice_per_negotiation=10)
    for i in range(1000):
        budget.admit(f"junk-{i}", 0.0)
    assert len(budget._buckets) <= 33
