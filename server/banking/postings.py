"""How money moves on the embedded ledger: two postings per transfer, one clearing account.

Every movement is a :class:`~server.db.banking.Transfer` with two
:class:`~server.db.banking.Posting` legs, one on the customer's account and one
on the internal clearing account, that sum to zero. The customer's balance
changes at once (the customer lock is held); the shared clearing row changes
last, by one atomic increment (:func:`move_clearing`), so it stays locked for
the shortest time. See :mod:`server.banking.ledger` for the lock order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from risk.normalise import normalise_account
from server.db.banking import Account, Posting, Transfer

from .core import HOME_CURRENCY, SOURCE_KINDS, ExecutionFailed, cents
from .media import account_usable


async def ensure_clearing(session: AsyncSession, clearing_account: str, now: datetime) -> None:
    """Create the clearing account if this database has none yet (race-free)."""
    exists = await session.scalar(
        select(Account.account_id).where(Account.account_id == clearing_account)
    )
    if exists is not None:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(Account)
        .values(
            account_id=clearing_account,
            customer_id=None,
            kind="clearing",
            currency=HOME_CURRENCY,
            balance=Decimal("0.00"),
            opened_at=now,
        )
        .on_conflict_do_nothing()
    )


async def post(
    session: AsyncSession,
    transfer: Transfer,
    account: Account,
    delta: Decimal,
    *,
    clearing_account: str,
) -> Decimal:
    """Record ``transfer`` with its two legs and change the customer's balance.

    ``delta`` is the change on the customer's account; clearing gets the
    opposite (applied to its balance later, see :func:`move_clearing`).
    Flushing the transfer first claims its ``operation_id``. Returns the
    customer account's new balance.
    """
    await ensure_clearing(session, clearing_account, transfer.executed_at)
    session.add(transfer)
    await session.flush()
    legs = [(account.account_id, cents(delta)), (clearing_account, cents(-delta))]
    if sum((amount for _, amount in legs), Decimal("0")) != 0:  # pragma: no cover
        raise AssertionError("postings of a transfer must sum to zero")
    session.add_all(
        Posting(
            transfer_id=transfer.transfer_id,
            account_id=account_id,
            amount=amount,
            currency=transfer.currency,
            posted_at=transfer.executed_at,
        )
        for account_id, amount in legs
    )
    # Safe to compute in Python: the customer lock is held, so no one else
    # changes this customer's accounts until we commit.
    account.balance = cents(account.balance + delta)
    await session.flush()
    return account.balance


async def move_clearing(session: AsyncSession, clearing_account: str, delta: Decimal) -> None:
    """Apply the clearing legs: one atomic increment of the shared row.

    ``round(..., 2)`` keeps SQLite's floating-point storage at whole cents;
    on PostgreSQL the column is exact and the rounding changes nothing.
    """
    await session.execute(
        update(Account)
        .where(Account.account_id == clearing_account)
        .values(balance=func.round(Account.balance + cents(delta), 2))
    )


async def customer_accounts(session: AsyncSession, customer_id: str) -> Sequence[Account]:
    """The customer's accounts, oldest first, read afresh (not from the identity map)."""
    rows = await session.execute(
        select(Account)
        .where(Account.customer_id == customer_id)
        .order_by(Account.opened_at, Account.account_id)
        .execution_options(populate_existing=True)
    )
    return rows.scalars().all()


async def source_account(
    session: AsyncSession, customer_id: str, currency: str, wanted: str | None
) -> Account:
    """The account to pay from: the one asked for, else the current account
    (a passbook-only customer's passbook). An account whose card or passbook
    is reported lost is refused (``medium_reported_lost``)."""
    account = await _pick_source(session, customer_id, currency, wanted)
    await account_usable(session, account.account_id)
    return account


async def _pick_source(
    session: AsyncSession, customer_id: str, currency: str, wanted: str | None
) -> Account:
    accounts = await customer_accounts(session, customer_id)
    if wanted is not None:
        key = normalise_account(wanted)
        for account in accounts:
            if normalise_account(account.account_id) == key:
                if account.kind not in SOURCE_KINDS:
                    break
                if account.currency != currency:
                    raise ExecutionFailed(
                        "currency_mismatch", f"that account is kept in {account.currency}"
                    )
                return account
        raise ExecutionFailed("unknown_account", "the customer has no such account")
    for kind in SOURCE_KINDS:
        for account in accounts:
            if account.kind == kind and account.currency == currency:
                return account
    raise ExecutionFailed("unknown_account", f"the customer has no {currency} account")
