"""load_risk_inputs: the risk engine's view of a customer, read from the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

import risk
from server.banking import SqlLedger, load_risk_inputs
from server.banking.seed_ledger import DEMO_CUSTOMERS, seed_ledger
from server.db.banking import (
    Account,
    AllowListEntry,
    BlockedPayee,
    BlockedPhone,
    Payee,
    RuleSnooze,
    Transfer,
)
from server.db.models import Customer
from server.ports import Transaction

from .helpers import STRANGER, Sessions, check_books, days_between, op_id, transfer_params


async def _inputs(
    sessions: Sessions, customer_id: str, now: datetime
) -> tuple[risk.CustomerProfile, risk.RiskLists]:
    async with sessions() as s:
        return await load_risk_inputs(s, customer_id, now)


async def test_profile_reflects_the_seeded_history(sessions: Sessions) -> None:
    now = datetime.now(UTC)
    profile, _ = await _inputs(sessions, "C1001", now)

    assert (profile.name, profile.age, profile.home_bank) == ("李秀英", 78, "ICBC")
    assert profile.tenure_days is not None and profile.tenure_days > 6 * 365
    async with sessions() as s:
        balances = (
            (await s.execute(select(Account.balance).where(Account.customer_id == "C1001")))
            .scalars()
            .all()
        )
    assert profile.balance == sum(balances, Decimal("0"))
    habits = profile.habits
    assert habits is not None
    assert habits.count >= 6 and habits.history_days(now) >= 60  # a personal baseline
    assert all(days_between(t.at, now) <= 180 for t in habits.window)
    assert all(7 <= t.hour <= 17 for t in habits.window)  # local hours, by day
    assert habits.total_count >= habits.count
    [daughter] = [p for p in profile.known_payees or () if p.relation == "family"]
    assert daughter.name == "张丽"
    assert abs((now.date() - daughter.first_seen).days - round(6 * 365.25)) <= 1
    assert profile.recent_events == ()


async def test_a_new_transfer_is_in_the_next_profile(sessions: Sessions, ledger: SqlLedger) -> None:
    now = datetime.now(UTC)
    before, _ = await _inputs(sessions, "C1002", now)
    assert before.habits is not None and before.balance is not None

    async with sessions() as s:
        await ledger.execute(
            Transaction(s), op_id(), "C1002", "transfer", transfer_params("3333.33"), now
        )
        await s.commit()
    after, _ = await _inputs(sessions, "C1002", now + timedelta(seconds=1))

    assert after.habits is not None
    assert after.habits.count == before.habits.count + 1
    assert after.habits.total_count == before.habits.total_count + 1
    assert after.habits.window[-1].amount == Decimal("3333.33")
    assert after.habits.new_payee_count == before.habits.new_payee_count + 1
    assert after.balance == before.balance - Decimal("3333.33")
    new = {p.account: p for p in after.known_payees or ()}[STRANGER]
    assert new.first_seen == now.date() and new.relation is None


async def test_recent_events_and_limit_direction(sessions: Sessions, ledger: SqlLedger) -> None:
    now = datetime.now(UTC)
    async with sessions() as s:
        await ledger.execute(
            Transaction(s),
            op_id(),
            "C1004",
            "limit_change",
            {"channel": "mobile", "new_limit": "5000", "currency": "CNY"},
            now,
        )
        await ledger.execute(Transaction(s), op_id(), "C1004", "password_reset", {}, now)
        await s.commit()
    profile, _ = await _inputs(sessions, "C1004", now)
    # Lowering a limit protects the customer: it is not passed on as a limit change.
    assert [e.kind for e in profile.recent_events or ()] == ["password_reset"]

    async with sessions() as s:
        await ledger.execute(
            Transaction(s),
            op_id(),
            "C1004",
            "limit_change",
            {"channel": "counter", "new_limit": "80000", "currency": "CNY"},
            now,
        )
        await s.commit()
    profile, _ = await _inputs(sessions, "C1004", now)
    assert sorted(e.kind for e in profile.recent_events or ()) == [
        "limit_change",
        "password_reset",
    ]
    # Thirty days on, they are no longer recent.
    later, _ = await _inputs(sessions, "C1004", now + timedelta(days=31))
    assert later.recent_events == ()


async def test_account_takeover_sequence_is_seeded(sessions: Sessions) -> None:
    profile, _ = await _inputs(sessions, "C1017", datetime.now(UTC))
    assert sorted(e.kind for e in profile.recent_events or ()) == ["new_device", "password_reset"]


async def test_thin_history_falls_back_to_the_age_band(sessions: Sessions) -> None:
    now = datetime.now(UTC)
    profile, _ = await _inputs(sessions, "C1019", now)

    assert profile.tenure_days is not None and profile.tenure_days <= 41
    habits = profile.habits
    assert habits is not None and habits.count == 2
    assert habits.history_days(now) < 60
    assert {p.relation for p in profile.known_payees or ()} == {"family", "utility"}


async def test_lists_keep_only_what_is_in_force(sessions: Sessions) -> None:
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    async with sessions() as s:
        s.add_all(
            [
                BlockedPayee(
                    account_no="6222000011112222", reason="mule", added_by="S01", added_at=now
                ),
                BlockedPhone(
                    phone="17000000000", reason="scam calls", added_by="S01", added_at=now
                ),
                AllowListEntry(
                    customer_id="C1001",
                    payee_account="6217000000000001",
                    reason="verified grandson",
                    added_by="S02",
                    added_at=now - hour,
                    expires_at=now + hour,
                ),
                AllowListEntry(
                    customer_id="C1001",
                    payee_account="6217000000000002",
                    reason="old entry",
                    added_by="S02",
                    added_at=now - 3 * hour,
                    expires_at=now - hour,
                ),
                AllowListEntry(
                    customer_id="C1002",
                    payee_account="6217000000000003",
                    reason="someone else",
                    added_by="S02",
                    added_at=now,
                    expires_at=now + hour,
                ),
                RuleSnooze(
                    rule_code="odd_hour",
                    customer_id=None,
                    reason="festival",
                    added_by="S09",
                    added_at=now,
                    expires_at=now + hour,
                ),
                RuleSnooze(
                    rule_code="new_payee",
                    customer_id="C1002",
                    reason="other customer",
                    added_by="S09",
                    added_at=now,
                    expires_at=now + hour,
                ),
                RuleSnooze(
                    rule_code="large_amount",
                    customer_id="C1001",
                    reason="ended",
                    added_by="S09",
                    added_at=now - 3 * hour,
                    expires_at=now - hour,
                ),
            ]
        )
        await s.commit()

    _, lists = await _inputs(sessions, "C1001", now)

    assert lists.blocked_accounts == frozenset({"6222000011112222"})
    assert lists.blocked_phones == frozenset({"17000000000"})
    assert [e.payee_account for e in lists.allow_list or ()] == ["6217000000000001"]
    assert [s.rule_code for s in lists.snoozes] == ["odd_hour"]


async def test_the_engine_can_decide_on_a_loaded_profile(sessions: Sessions) -> None:
    """Every fact a transfer's rules read is known: the profile is complete."""
    now = datetime.now(UTC)
    profile, lists = await _inputs(sessions, "C1002", now)
    son = next(p for p in profile.known_payees or () if p.relation == "family")
    session = risk.CallSession(
        earlier_operations=(), stated_reason="给儿子买房", local_time=now.astimezone()
    )
    operation = risk.Operation(
        kind="transfer",
        amount=Decimal("25000"),
        currency="CNY",
        payee_account=son.account,
        payee_name=son.name,
        payee_bank="BOC",
    )

    assessment = risk.RiskEngine().evaluate(operation, profile, session, lists, now)

    assert assessment.unknown_features == ()


