"""A transfer to a payee: the checks before the money leaves, its postings, the payee book.

A payment is ``-amount`` on the customer's account and ``+amount`` on clearing.
Before it posts, the payee is checked against the block list, the balance
against the amount, and the day's payments against the branch's daily limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from risk.normalise import normalise_account
from server.db.banking import BlockedPayee, Payee, Transfer

from .core import (
    BRANCH_CHANNEL,
    HOME_CURRENCY,
    ExecutionFailed,
    cents,
    iso,
    money_str,
    new_id,
    optional_text,
    parse_currency,
    parse_money,
    parse_text,
)
from .credentials import daily_limit
from .handling import Outcome, Request
from .postings import post, source_account


async def transfer(
    session: AsyncSession, req: Request, *, clearing_account: str, tz: tzinfo
) -> Outcome:
    """Pay ``amount`` from the customer's account to the payee in ``req.params``."""
    p = req.params
    amount = parse_money(p.get("amount"), "amount")
    currency = parse_currency(p.get("currency", HOME_CURRENCY))
    raw_payee = parse_text(p, "payee_account", 64)
    payee_account = normalise_account(raw_payee)
    if not 6 <= len(payee_account) <= 34:
        raise ExecutionFailed("invalid_params", "payee_account must be 6 to 34 characters")
    payee_name = parse_text(p, "payee_name", 100)
    payee_bank = parse_text(p, "payee_bank", 64)
    account = await source_account(
        session, req.customer_id, currency, optional_text(p, "from_account", 34)
    )
    own = {normalise_account(account.account_id), normalise_account(clearing_account)}
    if payee_account in own:
        raise ExecutionFailed("invalid_params", "the payee is the account paid from")
    if await _is_blocked(session, raw_payee, payee_account):
        raise ExecutionFailed("payee_blocked", "the payee account is on the block list")
    if account.balance < amount:
        raise ExecutionFailed(
            "insufficient_funds",
            f"available {money_str(account.balance)} {currency} "
            f"is less than {money_str(amount)} {currency}",
        )
    limit = await daily_limit(session, req.customer_id, BRANCH_CHANNEL)
    spent = await _spent_today(
        session, req.customer_id, currency, req.now, clearing_account=clearing_account, tz=tz
    )
    if spent + amount > limit:
        raise ExecutionFailed(
            "over_daily_limit",
            f"today's transfers would total {money_str(spent + amount)} {currency}, "
            f"over the {BRANCH_CHANNEL} limit of {money_str(limit)} {currency}",
        )
    payment = Transfer(
        transfer_id=new_id("TR"),
        operation_id=req.operation_id,
        customer_id=req.customer_id,
        from_account_id=account.account_id,
        payee_account=payee_account,
        payee_name=payee_name,
        payee_bank=payee_bank,
        amount=amount,
        currency=currency,
        direction="out",
        executed_at=req.now,
    )
    balance_after = await post(
        session, payment, account, -amount, clearing_account=clearing_account
    )
    new_payee = await _remember_payee(
        session, req.customer_id, payee_account, payee_name, payee_bank, req.now
    )
    return Outcome(
        {
            "transfer_id": payment.transfer_id,
            "amount": money_str(amount),
            "currency": currency,
            "balance_after": money_str(balance_after),
            "executed_at": iso(req.now),
            "new_payee": new_payee,
        },
        clearing_delta=amount,
    )


async def _spent_today(
    session: AsyncSession,
    customer_id: str,
    currency: str,
    now: datetime,
    *,
    clearing_account: str,
    tz: tzinfo,
) -> Decimal:
    """Outgoing payments in the customer's local day containing ``now``.

    Transfers carry no channel, so every payment of the day counts against
    the branch's limit: the conservative reading. Movements into the
    customer's own time deposits are not payments and do not count.
    """
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    amounts = await session.execute(
        select(Transfer.amount).where(
            Transfer.customer_id == customer_id,
            Transfer.direction == "out",
            Transfer.currency == currency,
            Transfer.payee_account != clearing_account,
            Transfer.executed_at >= start,
            Transfer.executed_at < start + timedelta(days=1),
        )
    )
    return cents(sum((cents(a) for a in amounts.scalars()), Decimal("0")))


async def _is_blocked(session: AsyncSession, raw: str, normalised: str) -> bool:
    hit = await session.scalar(
        select(BlockedPayee.account_no)
        .where(BlockedPayee.account_no.in_({raw, normalised}))
        .limit(1)
    )
    return hit is not None


async def _remember_payee(
    session: AsyncSession,
    customer_id: str,
    account_no: str,
    name: str,
    bank: str,
    now: datetime,
) -> bool:
    """Add the payee to the customer's payee book on the first transfer; True if new."""
    existing = await session.scalar(
        select(Payee.payee_id).where(
            Payee.customer_id == customer_id, Payee.account_no == account_no
        )
    )
    if existing is not None:
        return False
    session.add(
        Payee(
            customer_id=customer_id,
            account_no=account_no,
            name=name,
            bank=bank,
            relation=None,
            first_seen_at=now,
        )
    )
    await session.flush()
    return True
