"""Reading the ledger back in tests, always through a fresh session."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.banking import CLEARING_ACCOUNT_ID
from server.banking.core import cents
from server.db.banking import Account, Payee, Posting, Transfer

Sessions = async_sessionmaker[AsyncSession]

STRANGER = "6230580000123456789"


def op_id() -> str:
    return uuid.uuid4().hex


def transfer_params(
    amount: str, account: str = STRANGER, name: str = "陈先生", bank: str = "CCB"
) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "CNY",
        "payee_account": account,
        "payee_name": name,
        "payee_bank": bank,
    }


async def current_account(sessions: Sessions, customer_id: str) -> str:
    async with sessions() as s:
        account_id = await s.scalar(
            select(Account.account_id).where(
                Account.customer_id == customer_id, Account.kind == "current"
            )
        )
    assert account_id is not None
    return account_id


async def balance(sessions: Sessions, account_id: str = CLEARING_ACCOUNT_ID) -> Decimal:
    async with sessions() as s:
        value = await s.scalar(select(Account.balance).where(Account.account_id == account_id))
    assert value is not None
    return cents(value)


async def family_payee(sessions: Sessions, customer_id: str) -> Payee:
    async with sessions() as s:
        payee = await s.scalar(
            select(Payee)
            .where(Payee.customer_id == customer_id, Payee.relation == "family")
            .order_by(Payee.first_seen_at)
            .limit(1)
        )
    assert payee is not None
    return payee


async def counts(sessions: Sessions) -> tuple[int, int]:
    """(transfers, postings) in the whole ledger."""
    async with sessions() as s:
        transfers = await s.scalar(select(func.count()).select_from(Transfer))
        postings = await s.scalar(select(func.count()).select_from(Posting))
    return int(transfers or 0), int(postings or 0)


async def transfers_for(sessions: Sessions, operation_id: str) -> list[Transfer]:
    async with sessions() as s:
        rows = await s.execute(select(Transfer).where(Transfer.operation_id == operation_id))
        return list(rows.scalars())


async def check_books(sessions: Sessions) -> None:
    """Every transfer's postings sum to zero, every balance is the sum of its postings,
    and all balances together sum to zero."""
    async with sessions() as s:
        postings = (await s.execute(select(Posting))).scalars().all()
        accounts = (await s.execute(select(Account))).scalars().all()
    by_transfer: dict[str, Decimal] = defaultdict(Decimal)
    by_account: dict[str, Decimal] = defaultdict(Decimal)
    for p in postings:
        by_transfer[p.transfer_id] += cents(p.amount)
        by_account[p.account_id] += cents(p.amount)
    assert {t: v for t, v in by_transfer.items() if v != 0} == {}
    for a in accounts:
        assert cents(a.balance) == by_account[a.account_id], a.account_id
    assert sum((cents(a.balance) for a in accounts), Decimal("0")) == 0


def days_between(a: datetime, b: datetime) -> float:
    return abs((a - b).total_seconds()) / 86400