async def test_seeding_is_idempotent_and_the_books_balance(sessions: Sessions) -> None:
    async with sessions() as s:
        transfers_before = len((await s.execute(select(Transfer.transfer_id))).all())

    again = await seed_ledger(sessions, datetime.now(UTC))

    assert again == {"ledger_customers": 0, "transfers": 0}
    async with sessions() as s:
        assert len((await s.execute(select(Transfer.transfer_id))).all()) == transfers_before
        customers = (
            (await s.execute(select(Customer).where(Customer.customer_id.in_(DEMO_CUSTOMERS))))
            .scalars()
            .all()
        )
        rows = await s.execute(
            select(Account.customer_id, Account.kind, Account.balance).where(
                Account.kind.in_(("current", "passbook"))
            )
        )
        # The account at hand: the current account, or a passbook-only customer's passbook.
        current: dict[str, Decimal] = {}
        for customer_id, kind, amount in rows:
            if kind == "current" or customer_id == "C1021":
                current[customer_id] = amount
        payees = {p for p in (await s.execute(select(Payee.customer_id))).scalars()}
    assert len(customers) == 21
    assert all(c.customer_since is not None for c in customers)
    assert {c.preferred_dialect for c in customers} == {"cmn", "wuu", "yue"}
    for customer_id in DEMO_CUSTOMERS:
        assert Decimal("20000") <= current[customer_id] <= Decimal("400000"), customer_id
        assert customer_id in payees
    await check_books(sessions)
