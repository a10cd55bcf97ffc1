"""The customer's products: the balance inquiry and time deposits (opening, breaking).

Opening and breaking a time deposit move money through the clearing account like
any payment; those transfers name the clearing account as their counterparty,
which is how the habit profile and the daily limit tell them apart from payments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Account, TimeDeposit, Transfer

from .core import (
    HOME_CURRENCY,
    LOCAL_TZ,
    SOURCE_KINDS,
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
from .handling import Outcome, Request, record_customer_event
from .postings import customer_accounts, post, source_account

#: Time deposit terms (months) and their annual rates.
DEPOSIT_RATES: Final[Mapping[int, Decimal]] = {
    3: Decimal("0.0105"),
    6: Decimal("0.0125"),
    12: Decimal("0.0135"),
    24: Decimal("0.0145"),
    36: Decimal("0.0175"),
    60: Decimal("0.0180"),
}
#: A deposit broken before maturity earns the demand rate for the days it was held.
DEMAND_RATE: Final = Decimal("0.0015")
#: Interest counts a year as 360 days, as deposit interest in China does.
DAYS_PER_YEAR: Final = 360
MIN_DEPOSIT: Final = Decimal("50.00")


def add_months(at: datetime, months: int, tz: tzinfo = LOCAL_TZ) -> datetime:
    """The same local day ``months`` later (clamped to the end of a shorter month)."""
    local = at.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return local.replace(year=year, month=month, day=min(local.day, last_day))


async def balance_inquiry(session: AsyncSession, req: Request) -> Outcome:
    accounts = [
        a for a in await customer_accounts(session, req.customer_id) if a.kind in SOURCE_KINDS
    ]
    if not accounts:
        raise ExecutionFailed("unknown_account", "the customer has no accounts")
    deposits = (
        await session.execute(
            select(TimeDeposit)
            .where(TimeDeposit.customer_id == req.customer_id, TimeDeposit.state == "open")
            .order_by(TimeDeposit.matures_at, TimeDeposit.deposit_id)
            .execution_options(populate_existing=True)
        )
    ).scalars()
    totals: dict[str, Decimal] = {}
    for account in accounts:
        totals[account.currency] = totals.get(account.currency, Decimal("0")) + account.balance
    return Outcome(
        {
            "accounts": [
                {
                    "account_id": a.account_id,
                    "kind": a.kind,
                    "currency": a.currency,
                    "balance": money_str(a.balance),
                }
                for a in accounts
            ],
            "time_deposits": [_deposit_view(d) for d in deposits],
            "totals": {currency: money_str(total) for currency, total in totals.items()},
            "as_of": iso(req.now),
        }
    )


async def time_deposit(
    session: AsyncSession, req: Request, *, home_bank: str, tz: tzinfo, clearing_account: str
) -> Outcome:
    """Open or break a time deposit; ``tz`` is the customers' local time zone (terms
    and days held count local days), ``home_bank`` names the bank on the movement."""
    books = _Books(home_bank, tz, clearing_account)
    action = req.params.get("action")
    if action == "open":
        return await _open_deposit(session, req, books)
    if action == "break":
        return await _break_deposit(session, req, books)
    raise ExecutionFailed("invalid_params", "action must be 'open' or 'break'")


@dataclass(frozen=True)
class _Books:
    home_bank: str
    tz: tzinfo
    clearing_account: str


async def _open_deposit(session: AsyncSession, req: Request, books: _Books) -> Outcome:
    p = req.params
    amount = parse_money(p.get("amount"), "amount")
    if amount < MIN_DEPOSIT:
        raise ExecutionFailed(
            "invalid_params", f"a time deposit starts at {money_str(MIN_DEPOSIT)}"
        )
    currency = parse_currency(p.get("currency", HOME_CURRENCY))
    term = p.get("term_months")
    if isinstance(term, bool) or not isinstance(term, int) or term not in DEPOSIT_RATES:
        raise ExecutionFailed(
            "invalid_params", f"term_months must be one of {sorted(DEPOSIT_RATES)}"
        )
    account = await source_account(
        session, req.customer_id, currency, optional_text(p, "from_account", 34)
    )
    if account.balance < amount:
        raise ExecutionFailed(
            "insufficient_funds",
            f"available {money_str(account.balance)} {currency} "
            f"is less than {money_str(amount)} {currency}",
        )
    deposit = TimeDeposit(
        deposit_id=new_id("TD"),
        customer_id=req.customer_id,
        account_id=account.account_id,
        principal=amount,
        currency=currency,
        term_months=term,
        annual_rate=DEPOSIT_RATES[term],
        opened_at=req.now,
        matures_at=add_months(req.now, term, books.tz),
        state="open",
        closed_at=None,
    )
    session.add(deposit)
    transfer = _internal_transfer(req, account, deposit, amount, "out", "定期存款开户", books)
    balance_after = await post(
        session, transfer, account, -amount, clearing_account=books.clearing_account
    )
    return Outcome(
        {"action": "open", **_deposit_view(deposit), "balance_after": money_str(balance_after)},
        clearing_delta=amount,
    )


async def _break_deposit(session: AsyncSession, req: Request, books: _Books) -> Outcome:
    deposit_id = parse_text(req.params, "deposit_id", 32)
    deposit = await session.get(TimeDeposit, deposit_id, populate_existing=True)
    if deposit is None or deposit.customer_id != req.customer_id:
        raise ExecutionFailed("deposit_not_found", "the customer has no such time deposit")
    if deposit.state != "open":
        raise ExecutionFailed("deposit_not_open", f"the deposit is already {deposit.state}")
    account = await session.get(Account, deposit.account_id, populate_existing=True)
    if account is None:  # pragma: no cover - the foreign key forbids it
        raise ExecutionFailed("unknown_account", "the deposit's account is gone")
    principal = cents(deposit.principal)
    matured = req.now >= deposit.matures_at
    if matured:
        interest = cents(principal * deposit.annual_rate * deposit.term_months / 12)
    else:
        tz = books.tz
        held = req.now.astimezone(tz).date() - deposit.opened_at.astimezone(tz).date()
        interest = cents(principal * DEMAND_RATE * held.days / DAYS_PER_YEAR)
    payout = principal + interest
    deposit.state = "matured" if matured else "broken"
    deposit.closed_at = req.now
    transfer = _internal_transfer(req, account, deposit, payout, "in", "定期存款支取", books)
    balance_after = await post(
        session, transfer, account, payout, clearing_account=books.clearing_account
    )
    if not matured:
        record_customer_event(
            session,
            req,
            "time_deposit_break",
            {"deposit_id": deposit.deposit_id, "principal": money_str(principal)},
        )
        await session.flush()
    return Outcome(
        {
            "action": "break",
            **_deposit_view(deposit),
            "interest": money_str(interest),
            "payout": money_str(payout),
            "closed_at": iso(req.now),
            "balance_after": money_str(balance_after),
        },
        clearing_delta=-payout,
    )


def _internal_transfer(
    req: Request,
    account: Account,
    deposit: TimeDeposit,
    amount: Decimal,
    direction: str,
    label: str,
    books: _Books,
) -> Transfer:
    """A movement between the customer's account and their time deposit."""
    return Transfer(
        transfer_id=new_id("TR"),
        operation_id=req.operation_id,
        customer_id=req.customer_id,
        from_account_id=account.account_id,
        payee_account=books.clearing_account,
        payee_name=f"{label} {deposit.deposit_id}",
        payee_bank=books.home_bank,
        amount=amount,
        currency=deposit.currency,
        direction=direction,
        executed_at=req.now,
    )


def _deposit_view(deposit: TimeDeposit) -> dict[str, Any]:
    return {
        "deposit_id": deposit.deposit_id,
        "principal": money_str(deposit.principal),
        "currency": deposit.currency,
        "term_months": deposit.term_months,
        "annual_rate": str(deposit.annual_rate.quantize(Decimal("0.0001"))),
        "opened_at": iso(deposit.opened_at),
        "matures_at": iso(deposit.matures_at),
        "state": deposit.state,
    }
