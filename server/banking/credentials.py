"""Credentials and limits: password resets, card activation and daily transfer limits.

None of these moves money; each changes what the customer may do next, and the
limit change and password reset leave a customer event that the risk engine
reads (a raised limit or a new password shortly before a large transfer is a
sign of a takeover).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Card, PasswordResetTicket, TransferLimit

from .core import (
    CHANNELS,
    DEFAULT_DAILY_LIMITS,
    HOME_CURRENCY,
    ExecutionFailed,
    cents,
    iso,
    money_str,
    new_id,
    optional_text,
    parse_currency,
    parse_money,
)
from .counter import CounterDesk
from .handling import Outcome, Request, record_customer_event

#: How long a password-reset ticket can be redeemed in the app.
TICKET_TTL: Final = timedelta(minutes=30)
RESET_CHANNELS: Final = frozenset({"mobile", "card", "passbook"})


async def daily_limit(session: AsyncSession, customer_id: str, channel: str) -> Decimal:
    """The customer's daily transfer limit on ``channel`` (the default if never set)."""
    row = await session.get(TransferLimit, (customer_id, channel), populate_existing=True)
    if row is None:
        return DEFAULT_DAILY_LIMITS[channel]
    if row.currency != HOME_CURRENCY:
        raise ExecutionFailed("currency_mismatch", f"the {channel} limit is not in CNY")
    return cents(row.daily_limit)


async def limit_change(session: AsyncSession, req: Request) -> Outcome:
    p = req.params
    channel = p.get("channel")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise ExecutionFailed("invalid_params", f"channel must be one of {sorted(CHANNELS)}")
    new_limit = parse_money(p.get("new_limit"), "new_limit", allow_zero=True)
    currency = parse_currency(p.get("currency", HOME_CURRENCY))
    row = await session.get(TransferLimit, (req.customer_id, channel), populate_existing=True)
    old_limit = DEFAULT_DAILY_LIMITS[channel] if row is None else cents(row.daily_limit)
    if row is None:
        session.add(
            TransferLimit(
                customer_id=req.customer_id,
                channel=channel,
                daily_limit=new_limit,
                currency=currency,
                updated_at=req.now,
            )
        )
    else:
        row.daily_limit, row.currency, row.updated_at = new_limit, currency, req.now
    direction = "raise" if new_limit > old_limit else "lower" if new_limit < old_limit else "same"
    result = {
        "channel": channel,
        "old_limit": money_str(old_limit),
        "new_limit": money_str(new_limit),
        "currency": currency,
    }
    record_customer_event(session, req, "limit_change", {**result, "direction": direction})
    await session.flush()
    return Outcome(result)


async def password_reset(session: AsyncSession, req: Request, *, counter: CounterDesk) -> Outcome:
    channel = req.params.get("channel", "mobile")
    if channel not in RESET_CHANNELS:
        raise ExecutionFailed("invalid_params", f"channel must be one of {sorted(RESET_CHANNELS)}")
    # A card's or passbook's password: not while it is reported lost.
    medium = await counter.reset_target(session, req.customer_id, req.params)
    # A new ticket supersedes any earlier one that was never used.
    await session.execute(
        update(PasswordResetTicket)
        .where(
            PasswordResetTicket.customer_id == req.customer_id,
            PasswordResetTicket.state == "issued",
        )
        .values(state="expired")
    )
    ticket = PasswordResetTicket(
        ticket_id=new_id("PR"),
        customer_id=req.customer_id,
        operation_id=req.operation_id,
        state="issued",
        created_at=req.now,
        expires_at=req.now + TICKET_TTL,
    )
    session.add(ticket)
    record_customer_event(
        session, req, "password_reset", {"channel": channel, "ticket_id": ticket.ticket_id}
    )
    await session.flush()
    return Outcome(
        {
            "ticket_id": ticket.ticket_id,
            "channel": channel,
            **({"medium_id": medium.medium_id} if medium is not None else {}),
            "state": "issued",
            "expires_at": iso(ticket.expires_at),
        }
    )


async def card_activation(session: AsyncSession, req: Request) -> Outcome:
    card_id = optional_text(req.params, "card_id", 32)
    last4 = optional_text(req.params, "last4", 4)
    cards = (
        (
            await session.execute(
                select(Card)
                .where(Card.customer_id == req.customer_id)
                .order_by(Card.card_id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    if card_id is not None:
        matches = [c for c in cards if c.card_id == card_id]
    elif last4 is not None:
        same = [c for c in cards if c.last4 == last4]
        matches = [c for c in same if c.state == "issued"] or same
    else:
        matches = [c for c in cards if c.state == "issued"]
    if not matches:
        raise ExecutionFailed("card_not_found", "no card waiting for activation matches")
    if len(matches) > 1:
        raise ExecutionFailed(
            "card_ambiguous", "several cards match; name the card by its last four digits"
        )
    card = matches[0]
    if card.state == "active":
        raise ExecutionFailed("card_already_active", "the card is already active")
    if card.state == "lost":
        raise ExecutionFailed(
            "medium_reported_lost", "the card is reported lost; activate its replacement"
        )
    if card.state != "issued":
        raise ExecutionFailed("card_blocked", f"the card is {card.state}")
    card.state, card.activated_at = "active", req.now
    await session.flush()
    return Outcome(
        {
            "card_id": card.card_id,
            "last4": card.last4,
            "state": card.state,
            "activated_at": iso(req.now),
        }
    )
