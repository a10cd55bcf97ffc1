"""Builders for risk-engine tests: a complete, benign world that tests vary.

Every field is filled in (nothing unknown) unless a test sets it to None on
purpose. The default operation is a routine 1,000 CNY transfer from a
70-year-old to her long-known daughter at 10:00, which the default ruleset
allows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from risk import (
    CallSession,
    CustomerProfile,
    HabitProfile,
    KnownPayee,
    Operation,
    RiskLists,
    Transaction,
)

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in the customer's UTC+8
DAUGHTER = "6222 0210 0001 1111"
UTILITY = "6222 0210 0002 2222"
STRANGER = "6228 4800 5555 1212"
BLOCKED = "6217 0000 9999 0001"
SCENARIOS = Path(__file__).parent / "scenarios"


def habits() -> HabitProfile:
    """Twelve months of 2,000 to the daughter and 350 of bills, at 10:00 and 15:00."""
    txns = [
        Transaction(NOW - timedelta(days=5 + 30 * i), Decimal("2000"), DAUGHTER, 10)
        for i in range(12)
    ] + [
        Transaction(NOW - timedelta(days=12 + 30 * i), Decimal("350"), UTILITY, 15)
        for i in range(12)
    ]
    return HabitProfile.from_transactions(txns, as_of=NOW)


def profile(**changes: Any) -> CustomerProfile:
    base = CustomerProfile(
        customer_id="C9001",
        name="王秀英",
        age=70,
        tenure_days=9000,
        balance=Decimal("80000"),
        home_bank="ICBC",
        habits=habits(),
        known_payees=(
            KnownPayee(DAUGHTER, date(2016, 5, 1), "李娜", "family"),
            KnownPayee(UTILITY, date(2012, 9, 1), "自来水公司"),
        ),
        recent_events=(),
    )
    return replace(base, **changes)


def transfer(**changes: Any) -> Operation:
    base = Operation(
        kind="transfer",
        amount=Decimal("1000"),
        currency="CNY",
        payee_account=DAUGHTER,
        payee_name="李娜",
        payee_bank="ICBC",
    )
    return replace(base, **changes)


def to_stranger(amount: str = "1000", **changes: Any) -> Operation:
    return transfer(
        amount=Decimal(amount),
        payee_account=STRANGER,
        payee_name="张伟",
        payee_bank="ABC",
        **changes,
    )


def session(**changes: Any) -> CallSession:
    base = CallSession(
        call_id="CALL-T",
        redirect_kind=None,
        earlier_operations=(),
        stated_reason="给女儿的生活费",
        local_time=datetime(2025, 3, 10, 10, 0),
        contact_phones=(),
    )
    return replace(base, **changes)


def lists(**changes: Any) -> RiskLists:
    base = RiskLists(
        blocked_accounts=frozenset({BLOCKED}),
        blocked_phones=frozenset({"17000001234"}),
        allow_list=(),
        snoozes=(),
    )
    return replace(base, **changes)


@dataclass(frozen=True)
class Kit:
    """The builders, handed to tests as the ``kit`` fixture."""

    now: datetime = NOW
    daughter: str = DAUGHTER
    stranger: str = STRANGER
    blocked: str = BLOCKED

    profile = staticmethod(profile)
    transfer = staticmethod(transfer)
    to_stranger = staticmethod(to_stranger)
    session = staticmethod(session)
    lists = staticmethod(lists)
    habits = staticmethod(habits)


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()


def load_scenarios() -> list[dict[str, Any]]:
    """Every scenario from every YAML file under scenarios/, with its file name."""
    found = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for item in data["scenarios"]:
            found.append({**item, "_file": path.name})
    return found


@pytest.fixture(scope="session")
def scenarios() -> list[dict[str, Any]]:
    return load_scenarios()


def load_suite() -> list[dict[str, Any]]:
    """The whole labelled suite: the original scenarios and the tuning cases
    (part ``tuning``), then the held-out cases (part ``held_out``)."""
    from compact import load_compact

    original = [{**s, "part": s.get("part", "tuning")} for s in load_scenarios()]
    return original + load_compact(SCENARIOS / "tuning") + load_compact(SCENARIOS / "held_out")


@pytest.fixture(scope="session")
def suite() -> list[dict[str, Any]]:
    return load_suite()


# The scenario suite stores its figures here so the terminal summary shows
# them even without -s.
_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figures(request: pytest.FixtureRequest) -> list[str]:
    return request.config.stash.setdefault(_FIGURES, [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("risk scenario suite")
        for line in lines:
            terminalreporter.write_line(line)
