"""Features: the named facts rules are written against.

Each feature is a small function of the evaluation inputs. It returns a value
or raises :class:`MissingData` naming what it lacked; any other exception is
treated the same way. Either way the feature's value is :data:`UNKNOWN`, and a
rule that depends on it can neither fire nor be ruled out, which the engine
turns into a review (see ``risk.engine``). Features are computed lazily and at
most once per evaluation, so an operation pays only for what its rules read.

Feature kinds: ``number`` (int or float; ``math.inf`` for "never happened"),
``bool``, ``str`` and ``set`` (a frozenset of strings).

This module holds the context, the registry and the features of the amount
and the customer; the others live with their subject: whom the money goes to
(``risk.payees``), when and in what order (``risk.sequence``), what the
customer says (``risk.inference``) and the call's video (``risk.integrity``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from risk.habits import Baseline, PeerGroup, peer_group_for
from risk.language.reading import Reader
from risk.model import (
    CallSession,
    CustomerProfile,
    KnownPayee,
    Operation,
    RiskLists,
)
from risk.normalise import normalise_account
from risk.typologies import TypologyInfo


class MissingData(Exception):
    """A feature's input is unknown (``None``) or unusable."""


class _Unknown:
    """The value of a feature that could not be computed."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __format__(self, spec: str) -> str:
        return "unknown"


UNKNOWN: Final = _Unknown()
_NOT_YET: Final = object()

# Thresholds are in CNY; other currencies go through the ruleset's fx_to_cny.
_HOME_CURRENCY = "CNY"


@dataclass(frozen=True)
class FeatureParams:
    """Per-ruleset settings the features need, compiled once per ruleset."""

    fx_to_cny: Mapping[str, float]
    peer_groups: tuple[PeerGroup, ...]
    min_history_transactions: int
    min_history_days: float
    min_spread: float
    #: each peer group as a ready Baseline (built once per ruleset)
    peer_baselines: Mapping[PeerGroup, Baseline]
    #: reads stated reasons against the ruleset's typology lexicons
    reader: Reader
    typologies: Mapping[str, TypologyInfo]
    #: story weight from which a statement counts for a typology
    story_threshold: float = 1.0
    #: story plus behaviour weight from which a typology is named
    name_threshold: float = 1.0
    #: payee-book age (days) from which a family payee is long known
    long_known_days: float = 365.0
    #: evidence from which a decision above allow names the likely scam
    explain_threshold: float = 0.5
    #: "large" in absolute terms (CNY): never a routine payment
    large_amount_cny: float = 50_000.0


class FeatureContext:
    """One evaluation's inputs plus the memo of computed features."""

    __slots__ = ("lists", "missing", "now", "op", "params", "profile", "session", "values")

    def __init__(
        self,
        op: Operation,
        profile: CustomerProfile | None,
        session: CallSession | None,
        lists: RiskLists | None,
        now: datetime,
        params: FeatureParams,
    ) -> None:
        self.op = op
        self.profile = profile
        self.session = session
        self.lists = lists
        self.now = now
        self.params = params
        self.values: dict[str, object] = {}
        #: feature name -> why it is unknown (for the specialist and the audit)
        self.missing: dict[str, str] = {}

    def get(self, name: str) -> object:
        """The feature's value, computing it on first use; UNKNOWN if it cannot be."""
        # dict.get, not try/except KeyError: most features are read once, and a
        # raised KeyError per first read costs more than the feature itself.
        value = self.values.get(name, _NOT_YET)
        if value is not _NOT_YET:
            return value
        return self.compute(name)

    def compute(self, name: str) -> object:
        """Compute the feature (the caller knows it is not in ``values`` yet)."""
        try:
            value = _COMPUTE[name](self)
        except MissingData as exc:
            value = UNKNOWN
            self.missing[name] = str(exc)
        except Exception as exc:  # a feature must never take the evaluation down
            value = UNKNOWN
            self.missing[name] = f"could not be computed ({type(exc).__name__})"
        self.values[name] = value
        return value

    # Shared inputs, with the reason they are missing.

    def need_profile(self) -> CustomerProfile:
        if self.profile is None:
            raise MissingData("customer profile not provided")
        return self.profile

    def need_session(self) -> CallSession:
        if self.session is None:
            raise MissingData("call session not provided")
        return self.session

    def need_lists(self) -> RiskLists:
        if self.lists is None:
            raise MissingData("risk lists not available")
        return self.lists

    def number(self, name: str) -> float:
        """A numeric feature another feature depends on; unknown propagates."""
        value = self.get(name)
        if value is UNKNOWN:
            raise MissingData(f"depends on {name}: {self.missing.get(name, 'unknown')}")
        assert isinstance(value, int | float)
        return value


