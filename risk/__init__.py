"""Inline risk engine: decides on every in-call operation, reading the customer's words.

Pure library: no network, database or event loop; time comes in as ``now``.

Usage::

    from datetime import UTC, datetime
    from decimal import Decimal
    from risk import CallSession, CustomerProfile, HabitProfile, Operation, RiskEngine, RiskLists

    engine = RiskEngine()  # packaged default ruleset; engine.reload(path) swaps it
    op = Operation(kind="transfer", amount=Decimal("50000"), currency="CNY",
                   payee_account="6217003312345678", payee_name="王秀英", payee_bank="CCB")
    profile = CustomerProfile(customer_id="C1001", name="王秀英", age=76, tenure_days=9000,
                              balance=Decimal("68000"), home_bank="ICBC", habits=HabitProfile(),
                              known_payees=(), recent_events=())
    session = CallSession(earlier_operations=(), stated_reason="客服说微信百万保障要关闭",
                          local_time=datetime(2025, 3, 10, 10, 20))
    lists = RiskLists(blocked_accounts=frozenset(), blocked_phones=frozenset(), allow_list=())
    result = engine.evaluate(op, profile, session, lists, now=datetime.now(UTC))
    print(result.decision, result.reason_codes)  # block (..., 'safe_account_pattern', ...)

``None`` means unknown everywhere; an evaluation that depends on an unknown
fact, or that fails, returns ``review`` (``hold`` for large amounts), never
``allow``.
"""

from risk.engine import RiskEngine, evaluate_ruleset
from risk.features import FEATURES, UNKNOWN, MissingData
from risk.habits import Baseline, HabitProfile, PeerGroup, Transaction
from risk.model import (
    AllowListEntry,
    Assessment,
    CallSession,
    CustomerProfile,
    Decision,
    KnownPayee,
    Operation,
    PriorOperation,
    Reason,
    RecentEvent,
    RiskLists,
    RuleSnooze,
    ShadowResult,
    VideoIntegrity,
)
from risk.ruleset import (
    Ruleset,
    RulesetError,
    build_ruleset,
    load_default_ruleset,
    load_ruleset,
    parse_ruleset,
)

__all__ = [
    "FEATURES",
    "UNKNOWN",
    "AllowListEntry",
    "Assessment",
    "Baseline",
    "CallSession",
    "CustomerProfile",
    "Decision",
    "HabitProfile",
    "KnownPayee",
    "MissingData",
    "Operation",
    "PeerGroup",
    "PriorOperation",
    "Reason",
    "RecentEvent",
    "RiskEngine",
    "RiskLists",
    "RuleSnooze",
    "Ruleset",
    "RulesetError",
    "ShadowResult",
    "Transaction",
    "VideoIntegrity",
    "build_ruleset",
    "evaluate_ruleset",
    "load_default_ruleset",
    "load_ruleset",
    "parse_ruleset",
]
