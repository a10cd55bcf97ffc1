"""Customer habit baselines, built from transactions and updated one at a time.

Statistics are robust on purpose: an elderly customer's history is short and
lumpy (a pension-day transfer, a yearly gift), so the median and the median
absolute deviation describe "usual" better than a mean and a standard
deviation that one large gift would drag up.

Amounts are in the customer's home currency (CNY). Times must be timezone
aware; the hour of day is taken from ``Transaction.local_hour`` or, when that
is None, from ``at`` as given, so pass ``at`` in the customer's local offset.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from risk.normalise import normalise_account

#: 1.4826 × MAD estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Transaction:
    """One executed outgoing transfer."""

    at: datetime
    amount: Decimal
    payee_account: str | None = None
    local_hour: int | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Transaction.at must be timezone aware")
        if self.amount < 0:
            raise ValueError("Transaction.amount must not be negative")

    @property
    def hour(self) -> int:
        """Hour of day in the customer's local time."""
        return self.local_hour if self.local_hour is not None else self.at.hour


@dataclass(frozen=True)
class PeerGroup:
    """Typical behaviour of an age band, used when a customer's history is thin."""

    min_age: int
    max_age: int
    median: float
    spread: float
    p95: float
    usual_hours: frozenset[int]


@dataclass(frozen=True)
class Baseline:
    """The yardstick an amount is compared against.

    ``source`` is ``personal`` (the customer's own window) or ``peer`` (the
    age band, because the customer's history is too thin to call anything
    normal for them).
    """

    source: str
    median: float
    spread: float
    p95: float
    usual_hours: frozenset[int]


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list (``q`` in 0..1)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class HabitProfile:
    """Rolling statistics of a customer's outgoing transfers.

    Build with :meth:`from_transactions`, then call :meth:`update` after each
    executed transfer; both return new immutable profiles. The window keeps
    the last ``window_days`` (180) days of transactions; the payee history
    and counters cover the customer's whole history.
    """

    window_days: int = 180
    window: tuple[Transaction, ...] = ()
    as_of: datetime | None = None
    first_at: datetime | None = None
    total_count: int = 0
    new_payee_count: int = 0
    #: normalised payee account -> first transfer to it
    payee_first_seen: Mapping[str, datetime] = field(default_factory=dict)

    # Derived from ``window`` once, so evaluation only reads numbers.
    count: int = field(init=False, default=0)
    median: float | None = field(init=False, default=None)
    mad: float | None = field(init=False, default=None)
    p95: float | None = field(init=False, default=None)
    max_amount: float | None = field(init=False, default=None)
    hour_counts: tuple[int, ...] = field(init=False, default=(0,) * 24)
    usual_hour_set: frozenset[int] = field(init=False, default=frozenset())
    #: personal baselines by minimum spread; filled on first use, never compared
    _baselines: dict[float, Baseline] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        amounts = sorted(float(t.amount) for t in self.window)
        hours = [0] * 24
        for t in self.window:
            hours[t.hour % 24] += 1
        # Hours with a transfer, and their neighbours: people are not exact,
        # a customer who pays at 10:00 is not unusual at 11:00.
        usual = {(h + d) % 24 for h, n in enumerate(hours) if n for d in (-1, 0, 1)}
        derived: dict[str, object] = {
            "count": len(amounts),
            "hour_counts": tuple(hours),
            "usual_hour_set": frozenset(usual),
        }
        if amounts:
            med = _percentile(amounts, 0.5)
            deviations = sorted(abs(a - med) for a in amounts)
            derived.update(
                median=med,
                mad=_percentile(deviations, 0.5),
                p95=_percentile(amounts, 0.95),
                max_amount=amounts[-1],
            )
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        if not isinstance(self.payee_first_seen, MappingProxyType):
            frozen_payees = MappingProxyType(dict(self.payee_first_seen))
            object.__setattr__(self, "payee_first_seen", frozen_payees)

    # ----------------------------------------------------------- building

    @classmethod
    def from_transactions(
        cls,
        transactions: Iterable[Transaction],
        *,
        window_days: int = 180,
        as_of: datetime | None = None,
    ) -> HabitProfile:
        """Profile of a whole history in one pass (sorted by time first).

        ``as_of`` ends the window; it defaults to the latest transaction.
        """
        txns = sorted(transactions, key=lambda t: t.at)
        first_seen: dict[str, datetime] = {}
        new_payees = 0
        for t in txns:
            payee = None if t.payee_account is None else normalise_account(t.payee_account)
            if payee is not None and payee not in first_seen:
                first_seen[payee] = t.at
                new_payees += 1
        end = as_of if as_of is not None else (txns[-1].at if txns else None)
        window = tuple(_trim(txns, end, window_days))
        return cls(
            window_days=window_days,
            window=window,
            as_of=end,
            first_at=txns[0].at if txns else None,
            total_count=len(txns),
            new_payee_count=new_payees,
            payee_first_seen=first_seen,
        )

    def update(self, transaction: Transaction) -> HabitProfile:
        """A new profile that also counts ``transaction``."""
        txns = list(self.window)
        if not txns or transaction.at >= txns[-1].at:
            txns.append(transaction)
        else:  # late arrival: keep the window in time order
            keys = [t.at for t in txns]
            txns.insert(bisect.bisect_right(keys, transaction.at), transaction)
        end = transaction.at if self.as_of is None else max(self.as_of, transaction.at)
        first_seen = dict(self.payee_first_seen)
        new_payees = self.new_payee_count
        raw = transaction.payee_account
        payee = None if raw is None else normalise_account(raw)
        if payee is not None and payee not in first_seen:
            first_seen[payee] = transaction.at
            new_payees += 1
        first_at = transaction.at if self.first_at is None else min(self.first_at, transaction.at)
        return HabitProfile(
            window_days=self.window_days,
            window=tuple(_trim(txns, end, self.window_days)),
            as_of=end,
            first_at=first_at,
            total_count=self.total_count + 1,
            new_payee_count=new_payees,
            payee_first_seen=first_seen,
        )

    def advance(self, now: datetime) -> HabitProfile:
        """A profile whose window ends at ``now`` (drops transactions that aged out)."""
        if self.as_of is not None and now <= self.as_of:
            return self
        return HabitProfile(
            window_days=self.window_days,
            window=tuple(_trim(list(self.window), now, self.window_days)),
            as_of=now,
            first_at=self.first_at,
            total_count=self.total_count,
            new_payee_count=self.new_payee_count,
            payee_first_seen=self.payee_first_seen,
        )

    # ----------------------------------------------------------- reading

    def history_days(self, now: datetime) -> float:
        """Days since the first transaction ever seen (0 with no history)."""
        if self.first_at is None:
            return 0.0
        return max(0.0, (now - self.first_at).total_seconds() / 86400.0)

    @property
    def novelty_rate(self) -> float | None:
        """Share of all transfers that went to a payee for the first time."""
        if self.total_count == 0:
            return None
        return self.new_payee_count / self.total_count

    def usual_hours(self) -> frozenset[int]:
        """Hours with at least one transfer in the window, and their neighbours."""
        return self.usual_hour_set

    def since(self, start: datetime, end: datetime) -> Iterator[Transaction]:
        """Window transactions with ``start < at <= end``, newest first."""
        for t in reversed(self.window):
            if t.at <= start:
                break
            if t.at <= end:
                yield t

    def personal_baseline(self, min_spread: float) -> Baseline | None:
        """The customer's own yardstick, or None with an empty window."""
        cached = self._baselines.get(min_spread)
        if cached is not None:
            return cached
        if self.median is None or self.mad is None or self.p95 is None:
            return None
        baseline = Baseline(
            source="personal",
            median=self.median,
            spread=max(MAD_TO_SIGMA * self.mad, min_spread),
            p95=max(self.p95, min_spread),
            usual_hours=self.usual_hour_set,
        )
        self._baselines[min_spread] = baseline  # a memo: the profile itself never changes
        return baseline


def _trim(txns: list[Transaction], end: datetime | None, window_days: int) -> list[Transaction]:
    if end is None:
        return txns
    start = end - timedelta(days=window_days)
    return [t for t in txns if t.at > start]


def peer_group_for(age: int, groups: Iterable[PeerGroup]) -> PeerGroup | None:
    """The age band containing ``age``, if any."""
    for g in groups:
        if g.min_age <= age <= g.max_age:
            return g
    return None