@dataclass(frozen=True)
class Feature:
    """A named fact rules can test.

    ``cost`` (1 cheap .. 3 dear) orders the tests inside a condition, so a
    cheap test that rules a condition out spares computing a dear one.
    """

    name: str
    kind: str
    doc: str
    compute: Callable[[FeatureContext], object]
    cost: int = 1
    #: set features: the values a rule may test for (None: the ruleset's typologies)
    members: frozenset[str] | None = None


FEATURES: dict[str, Feature] = {}


Compute = Callable[[FeatureContext], object]

#: What evaluations call (tests swap entries to break a feature on purpose).
_COMPUTE: dict[str, Compute] = {}


def feature(
    kind: str, doc: str, cost: int = 1, members: frozenset[str] | None = None
) -> Callable[[Compute], Compute]:
    """Register a feature under its function name."""

    def register(fn: Compute) -> Compute:
        FEATURES[fn.__name__] = Feature(fn.__name__, kind, doc, fn, cost, members)
        _COMPUTE[fn.__name__] = fn
        return fn

    return register


# ------------------------------------------------------------------ helpers


def to_cny(params: FeatureParams, amount: Decimal | None, currency: str | None, what: str) -> float:
    """``amount`` in CNY; MissingData if it, its currency or the rate is unknown."""
    if amount is None:
        raise MissingData(f"{what} not provided")
    if currency is None:
        raise MissingData(f"currency of {what} not provided")
    code = currency.upper()
    rate = 1.0 if code == _HOME_CURRENCY else params.fx_to_cny.get(code)
    if rate is None:
        raise MissingData(f"no exchange rate for {code}")
    value = float(amount)
    if not math.isfinite(value) or value < 0:
        raise MissingData(f"{what} is not a valid amount")
    return value * rate


def _baseline(ctx: FeatureContext) -> Baseline:
    cached = ctx.values.get("_baseline")
    if isinstance(cached, Baseline):
        return cached
    profile = ctx.need_profile()
    habits = profile.habits
    if habits is None:
        raise MissingData("transaction history not provided")
    p = ctx.params
    baseline: Baseline | None = None
    thin = (
        habits.count < p.min_history_transactions
        or habits.history_days(ctx.now) < p.min_history_days
    )
    if not thin:
        baseline = habits.personal_baseline(p.min_spread)
    if baseline is None:
        # Thin history: compare with the customer's age band, never call it normal.
        if profile.age is None:
            raise MissingData("history too thin and age unknown, so no peer group")
        group = peer_group_for(profile.age, p.peer_groups)
        if group is None:
            raise MissingData(f"no peer group covers age {profile.age}")
        baseline = p.peer_baselines[group]
    ctx.values["_baseline"] = baseline
    return baseline


