"""The ticket desk: stores signed redirects, issues their tickets, redeems them for calls.

Database work and auditing live here; the decisions are the pure rules of
:mod:`.tickets`. Everything a redirect or a ticket does is in the audit log:
``redirect.received``, ``redirect.replayed``, ``redirect.rejected``,
``ticket.redeemed`` and ``ticket.refused``.

Single use holds across nodes and databases because redemption is one
conditional ``UPDATE ... WHERE used_at IS NULL`` inside the transaction that
inserts the call: of two redemptions racing, the second waits for the first's
row lock (PostgreSQL) or write lock (SQLite) and then updates nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.auth.principal import Role
from server.calls.service import TicketGrant
from server.db.banking import Redirect
from server.db.models import Customer
from server.errors import CloudBranchError, Conflict, NotFound
from server.routing.model import PriorityClass
from server.settings import Settings

from .schemas import RedirectEvent, context_json
from .throttle import AuditBudget
from .tickets import (
    INTENT,
    PRIORITY,
    Refusal,
    StoredRedirect,
    call_context,
    deep_link,
    expiry,
    looks_like_ticket,
    new_ticket,
    refusal,
    rfc3339,
    same_event,
)

log = structlog.get_logger(__name__)

# Who sends redirects, as the audit log names them: authenticated by signature only.
SENDER = "bank_backend"


@dataclass(frozen=True)
class Receipt:
    """What the sender gets back for a redirect (the same for a repeat of it)."""

    ticket: str
    deep_link: str
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "deep_link": self.deep_link,
            "expires_at": rfc3339(self.expires_at),
        }


def fingerprint(data: bytes | str) -> str:
    """A short SHA-256 prefix: enough to match records, useless as the thing itself."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:16]


def _stored(row: Any) -> StoredRedirect:
    return StoredRedirect(
        event_id=row.event_id,
        customer_id=row.customer_id,
        kind=row.kind,
        context=dict(row.context or {}),
        ticket=row.ticket,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used=row.used_at is not None,
    )


# Plain column selects, not ORM objects: a second read in the same session after a
# concurrent commit must see the new row, not the identity map's old copy.
_COLUMNS = (
    Redirect.event_id,
    Redirect.customer_id,
    Redirect.kind,
    Redirect.context,
    Redirect.ticket,
    Redirect.created_at,
    Redirect.expires_at,
    Redirect.used_at,
)


