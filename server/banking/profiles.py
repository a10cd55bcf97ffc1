"""What the risk engine knows about a customer, read from the ledger.

:func:`load_risk_inputs` builds a :class:`risk.CustomerProfile` and the
:class:`risk.RiskLists` in ten small indexed queries, fresh each time: the
transfers table is the transaction history, so a transfer executed a moment ago
is already in the next profile, on every node, with no cache to invalidate.
(``risk.HabitProfile.update`` exists for callers that keep profiles in memory;
the service does not, because several nodes execute transfers.)

The habit window is the last 180 days of outgoing payments. The whole-history
figures (first transfer, number of transfers, payees' first-seen dates) come
from one aggregate over all payments and from the payee book, whose
``first_seen_at`` records the first transfer to each payee, including payees
older than the ledger's own history.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import risk
from risk.normalise import normalise_account
from server.db.banking import (
    Account,
    AllowListEntry,
    BlockedPayee,
    BlockedPhone,
    CustomerEvent,
    Payee,
    RuleSnooze,
    Transfer,
)
from server.db.models import Customer

from .core import CLEARING_ACCOUNT_ID, HOME_BANK, HOME_CURRENCY, LOCAL_TZ, SOURCE_KINDS, cents

WINDOW_DAYS: Final = 180
EVENT_DAYS: Final = 30

_NO_REASON = "(no reason recorded)"


async def load_risk_inputs(
    session: AsyncSession,
    customer_id: str,
    now: datetime,
    *,
    home_bank: str = HOME_BANK,
    tz: tzinfo = LOCAL_TZ,
    clearing_account: str = CLEARING_ACCOUNT_ID,
    window_days: int = WINDOW_DAYS,
    event_days: int = EVENT_DAYS,
) -> tuple[risk.CustomerProfile, risk.RiskLists]:
    """The customer's profile and the risk lists as of ``now``.

    Unknown facts stay ``None`` (the engine then reviews rather than allows):
    an unknown customer gives a profile with nothing but its id. ``balance`` is
    the sum of the customer's CNY current, passbook and savings accounts (time
    deposits are not at hand). Limit changes that lowered or kept a limit are
    not passed on as ``limit_change`` events: the engine reads that kind as a
    raise, and lowering a limit protects the customer.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone aware")
    profile = await _profile(
        session, customer_id, now, home_bank, tz, clearing_account, window_days, event_days
    )
    lists = await load_risk_lists(session, customer_id, now)
    return profile, lists