def _hours_since(ctx: FeatureContext, kinds: frozenset[str]) -> float:
    """Hours since the latest event or in-call operation of these kinds; inf if none.

    In-call attempts count whatever their outcome: the intent is the signal.
    """
    profile = ctx.need_profile()
    session = ctx.need_session()
    if profile.recent_events is None:
        raise MissingData("recent account events not provided")
    if session.earlier_operations is None:
        raise MissingData("earlier operations in this call not provided")
    latest: datetime | None = None
    for ev in profile.recent_events:
        if ev.kind in kinds and (latest is None or ev.at > latest):
            latest = ev.at
    for op in session.earlier_operations:
        if op.kind in kinds and (latest is None or op.at > latest):
            latest = op.at
    if latest is None:
        return math.inf
    return max(0.0, (ctx.now - latest).total_seconds() / 3600.0)


def _payee_account(ctx: FeatureContext) -> str:
    """The operation's payee account, normalised once per evaluation."""
    cached = ctx.values.get("_payee_account")
    if isinstance(cached, str):
        return cached
    if ctx.op.payee_account is None:
        raise MissingData("payee account not provided")
    account = normalise_account(ctx.op.payee_account)
    ctx.values["_payee_account"] = account
    return account


def _payee(ctx: FeatureContext) -> KnownPayee | None:
    """The payee-book entry for this payee, or None if the payee is new."""
    index = ctx.need_profile().payee_index
    if index is None:
        raise MissingData("known payees not provided")
    return index.get(_payee_account(ctx))


# ------------------------------------------------------------------ features


@feature("str", "operation kind")
def kind(ctx: FeatureContext) -> object:
    return ctx.op.kind


@feature("number", "transfer amount converted to CNY")
def amount_cny(ctx: FeatureContext) -> object:
    return to_cny(ctx.params, ctx.op.amount, ctx.op.currency, "amount")


@feature("number", "requested new limit converted to CNY (limit changes)")
def new_limit_cny(ctx: FeatureContext) -> object:
    return to_cny(ctx.params, ctx.op.new_limit, ctx.op.currency, "new limit")


@feature("number", "customer age in years")
def age(ctx: FeatureContext) -> object:
    value = ctx.need_profile().age
    if value is None:
        raise MissingData("customer age not provided")
    return value


@feature("number", "days the customer has banked with us")
def tenure_days(ctx: FeatureContext) -> object:
    value = ctx.need_profile().tenure_days
    if value is None:
        raise MissingData("customer tenure not provided")
    return value


@feature("number", "amount as a share of the customer's balance (inf if balance <= 0)")
def share_of_balance(ctx: FeatureContext) -> object:
    balance = ctx.need_profile().balance
    if balance is None:
        raise MissingData("balance not provided")
    amount = ctx.number("amount_cny")
    if balance <= 0:
        return math.inf
    return amount / float(balance)


@feature("str", "'personal' or 'peer': which baseline the amount is compared with", cost=2)
def baseline_source(ctx: FeatureContext) -> object:
    return _baseline(ctx).source


@feature("bool", "history too thin for a personal baseline (peer group used)", cost=2)
def thin_history(ctx: FeatureContext) -> object:
    return _baseline(ctx).source == "peer"


@feature("number", "amount divided by the 95th percentile of the baseline", cost=2)
def amount_vs_p95(ctx: FeatureContext) -> object:
    return ctx.number("amount_cny") / _baseline(ctx).p95


@feature("number", "robust z-score of the amount: (amount - median) / (1.4826 * MAD)", cost=2)
def amount_robust_z(ctx: FeatureContext) -> object:
    b = _baseline(ctx)
    return (ctx.number("amount_cny") - b.median) / b.spread


@feature("number", "share of the customer's past transfers that went to a first-time payee")
def payee_novelty_rate(ctx: FeatureContext) -> object:
    habits = ctx.need_profile().habits
    if habits is None:
        raise MissingData("transaction history not provided")
    rate = habits.novelty_rate
    if rate is None:
        raise MissingData("no transfers in the history")
    return rate


# The other features register themselves on import; importing them here means
# that every feature is known wherever the registry is.
from risk import payees, sequence  # noqa: E402, F401