class TicketDesk:
    """Receives redirects (HTTP edge) and redeems tickets (``CallService.ticket_resolver``)."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.rejection_budget = AuditBudget()

    # -- receiving -------------------------------------------------------------------
    async def receive(self, event: RedirectEvent, now: float) -> tuple[Receipt, bool]:
        """Store a verified redirect and issue its ticket; True if it is new.

        A repeat of the same event (a retry) gets the original receipt; the same
        ``event_id`` carrying something else is refused with ``event_conflict``.
        """
        context = context_json(event)
        async with self.sessions() as session:
            stored = await self._by_event(session, event.event_id)
            if stored is not None:
                return await self._repeat(session, stored, event, context, now), False
            if await session.get(Customer, event.customer_id) is None:
                await self._record_refused_event(session, event, "customer_not_found", now)
                raise NotFound(
                    "this customer is not known to the branch", code="customer_not_found"
                )
            ticket = new_ticket()
            expires_at = expiry(now, self.settings.redirect_ticket_ttl_s)
            try:
                await self._insert(session, event, context, ticket, expires_at, now)
            except IntegrityError:
                # The same event arrived twice at once (a retry racing the original,
                # perhaps on another node): the first insert won; this is its repeat.
                await session.rollback()
                stored = await self._by_event(session, event.event_id)
                if stored is None:
                    raise
                return await self._repeat(session, stored, event, context, now), False
        log.info("redirect.received", event_id=event.event_id, kind=event.kind)
        return self._receipt(ticket, expires_at), True

    async def _insert(
        self,
        session: AsyncSession,
        event: RedirectEvent,
        context: dict[str, Any],
        ticket: str,
        expires_at: datetime,
        now: float,
    ) -> None:
        session.add(
            Redirect(
                event_id=event.event_id,
                customer_id=event.customer_id,
                kind=event.kind,
                context=context,
                ticket=ticket,
                created_at=datetime.fromtimestamp(now, tz=UTC),
                expires_at=expires_at,
            )
        )
        # Flushed before the audit entry, so a duplicate event fails here, before the
        # audit chain's lock is taken.
        await session.flush()
        await audit.record(
            session,
            "redirect.received",
            at=now,
            actor_role=SENDER,
            subject_type="redirect",
            subject_id=event.event_id,
            data={
                "customer_id": event.customer_id,
                "kind": event.kind,
                "expires_at": rfc3339(expires_at),
            },
        )
        await session.commit()

    async def _repeat(
        self,
        session: AsyncSession,
        stored: StoredRedirect,
        event: RedirectEvent,
        context: dict[str, Any],
        now: float,
    ) -> Receipt:
        if not same_event(stored, event.customer_id, event.kind, context):
            await self._record_refused_event(session, event, "event_conflict", now)
            raise Conflict(
                f"event {event.event_id!r} was already received with a different body",
                code="event_conflict",
            )
        await audit.record(
            session,
            "redirect.replayed",
            at=now,
            actor_role=SENDER,
            subject_type="redirect",
            subject_id=stored.event_id,
            data={"customer_id": stored.customer_id, "kind": stored.kind},
        )
        await session.commit()
        log.info("redirect.replayed", event_id=stored.event_id)
        return self._receipt(stored.ticket, stored.expires_at)

    async def _record_refused_event(
        self, session: AsyncSession, event: RedirectEvent, reason: str, now: float
    ) -> None:
        """A signed redirect refused for what it says: the sender is known, so record it."""
        await session.rollback()
        await audit.record(
            session,
            "redirect.rejected",
            at=now,
            actor_role=SENDER,
            subject_type="redirect",
            subject_id=event.event_id,
            data={"reason": reason, "customer_id": event.customer_id, "kind": event.kind},
        )
        await session.commit()
        log.warning("redirect.rejected", reason=reason, event_id=event.event_id)

    async def record_bad_signature(
        self,
        flaw: str,
        body: bytes,
        claimed_timestamp: int | None,
        peer: str | None,
        now: float,
    ) -> None:
        """Record a request refused for its signature, with only what is safe to keep.

        Nothing in the body can be trusted (not even the customer id), so it is
        not parsed: its size and a hash prefix let it be matched with the
        sender's own records. The signature is not kept. Entries are bounded by
        :class:`AuditBudget`; a failure to record never turns the 401 into a 500.
        """
        log.warning("redirect.rejected", reason="invalid_signature", flaw=flaw)
        left_out = self.rejection_budget.admit(now)
        if left_out is None:
            return
        data: dict[str, Any] = {
            "reason": "invalid_signature",
            "flaw": flaw,
            "claimed_timestamp": claimed_timestamp,
            "body_bytes": len(body),
            "body_sha256": fingerprint(body),
            "peer": peer,
        }
        if left_out:
            data["not_recorded_before"] = left_out
        try:
            async with self.sessions() as session:
                await audit.record(
                    session, "redirect.rejected", at=now, subject_type="redirect", data=data
                )
                await session.commit()
        except Exception:
            log.exception("redirect.rejection_not_recorded", flaw=flaw)

    def _receipt(self, ticket: str, expires_at: datetime) -> Receipt:
        return Receipt(ticket, deep_link(self.settings.deep_link_base, ticket), expires_at)

    # -- redeeming -----------------------------------------------------------------
    async def redeem(
        self, session: AsyncSession, customer_id: str, ticket: str, now: float
    ) -> TicketGrant:
        """Use ``ticket`` for the call being created in ``session``'s transaction.

        On success the ticket is marked used in that transaction, so it is spent
        exactly when the call commits. On refusal the transaction is rolled back
        and the refusal recorded and committed on its own (the evidence must
        outlive the refused request), then the refusal is raised; the caller must
        not have pending changes of its own yet.
        """
        stored = await self._by_ticket(session, ticket) if looks_like_ticket(ticket) else None
        refused = refusal(stored, customer_id, now)
        if stored is None or refused is not None:
            raise await self._refuse(session, customer_id, ticket, stored, refused, now)
        spent = await session.execute(
            update(Redirect)
            .where(Redirect.ticket == ticket, Redirect.used_at.is_(None))
            .values(used_at=datetime.fromtimestamp(now, tz=UTC))
        )
        if not getattr(spent, "rowcount", 0):
            # Another redemption committed between our read and our update.
            raise await self._refuse(session, customer_id, ticket, stored, Refusal.USED, now)
        await audit.record(
            session,
            "ticket.redeemed",
            at=now,
            actor_role=Role.CUSTOMER.value,
            actor_id=customer_id,
            subject_type="redirect",
            subject_id=stored.event_id,
            data={"kind": stored.kind},
        )
        log.info("ticket.redeemed", event_id=stored.event_id, kind=stored.kind)
        return TicketGrant(
            PRIORITY.get(stored.kind, PriorityClass.REDIRECT),
            call_context(stored),
            intent=INTENT.get(stored.kind),
        )

    async def _refuse(
        self,
        session: AsyncSession,
        customer_id: str,
        ticket: str,
        stored: StoredRedirect | None,
        refused: Refusal | None,
        now: float,
    ) -> CloudBranchError:
        """Roll back, record the refusal on its own, and return the error to raise."""
        await session.rollback()
        reason = refused or Refusal.NOT_FOUND
        data: dict[str, Any] = {"reason": reason.value, "ticket_sha256": fingerprint(ticket)}
        if stored is not None and reason is Refusal.NOT_YOURS:
            data["issued_to"] = stored.customer_id
        await audit.record(
            session,
            "ticket.refused",
            at=now,
            actor_role=Role.CUSTOMER.value,
            actor_id=customer_id,
            subject_type="redirect",
            subject_id=stored.event_id if stored is not None else None,
            data=data,
        )
        await session.commit()
        log.info("ticket.refused", reason=reason.value)
        return reason.error()

    # -- reading -------------------------------------------------------------------
    async def _by_event(self, session: AsyncSession, event_id: str) -> StoredRedirect | None:
        row = (
            await session.execute(select(*_COLUMNS).where(Redirect.event_id == event_id))
        ).one_or_none()
        return None if row is None else _stored(row)

    async def _by_ticket(self, session: AsyncSession, ticket: str) -> StoredRedirect | None:
        row = (
            await session.execute(select(*_COLUMNS).where(Redirect.ticket == ticket))
        ).one_or_none()
        return None if row is None else _stored(row)