async def _profile(
    session: AsyncSession,
    customer_id: str,
    now: datetime,
    home_bank: str,
    tz: tzinfo,
    clearing_account: str,
    window_days: int,
    event_days: int,
) -> risk.CustomerProfile:
    customer = (
        await session.execute(
            select(Customer.display_name, Customer.age, Customer.customer_since).where(
                Customer.customer_id == customer_id
            )
        )
    ).one_or_none()
    if customer is None:
        return risk.CustomerProfile(customer_id=customer_id)
    name, age, customer_since = customer

    accounts = (
        await session.execute(
            select(Account.kind, Account.currency, Account.balance, Account.opened_at).where(
                Account.customer_id == customer_id
            )
        )
    ).all()
    liquid = [
        cents(a.balance) for a in accounts if a.kind in SOURCE_KINDS and a.currency == HOME_CURRENCY
    ]
    balance = sum(liquid, Decimal("0")) if liquid else None
    since = customer_since or min((a.opened_at for a in accounts), default=None)
    tenure_days = None if since is None else max(0, (now - since).days)

    payments = (
        Transfer.customer_id == customer_id,
        Transfer.direction == "out",
        Transfer.currency == HOME_CURRENCY,
        Transfer.payee_account != clearing_account,
        Transfer.executed_at <= now,
    )
    window_rows = (
        await session.execute(
            select(Transfer.executed_at, Transfer.amount, Transfer.payee_account)
            .where(*payments, Transfer.executed_at > now - timedelta(days=window_days))
            .order_by(Transfer.executed_at)
        )
    ).all()
    total_count, first_payment = (
        await session.execute(select(func.count(), func.min(Transfer.executed_at)).where(*payments))
    ).one()

    payee_rows = (
        await session.execute(
            select(Payee.account_no, Payee.name, Payee.relation, Payee.first_seen_at).where(
                Payee.customer_id == customer_id
            )
        )
    ).all()
    known_payees = tuple(
        risk.KnownPayee(
            account=p.account_no,
            first_seen=p.first_seen_at.astimezone(UTC).date(),
            name=p.name,
            relation=p.relation,
        )
        for p in payee_rows
    )

    transactions = []
    for at, amount, payee in window_rows:
        local = at.astimezone(tz)
        transactions.append(
            risk.Transaction(
                at=local, amount=cents(amount), payee_account=payee, local_hour=local.hour
            )
        )
    habits = risk.HabitProfile.from_transactions(transactions, window_days=window_days, as_of=now)
    # Widen the whole-history figures beyond the window: the payee book knows
    # when each payee was first paid, even before the ledger's own history.
    first_seen = {normalise_account(p.account_no): p.first_seen_at for p in payee_rows}
    for t in transactions:
        key = normalise_account(t.payee_account or "")
        if key and key not in first_seen:
            first_seen[key] = t.at
    starts = [d for d in (first_payment, *first_seen.values()) if d is not None]
    new_payees = (
        0
        if first_payment is None
        else sum(1 for seen in first_seen.values() if seen >= first_payment)
    )
    habits = dataclasses.replace(
        habits,
        first_at=min(starts) if starts else None,
        total_count=int(total_count),
        new_payee_count=min(new_payees, int(total_count)),
        payee_first_seen=first_seen,
    )

    event_rows = (
        await session.execute(
            select(CustomerEvent.kind, CustomerEvent.at, CustomerEvent.data)
            .where(
                CustomerEvent.customer_id == customer_id,
                CustomerEvent.at > now - timedelta(days=event_days),
                CustomerEvent.at <= now,
            )
            .order_by(CustomerEvent.at)
        )
    ).all()
    events = tuple(
        risk.RecentEvent(kind=kind, at=at)
        for kind, at, data in event_rows
        if not (kind == "limit_change" and (data or {}).get("direction") in ("lower", "same"))
    )

    return risk.CustomerProfile(
        customer_id=customer_id,
        name=name,
        age=age,
        tenure_days=tenure_days,
        balance=balance,
        home_bank=home_bank,
        habits=habits,
        known_payees=known_payees,
        recent_events=events,
    )


async def load_risk_lists(session: AsyncSession, customer_id: str, now: datetime) -> risk.RiskLists:
    """Block lists (bank-wide), this customer's unexpired allow-list entries and snoozes."""
    blocked_accounts = frozenset((await session.execute(select(BlockedPayee.account_no))).scalars())
    blocked_phones = frozenset((await session.execute(select(BlockedPhone.phone))).scalars())
    allow_rows = (
        await session.execute(
            select(
                AllowListEntry.customer_id,
                AllowListEntry.payee_account,
                AllowListEntry.expires_at,
                AllowListEntry.reason,
            ).where(AllowListEntry.customer_id == customer_id, AllowListEntry.expires_at > now)
        )
    ).all()
    snooze_rows = (
        await session.execute(
            select(
                RuleSnooze.rule_code,
                RuleSnooze.expires_at,
                RuleSnooze.reason,
                RuleSnooze.customer_id,
            ).where(
                RuleSnooze.expires_at > now,
                or_(RuleSnooze.customer_id.is_(None), RuleSnooze.customer_id == customer_id),
            )
        )
    ).all()
    return risk.RiskLists(
        blocked_accounts=blocked_accounts,
        blocked_phones=blocked_phones,
        allow_list=tuple(
            risk.AllowListEntry(
                customer_id=a.customer_id,
                payee_account=a.payee_account,
                expires_at=a.expires_at,
                reason=a.reason.strip() or _NO_REASON,
            )
            for a in allow_rows
        ),
        snoozes=tuple(
            risk.RuleSnooze(
                rule_code=s.rule_code,
                expires_at=s.expires_at,
                reason=s.reason.strip() or _NO_REASON,
                customer_id=s.customer_id,
            )
            for s in snooze_rows
        ),
    )
