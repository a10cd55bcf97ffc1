"""An account's entries as a passbook or a statement prints them, with running balances."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Account, Posting, Transfer

from .statement import PrintedEntry, summary_of


async def balance_at(session: AsyncSession, account: Account, until: datetime) -> Decimal:
    """The account's balance just before ``until``: today's less what was posted since."""
    later = await session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.account_id == account.account_id, Posting.posted_at >= until
        )
    )
    return Decimal(str(account.balance)) - Decimal(str(later or 0))


async def account_entries(
    session: AsyncSession,
    account: Account,
    since: datetime | None,
    until: datetime,
    *,
    limit: int,
    tz: tzinfo,
    clearing_account: str,
) -> list[PrintedEntry]:
    """The account's postings up to ``until`` (newest ``limit`` of them, or all
    since ``since``), oldest first, each with the balance after it."""
    query = (
        select(Posting.amount, Posting.posted_at, Transfer.payee_name, Transfer.payee_account)
        .join(Transfer, Transfer.transfer_id == Posting.transfer_id)
        .where(Posting.account_id == account.account_id, Posting.posted_at < until)
        .order_by(Posting.posted_at.desc(), Posting.posting_id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Posting.posted_at >= since)
    rows = (await session.execute(query)).all()
    balance = await balance_at(session, account, until)
    entries: list[PrintedEntry] = []
    for amount, at, name, payee in rows:
        amount = Decimal(str(amount))
        entries.append(
            PrintedEntry(
                day=at.astimezone(tz).date(),
                summary=summary_of(amount, name, payee == clearing_account),
                amount=amount,
                balance=balance,
            )
        )
        balance -= amount
    return entries[::-1]
