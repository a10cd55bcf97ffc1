"""Properties of the default ruleset over generated customers and operations.

- raising the amount never lowers the decision (nor the score);
- adding an allow-list entry never raises it;
- the same input always gives the same assessment;
- the generated rule code decides exactly as the reference closures do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from risk import (
    UNKNOWN,
    AllowListEntry,
    CallSession,
    CustomerProfile,
    HabitProfile,
    KnownPayee,
    Operation,
    PriorOperation,
    RecentEvent,
    RiskEngine,
    RiskLists,
    RuleSnooze,
    Transaction,
)
from risk.conditions import AllOf, AnyOf, Compare, Not, compile_rules, to_closure

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
KNOWN = ["6222 0001", "6222 0002", "6222 0003"]
STRANGER = "6228 9999"
BLOCKED = "6217 6666"
ENGINE = RiskEngine()


def _history(kind: str) -> HabitProfile:
    if kind == "none":
        return HabitProfile()
    count, amount = {"thin": (3, "800"), "usual": (24, "2000"), "rich": (60, "15000")}[kind]
    return HabitProfile.from_transactions(
        [
            Transaction(
                NOW - timedelta(days=3 + 7 * i), Decimal(amount) + i, KNOWN[i % 3], 9 + i % 8
            )
            for i in range(count)
        ],
        as_of=NOW,
    )


HISTORIES = {k: _history(k) for k in ("none", "thin", "usual", "rich")}
REASONS = [
    "给孙子的零花钱",
    "交物业费",
    "",
    "Help my son with rent",
    "装修尾款",
    "公安说要转到安全账户",
    "百万保障要关闭",
    "养老项目保本保息",
    "孙子出车祸了",
    "My grandson was arrested",
    "guaranteed returns",
]

payees = st.lists(
    st.builds(
        lambda account, days, family: KnownPayee(
            account, NOW.date() - timedelta(days=days), None, "family" if family else None
        ),
        st.sampled_from(KNOWN),
        st.integers(0, 5000),
        st.booleans(),
    ),
    max_size=3,
    unique_by=lambda p: p.account,
)
events = st.lists(
    st.builds(
        lambda kind, hours: RecentEvent(kind, NOW - timedelta(hours=hours)),
        st.sampled_from(["password_reset", "limit_change", "time_deposit_break", "new_device"]),
        st.floats(0, 500, allow_nan=False),
    ),
    max_size=2,
)
profiles = st.builds(
    lambda age, balance, history, known, recent, tenure: CustomerProfile(
        customer_id="C1",
        name="王秀英",
        age=age,
        tenure_days=tenure,
        balance=balance,
        home_bank="ICBC",
        habits=HISTORIES[history],
        known_payees=tuple(known),
        recent_events=tuple(recent),
    ),
    st.integers(40, 99),
    st.decimals(0, 2_000_000, places=2),
    st.sampled_from(sorted(HISTORIES)),
    payees,
    events,
    st.integers(1, 20000),
)
earlier = st.lists(
    st.builds(
        lambda kind, outcome, minutes: PriorOperation(
            kind, NOW - timedelta(minutes=minutes), outcome, Decimal("5000"), "CNY"
        ),
        st.sampled_from(["transfer", "limit_change", "password_reset", "balance_inquiry"]),
        st.sampled_from(["executed", "held", "rejected"]),
        st.floats(1, 60, allow_nan=False),
    ),
    max_size=3,
)
sessions = st.builds(
    lambda reason, hour, redirect, prior, phones: CallSession(
        call_id="X",
        redirect_kind=redirect,
        earlier_operations=tuple(prior),
        stated_reason=reason,
        local_time=datetime(2025, 3, 10, hour, 15),
        contact_phones=phones,
    ),
    st.sampled_from(REASONS),
    st.integers(0, 23),
    st.sampled_from([None, "transfer_over_limit", "password_locked"]),
    earlier,
    st.sampled_from([(), ("13800001111",), ("17000001234",)]),
)
payee_targets = st.sampled_from(
    [
        (KNOWN[0], "李娜", "ICBC"),
        (KNOWN[1], "王秀英", "CCB"),
        (STRANGER, "张伟", "ABC"),
        ("6230 0000", "王秀英", "PSBC"),
        (BLOCKED, "马超", "ABC"),
    ]
)
lists_ = st.builds(
    lambda allow, snooze: RiskLists(
        blocked_accounts=frozenset({BLOCKED}),
        blocked_phones=frozenset({"17000001234"}),
        allow_list=tuple(
            AllowListEntry("C1", a, NOW + timedelta(days=9), "verified") for a in allow
        ),
        snoozes=(RuleSnooze("night_transfer", NOW + timedelta(days=1), "tuning"),)
        if snooze
        else (),
    ),
    st.lists(st.sampled_from([*KNOWN, STRANGER]), max_size=2),
    st.booleans(),
)
money = st.decimals(0, 500_000, places=2)


def _op(target: tuple[str, str, str], amount: Decimal, currency: str) -> Operation:
    account, name, bank = target
    return Operation(
        kind="transfer",
        amount=amount,
        currency=currency,
        payee_account=account,
        payee_name=name,
        payee_bank=bank,
    )


@settings(max_examples=300, deadline=None)
@given(profiles, sessions, lists_, payee_targets, money, money, st.sampled_from(["CNY", "USD"]))
def test_raising_the_amount_never_lowers_the_decision(
    profile: Any, session: Any, lists: Any, target: Any, a: Decimal, b: Decimal, currency: str
) -> None:
    low, high = sorted((a, b))
    r_low = ENGINE.evaluate(_op(target, low, currency), profile, session, lists, NOW)
    r_high = ENGINE.evaluate(_op(target, high, currency), profile, session, lists, NOW)
    assert r_low.decision <= r_high.decision
    assert r_low.score <= r_high.score


@settings(max_examples=150, deadline=None)
@given(profiles, sessions, lists_, money, money)
def test_raising_a_new_limit_never_lowers_the_decision(
    profile: Any, session: Any, lists: Any, a: Decimal, b: Decimal
) -> None:
    low, high = sorted((a, b))
    ops = [
        Operation(kind="limit_change", channel="mobile", new_limit=v, currency="CNY")
        for v in (low, high)
    ]
    r_low, r_high = (ENGINE.evaluate(op, profile, session, lists, NOW) for op in ops)
    assert r_low.decision <= r_high.decision


@settings(max_examples=300, deadline=None)
@given(profiles, sessions, lists_, payee_targets, money, st.integers(-5, 300))
def test_adding_an_allow_list_entry_never_raises_the_decision(
    profile: Any, session: Any, lists: Any, target: Any, amount: Decimal, expires_in: int
) -> None:
    op = _op(target, amount, "CNY")
    entry = AllowListEntry("C1", target[0], NOW + timedelta(days=expires_in), "verified")
    before = ENGINE.evaluate(op, profile, session, lists, NOW)
    more = replace(lists, allow_list=(*lists.allow_list, entry))
    after = ENGINE.evaluate(op, profile, session, more, NOW)
    assert after.decision <= before.decision
    assert after.score <= before.score


@settings(max_examples=150, deadline=None)
@given(profiles, sessions, lists_, payee_targets, money)
def test_decisions_are_deterministic(
    profile: Any, session: Any, lists: Any, target: Any, amount: Decimal
) -> None:
    op = _op(target, amount, "CNY")
    first = ENGINE.evaluate(op, profile, session, lists, NOW)
    again = ENGINE.evaluate(op, profile, session, lists, NOW)
    fresh = RiskEngine().evaluate(
        replace(op), replace(profile), replace(session), replace(lists), NOW
    )
    assert first == again == fresh


def test_generated_worlds_reach_every_decision() -> None:
    """The strategies above are not toothless: they produce allows and blocks alike."""
    seen = set()
    profile = CustomerProfile(
        "C1",
        "王秀英",
        70,
        9000,
        Decimal("80000"),
        "ICBC",
        HISTORIES["usual"],
        (KnownPayee(KNOWN[0], date(2015, 1, 1), None, "family"),),
        (),
    )
    session = CallSession("X", None, (), "给孙子的零花钱", datetime(2025, 3, 10, 10), ())
    lists = RiskLists(frozenset({BLOCKED}), frozenset(), (), ())
    for target, amount in [
        ((KNOWN[0], "李娜", "ICBC"), "100"),
        ((STRANGER, "张伟", "ABC"), "5000"),
        ((STRANGER, "张伟", "ABC"), "9000"),
        (("6230", "王秀英", "PSBC"), "90000"),
        ((BLOCKED, "马超", "ABC"), "10"),
    ]:
        seen.add(
            ENGINE.evaluate(
                _op(target, Decimal(amount), "CNY"), profile, session, lists, NOW
            ).decision.value
        )
    assert seen == {"allow", "warn", "review", "hold", "block"}


# ---------------------------------------------------------------- generated code


class _Facts:
    """Stands in for a FeatureContext: fixed feature values, some UNKNOWN."""

    def __init__(self, facts: dict[str, object]) -> None:
        self.facts = facts
        self.values: dict[str, object] = {}
        self.reads: list[str] = []

    def get(self, name: str) -> object:
        self.reads.append(name)
        self.values[name] = self.facts[name]
        return self.facts[name]

    compute = get  # the generated evaluator computes what it has not read yet


_NUMBERS = ["amount_cny", "amount_vs_p95", "payee_known_days", "local_hour"]
_BOOLS = ["payee_known", "allow_listed"]
tests_ = st.one_of(
    st.builds(
        lambda f, op, c: Compare(f, op, c),
        st.sampled_from(_NUMBERS),
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
        st.sampled_from([0.0, 1.0, 2.0, 22.0, 5000.0]),
    ),
    st.builds(
        lambda f, op, c: Compare(f, op, c),
        st.sampled_from(_BOOLS),
        st.sampled_from(["eq", "ne"]),
        st.booleans(),
    ),
    st.builds(
        lambda c: Compare("payee_relation", "in", c),
        st.frozensets(st.sampled_from(["family", "none", "friend"]), min_size=1),
    ),
    st.builds(
        lambda c: Compare("reason_typologies", "intersects", c),
        st.frozensets(st.sampled_from(["safe_account", "family_emergency"]), min_size=1),
    ),
)
trees = st.recursive(
    tests_,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(lambda p: AllOf(tuple(p))),
        st.lists(children, min_size=1, max_size=4).map(lambda p: AnyOf(tuple(p))),
        children.map(Not),
    ),
    max_leaves=12,
)
facts_ = st.fixed_dictionaries(
    {
        **{
            n: st.one_of(st.just(UNKNOWN), st.sampled_from([0.0, 1.0, 2.0, 22.0, 5000.0, 1e9]))
            for n in _NUMBERS
        },
        **{n: st.one_of(st.just(UNKNOWN), st.booleans()) for n in _BOOLS},
        "payee_relation": st.one_of(st.just(UNKNOWN), st.sampled_from(["family", "none"])),
        "reason_typologies": st.one_of(
            st.just(UNKNOWN),
            st.frozensets(st.sampled_from(["safe_account", "family_emergency", "x"])),
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(st.lists(trees, min_size=1, max_size=5), facts_)
def test_generated_evaluator_matches_the_reference_closures(nodes: list[Any], facts: Any) -> None:
    expected = [to_closure(node)(_Facts(facts)) for node in nodes]  # type: ignore[arg-type]
    held, undecided = compile_rules(nodes)(_Facts(facts))  # type: ignore[arg-type]
    assert held == [i for i, r in enumerate(expected) if r is True]
    assert undecided == [i for i, r in enumerate(expected) if r is None]


def test_default_ruleset_generated_code_matches_its_closures(kit: Any) -> None:
    from risk.features import FeatureContext

    ruleset = ENGINE.ruleset
    worlds = [
        (kit.transfer(), kit.profile(), kit.session()),
        (kit.to_stranger("60000"), kit.profile(age=None), kit.session(stated_reason=None)),
        (kit.to_stranger("9000"), kit.profile(habits=None), kit.session(local_time=None)),
    ]
    for op, profile, session in worlds:
        rules = ruleset.rules_by_kind["transfer"]
        reference = [
            r.condition(FeatureContext(op, profile, session, kit.lists(), NOW, ruleset.features))
            for r in rules
        ]
        ctx = FeatureContext(op, profile, session, kit.lists(), NOW, ruleset.features)
        held, undecided = ruleset.evaluators["transfer"](ctx)
        assert held == [i for i, r in enumerate(reference) if r is True]
        assert undecided == [i for i, r in enumerate(reference) if r is None]
        assert held or undecided  # the worlds are not trivial
