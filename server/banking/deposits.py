"""What the risk engine needs to know about a time deposit before it is broken."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import TimeDeposit

from .core import cents


async def deposit_break_facts(
    session: AsyncSession,
    customer_id: str,
    deposit_id: str,
    now: datetime,
    *,
    demand_rate: Decimal,
    days_per_year: int,
    tz: tzinfo,
) -> dict[str, Any]:
    """Principal, currency, term and the interest an early break gives up.

    The interest given up is what the deposit has earned at its own rate so far
    less what the demand rate pays instead. A deposit that is not the
    customer's, not open, or already matured gives nothing (the facts stay
    unknown, and execution refuses it later).
    """
    deposit = await session.get(TimeDeposit, deposit_id)
    if deposit is None or deposit.customer_id != customer_id or deposit.state != "open":
        return {}
    facts: dict[str, Any] = {
        "amount": str(cents(deposit.principal)),
        "currency": deposit.currency,
        "term_months": deposit.term_months,
    }
    if now >= deposit.matures_at:
        facts["interest_forfeited"] = "0.00"
        return facts
    held = now.astimezone(tz).date() - deposit.opened_at.astimezone(tz).date()
    lost = deposit.principal * (deposit.annual_rate - demand_rate) * held.days / days_per_year
    facts["interest_forfeited"] = str(cents(max(lost, Decimal("0"))))
    return facts
