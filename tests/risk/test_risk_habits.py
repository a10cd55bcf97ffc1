"""Habit profiles: robust statistics, incremental updates, peer-group fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk import HabitProfile, Transaction, load_default_ruleset
from risk.features import UNKNOWN, FeatureContext

T0 = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


def txn(days: float, amount: str, payee: str | None = "P1", hour: int | None = None) -> Transaction:
    return Transaction(T0 + timedelta(days=days), Decimal(amount), payee, hour)


def test_robust_statistics() -> None:
    profile = HabitProfile.from_transactions(
        [txn(i, a) for i, a in enumerate(["100", "200", "300", "400", "10000"])]
    )
    assert profile.count == 5
    assert profile.median == 300
    assert profile.mad == 100  # one huge gift does not drag the spread up
    assert profile.p95 == pytest.approx(8080)  # linear interpolation
    assert profile.max_amount == 10000


def test_window_keeps_180_days_but_history_counts_everything() -> None:
    old = txn(0, "50000", "OLD")
    recent = [txn(200 + i, "1000", "NEW") for i in range(3)]
    profile = HabitProfile.from_transactions([old, *recent])
    assert profile.count == 3 and profile.max_amount == 1000
    assert profile.total_count == 4
    assert set(profile.payee_first_seen) == {"OLD", "NEW"}
    assert profile.novelty_rate == pytest.approx(2 / 4)
    assert profile.history_days(T0 + timedelta(days=210)) == pytest.approx(210)


def test_update_is_incremental_and_immutable() -> None:
    base = HabitProfile.from_transactions([txn(0, "100"), txn(1, "200")])
    updated = base.update(txn(2, "300", "P2"))
    assert base.count == 2 and updated.count == 3
    assert updated.median == 200
    assert updated.payee_first_seen["P2"] == T0 + timedelta(days=2)
    assert updated.new_payee_count == 2
    late = updated.update(txn(0.5, "150"))  # arrives out of order
    assert [t.amount for t in late.window] == [100, 150, 200, 300]
    with pytest.raises(AttributeError):
        updated.count = 0  # type: ignore[misc]


def test_advance_drops_aged_out_transactions() -> None:
    profile = HabitProfile.from_transactions([txn(0, "100"), txn(100, "200")])
    later = profile.advance(T0 + timedelta(days=250))
    assert later.count == 1 and later.median == 200
    assert profile.advance(T0) is profile


def test_usual_hours_include_neighbours_and_since() -> None:
    profile = HabitProfile.from_transactions([txn(0, "1", hour=10), txn(1, "1", hour=23)])
    assert profile.usual_hours() == frozenset({9, 10, 11, 22, 23, 0})
    recent = list(profile.since(T0 + timedelta(hours=12), T0 + timedelta(days=2)))
    assert [t.amount for t in recent] == [1]


def test_transactions_validate_themselves() -> None:
    with pytest.raises(ValueError, match="timezone aware"):
        Transaction(datetime(2025, 1, 1), Decimal("1"))
    with pytest.raises(ValueError, match="negative"):
        Transaction(T0, Decimal("-1"))


amounts = st.decimals(min_value=0, max_value=200000, places=2, allow_nan=False)
transactions = st.lists(
    st.builds(
        txn,
        days=st.floats(min_value=0, max_value=400, allow_nan=False),
        amount=amounts.map(str),
        payee=st.sampled_from(["A", "B", "C", None]),
        hour=st.one_of(st.none(), st.integers(0, 23)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(transactions)
def test_updating_one_by_one_equals_building_at_once(txns: list[Transaction]) -> None:
    folded = HabitProfile()
    for t in sorted(txns, key=lambda t: t.at):
        folded = folded.update(t)
    batch = HabitProfile.from_transactions(txns)
    assert folded.window == batch.window
    assert folded.count == batch.count
    assert folded.median == batch.median and folded.mad == batch.mad and folded.p95 == batch.p95
    assert folded.hour_counts == batch.hour_counts
    assert folded.total_count == batch.total_count == len(txns)
    assert folded.new_payee_count == batch.new_payee_count
    assert dict(folded.payee_first_seen) == dict(batch.payee_first_seen)


def _baseline_source(profile: Any, kit: Any) -> object:
    ruleset = load_default_ruleset()
    ctx = FeatureContext(
        kit.transfer(), profile, kit.session(), kit.lists(), kit.now, ruleset.features
    )
    return ctx.get("baseline_source")


def test_thin_history_is_compared_with_peers_not_called_normal(kit: Any) -> None:
    assert _baseline_source(kit.profile(), kit) == "personal"
    two = HabitProfile.from_transactions(
        [Transaction(kit.now - timedelta(days=d), Decimal("100"), "X") for d in (3, 9)]
    )
    assert _baseline_source(kit.profile(habits=two), kit) == "peer"
    # Many transfers, but all within the last weeks: still too short a history.
    burst = HabitProfile.from_transactions(
        [Transaction(kit.now - timedelta(days=d), Decimal("100"), "X") for d in range(10)]
    )
    assert _baseline_source(kit.profile(habits=burst), kit) == "peer"
    # Thin history and unknown age: no yardstick at all, which is unknown, not normal.
    assert _baseline_source(kit.profile(habits=two, age=None), kit) is UNKNOWN
