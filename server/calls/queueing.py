"""Joining and leaving the queue: create (one SQL transaction around the enqueue),
leave (the queue first, then SQL), and putting SQL's waiting calls back in the
queue."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal, Role
from server.db.models import Call
from server.errors import NodeDraining, NotFound
from server.outbox.events import CallQueued
from server.routing.model import (
    PriorityClass,
)

from . import recovery
from . import repository as repo
from .base import CallRequest, CallServiceBase, TicketGrant
from .messages import call_ended, offer_withdrawn
from .state import CallAction, CallState, EndReason

log = structlog.get_logger(__name__)


class QueueCommands(CallServiceBase):
    """A customer's call joins or leaves the queue."""

    async def create_call(
        self, principal: Principal, request: CallRequest
    ) -> tuple[dict[str, Any], bool]:
        """Queue a call for the customer; a second tap returns the open call."""
        principal.require(Role.CUSTOMER)
        if self.draining:
            raise NodeDraining("this node is restarting; please try again")
        now = self.clock()
        async with self.sessions() as session:
            existing = await repo.open_call_of(session, principal.subject)
            if existing is not None:
                return await self.render(session, existing, Role.CUSTOMER), False
            customer = await repo.get_customer(session, principal.subject)
            if customer is None:
                raise NotFound(
                    "this customer is not known to the branch", code="customer_not_found"
                )
            grant = TicketGrant(PriorityClass.NORMAL, {})
            if request.ticket is not None:
                grant = await self._redeem_ticket(session, principal.subject, request.ticket, now)
            call = Call(
                call_id=uuid.uuid4().hex,
                customer_id=customer.customer_id,
                state=CallState.QUEUED.value,
                dialect=request.dialect or customer.preferred_dialect,
                # The customer's own choice wins over what the redirect implies.
                intent=request.intent or grant.intent,
                ticket=request.ticket,
                priority=grant.priority.value,
                callback_allowed=request.callback_allowed,
                context=grant.context,
                created_at=repo.utc(now),
                enqueued_at=repo.utc(now),
            )
            if self.hub.is_connected_here(Role.CUSTOMER, customer.customer_id):
                call.customer_seen_at = repo.utc(now)
            session.add(call)
            try:
                # The unique index on a customer's open call settles a double tap.
                # Flush here so the loser learns it at this point: any later query
                # in the transaction (the audit chain's, in add_event) would
                # autoflush the insert and raise outside this handler.
                await session.flush()
            except IntegrityError:
                # Another tap won the race for this customer's one open call.
                await session.rollback()
                existing = await repo.open_call_of(session, principal.subject)
                if existing is None:
                    raise
                return await self.render(session, existing, Role.CUSTOMER), False
            await repo.add_event(
                session,
                call.call_id,
                now,
                "queued",
                Role.CUSTOMER.value,
                principal.subject,
                dialect=call.dialect,
                priority=call.priority,
                intent=call.intent,
            )
            self.record(session, CallQueued(call.call_id, now, cause="created"))
            # One transaction for the whole step: the call is enqueued before it
            # commits, so the prediction (from the rank the enqueue script gives)
            # is written with it. A failing Redis is repaired, not refused; an
            # offer made before the commit is given back (see the dispatcher).
            standing = await self._deferrable(
                "enqueue",
                self.backend.enqueue_standing(recovery.queued_call(call), now),
                call.call_id,
            )
            estimate = (
                await self._deferrable("estimate", self._waits.of_standing(standing), call.call_id)
                if standing is not None
                else None
            )
            if estimate is not None:
                call.predicted_wait_s = estimate.seconds
            try:
                await session.commit()
            except BaseException:
                # The call never reached SQL: take it out of the queue again
                # (reconciliation would, two passes later).
                if standing is not None:
                    await self._deferrable(
                        "dequeue", self.backend.remove(call.call_id, now), call.call_id
                    )
                raise
            self.metrics.calls_created.labels(call.priority).inc()
            log.info("call.queued", call_id=call.call_id, priority=call.priority)
            self.wake.set()
            return await self.render(session, call, Role.CUSTOMER, estimate), True

    async def _redeem_ticket(
        self, session: AsyncSession, customer_id: str, ticket: str, now: float
    ) -> TicketGrant:
        if self.ticket_resolver is None:
            raise NotFound("unknown or expired ticket", code="ticket_not_found")
        return await self.ticket_resolver(session, customer_id, ticket, now)

    async def leave_queue(
        self, call_id: str, reason: EndReason, now: float, actor: Principal | None = None
    ) -> bool:
        # Redis first, so no new offer is made; if Redis is down, SQL still records
        # the end and the repair pass takes the call out of the queue later.
        withdrawn = await self._deferrable("remove", self.backend.remove(call_id, now), call_id)
        done, call = await self._step(
            call_id,
            CallAction.LEAVE_QUEUE,
            {"end_reason": reason.value, "ended_at": repo.utc(now)},
            "left_queue",
            now,
            actor,
            end_reason=reason.value,
        )
        if withdrawn is not None:
            self.metrics.offer_outcomes.labels("withdrawn").inc()
            await self.hub.send(
                Role.SPECIALIST,
                withdrawn.specialist_id,
                offer_withdrawn(call_id, withdrawn.offer_id),
            )
        if done and call is not None:
            self.metrics.calls_ended.labels(reason.value).inc()
            await self.hub.send(Role.CUSTOMER, call.customer_id, call_ended(call_id, reason.value))
        self.wake.set()
        return done

    async def rebuild_queue(self) -> int:
        """Put every call SQL says is waiting back in the queue (idempotent), and
        give specialists back the calls SQL says they hold (:mod:`.recovery`)."""
        rebuilt = await recovery.rebuild_queue(
            self.sessions, self.backend, self.clock(), self.withdraw_offer
        )
        if rebuilt:
            self.wake.set()
        return rebuilt

    async def restore_assignments(self, now: float) -> int:
        """Specialists hold, in routing, the calls SQL says they hold (idempotent)."""
        return await recovery.restore_assignments(self.sessions, self.backend, now)

    async def requeue(self, call: Call, now: float) -> None:
        """Put one waiting call back in the queue (idempotent)."""
        await self._enqueue(call, now)

    async def requeue_committed(self, call: Call, now: float) -> None:
        """:meth:`requeue` for a call whose SQL step has committed: a failing Redis
        is left to the repair pass, never made the caller's failure."""
        await self._deferrable("enqueue", self._enqueue(call, now), call.call_id)
        self.wake.set()
