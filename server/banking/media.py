"""A customer's cards and passbooks, which one an operation means, and loss blocks.

A card pays from the customer's current account (the one whose number ends in
the card's last four digits, else the first current account); a passbook is
the printed book of a passbook account. While a medium's loss report is open
(temporary or formal, until the replacement), nothing is paid from its account
and its password is not reset: refused with ``medium_reported_lost``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Account, Card, LossReport, Passbook

from .core import LOCAL_TZ, ExecutionFailed


@dataclass(frozen=True)
class Medium:
    medium: str  # card, passbook
    medium_id: str  # card id or passbook id
    account_id: str
    last4: str
    state: str  # card: issued, active, lost, blocked; passbook: active, lost

    @property
    def lost(self) -> bool:
        return self.state == "lost"

    def label(self) -> str:
        return f"{self.medium} ending {self.last4}"

    def named_by(self, ref: str) -> bool:
        """Whether ``ref`` (a medium id, an account number or last four digits) names it."""
        return ref in (self.medium_id, self.account_id, self.last4)


async def customer_media(session: AsyncSession, customer_id: str, medium: str) -> list[Medium]:
    """Every card or passbook of the customer, oldest first (lost ones included)."""
    if medium == "passbook":
        books = (
            await session.execute(
                select(Passbook)
                .where(Passbook.customer_id == customer_id)
                .order_by(Passbook.issued_at, Passbook.passbook_id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
        return [
            Medium("passbook", b.passbook_id, b.account_id, b.account_id[-4:], b.state)
            for b in books
        ]
    cards = (
        (
            await session.execute(
                select(Card)
                .where(Card.customer_id == customer_id)
                .order_by(Card.card_id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    currents = (
        (
            await session.execute(
                select(Account.account_id)
                .where(Account.customer_id == customer_id, Account.kind == "current")
                .order_by(Account.opened_at, Account.account_id)
            )
        )
        .scalars()
        .all()
    )
    media = []
    for card in cards:
        account = next((a for a in currents if a.endswith(card.last4)), None)
        account = account or (currents[0] if currents else None)
        if account is not None:
            media.append(Medium("card", card.card_id, account, card.last4, card.state))
    return media


def choose_medium(media: Sequence[Medium], medium: str, ref: str | None) -> Medium:
    """The medium an operation means: ``ref`` names it, else the only one not
    reported lost. Refusals name the choices by their last digits."""
    what = "bank card" if medium == "card" else "passbook"
    if not media:
        raise ExecutionFailed("medium_not_found", f"the customer has no {what}")
    if ref is not None:
        named = [m for m in media if m.named_by(ref)]
        if not named:
            raise ExecutionFailed("medium_not_found", f"the customer has no {what} {ref!r}")
        candidates = [m for m in named if not m.lost] or named
    else:
        candidates = [m for m in media if not m.lost]
        if not candidates:
            raise ExecutionFailed(
                "medium_reported_lost",
                f"every {what} of the customer is reported lost; it can be replaced",
            )
    if len(candidates) > 1:
        choices = ", ".join(f"{m.medium_id} (ending {m.last4})" for m in candidates)
        raise ExecutionFailed(
            "medium_ambiguous", f"the customer has several {what}s; name one in account: {choices}"
        )
    return candidates[0]


async def open_loss_report(session: AsyncSession, account_id: str) -> LossReport | None:
    return (
        await session.execute(
            select(LossReport)
            .where(LossReport.account_id == account_id, LossReport.state == "open")
            .order_by(LossReport.reported_at)
            .limit(1)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


def lost_refusal(report: LossReport) -> ExecutionFailed:
    what = "bank card" if report.medium == "card" else "passbook"
    day = report.reported_at.astimezone(LOCAL_TZ).date().isoformat()
    return ExecutionFailed(
        "medium_reported_lost",
        f"the {what} of the account ending {report.account_id[-4:]} was reported lost "
        f"({report.stage}) on {day}; nothing can be done with it until it is replaced",
    )


async def account_usable(session: AsyncSession, account_id: str) -> None:
    """Refuse (``medium_reported_lost``) an account whose card or passbook is reported lost."""
    report = await open_loss_report(session, account_id)
    if report is not None:
        raise lost_refusal(report)
