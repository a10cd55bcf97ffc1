"""A specialist's presence and answers to offers: accept (the queue's reservation
first, then SQL, with a compensation if SQL fails) and decline."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import structlog

from server.auth.principal import Principal, Role
from server.db.models import Call
from server.errors import Conflict
from server.failures import dependency_failure
from server.outbox.events import CallAccepted
from server.routing.errors import OfferExpired
from server.routing.model import DesiredPresence, Offer

from . import repository as repo
from .base import CallServiceBase
from .messages import call_assigned
from .state import CallAction

log = structlog.get_logger(__name__)


OFFER_GONE = "this offer has expired or was withdrawn"


class OfferCommands(CallServiceBase):
    """A specialist sets presence, accepts or declines an offer."""

    async def set_presence(self, principal: Principal, desired: DesiredPresence) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        await self._register(principal.subject)
        state = await self.backend.set_presence(principal.subject, desired, self.clock())
        self.wake.set()
        return {"state": desired.value, "routing_state": state.value}

    async def _pending_offer(self, principal: Principal, call_id: str, offer_id: str) -> Offer:
        """The desk's pending offer, if it is the one answered; else it is gone."""
        offer = await self.backend.pending_offer(principal.subject)
        if offer is None or offer.offer_id != offer_id or offer.call_id != call_id:
            raise Conflict(OFFER_GONE, code="offer_expired")
        return offer

    async def _answer(self, answer: Awaitable[object]) -> None:
        """The queue's reservation answered; an offer that lapsed meanwhile is gone."""
        try:
            await answer
        except OfferExpired as exc:
            raise Conflict(OFFER_GONE, code="offer_expired") from exc

    async def accept(self, principal: Principal, call_id: str, offer_id: str) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        offer = await self._pending_offer(principal, call_id, offer_id)
        # Read first: a database that is down fails here, before the reservation
        # is turned into an assignment; the offer is then released (not a miss).
        try:
            async with self.sessions() as session:
                before = await repo.get_call(session, call_id)
        except Exception as exc:
            if dependency_failure(exc) is not None:
                await self._deferrable(
                    "release_offer",
                    self.backend.decline(offer_id, principal.subject, now),
                    call_id,
                )
            raise
        await self._answer(self.backend.accept(offer_id, principal.subject, now))
        return await self._record_accept(principal, call_id, offer, before, now)

    async def _undo_accept(self, call: Call, specialist_id: str, now: float) -> None:
        log.warning("call.accept_compensated", call_id=call.call_id)
        await self._deferrable("requeue", self._enqueue(call, now), call.call_id)
        await self._deferrable(
            "free_specialist", self._free_specialist(specialist_id, now), call.call_id
        )
        self.wake.set()

    async def _record_accept(
        self,
        principal: Principal,
        call_id: str,
        offer: Offer,
        before: Call | None,
        now: float,
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            waited = now - before.enqueued_at.timestamp() if before else None
            try:
                won = await repo.stepped_call(
                    session,
                    call_id,
                    CallAction.ACCEPT,
                    specialist_id=principal.subject,
                    answered_at=repo.utc(now),
                    actual_wait_s=waited,
                    ladder_step=offer.step.value,
                )
                if won is not None:
                    await repo.add_event(
                        session,
                        call_id,
                        now,
                        "accepted",
                        Role.SPECIALIST.value,
                        principal.subject,
                        offer_id=offer.offer_id,
                        waited_s=waited,
                    )
                    self.record(session, CallAccepted(call_id, now, principal.subject))
                    await session.commit()
            except Exception as exc:
                if dependency_failure(exc) is not None and before is not None:
                    # SQL failed after Redis handed over the call: give the call
                    # back its place and free the specialist, so neither is left
                    # with no owner. (If the commit landed and only its answer was
                    # lost, the repair pass gives the specialist the call back.)
                    await self._undo_accept(before, principal.subject, now)
                raise
            if won is None:
                await session.rollback()
                # Cancelled between reservation and here: free the specialist.
                await self._free_specialist(principal.subject, now)
                self.wake.set()
                raise Conflict("the caller has already left", code="offer_expired")
            call = won  # as committed (the update returned it)
            specialist = await repo.get_specialist(session, principal.subject)
            assert specialist is not None
            self.metrics.offer_outcomes.labels("accepted").inc()
            if waited is not None:
                self.metrics.wait_seconds.observe(waited)
            log.info("call.accepted", call_id=call_id, specialist_id=principal.subject)
            assigned = call_assigned(call_id, specialist, self.settings.proficiency_threshold)
            view = await self.render(session, call, Role.SPECIALIST)
        # No pooled connection is held while Redis (the bus) is awaited, and the
        # handlers (media set-up, the recording notice) open their own sessions.
        await self.hub.send(Role.CUSTOMER, call.customer_id, assigned)
        await self.deliver(call_id)
        return view

    async def decline(self, principal: Principal, call_id: str, offer_id: str) -> None:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        await self._pending_offer(principal, call_id, offer_id)
        await self._answer(self.backend.decline(offer_id, principal.subject, now))
        async with self.sessions() as session:
            await self.withdraw_offer(session, call_id, now, "declined")
            await repo.add_event(
                session, call_id, now, "declined", Role.SPECIALIST.value, principal.subject
            )
            await session.commit()
        self.metrics.offer_outcomes.labels("declined").inc()
        self.wake.set()
