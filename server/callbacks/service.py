"""The customer's callback commands, over SQL, the call service and the hub.

Order of effects, and why:

- convert: the queue first (no new offer can be made for the call), then one SQL
  transaction that ends the call (``cancelled``, timeline ``converted_to_callback``)
  and stores the callback with the call's original ``enqueued_at`` and priority.
  If that transaction fails the call is put back in the queue.
- ring: the sweeper's conditional update (scheduled and due → ringing) decides
  which node rings; the ``rang`` attempt commits with it, then the app is told
  (:mod:`.sweeper`, :mod:`.changes`).
- answer: a conditional update (ringing → connected) and the new call commit
  together; only then does the call enter the queue, with the original
  ``enqueued_at``, so it is at its old place and routed like any other.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.auth.principal import Principal, Role
from server.calls import repository as calls_repo
from server.calls.messages import call_ended, offer_withdrawn
from server.calls.service import CallService
from server.calls.state import CallAction, CallState, EndReason
from server.calls.views import iso
from server.db.banking import Callback
from server.db.models import Call
from server.errors import Conflict, IllegalTransition, NotFound
from server.outbox.events import CallQueued

from . import repository as repo
from .changes import CallbackChanges
from .policy import CallbackPolicy, Unavailable, why_not_offered
from .state import OPEN, AttemptOutcome, CallbackState, Outcome
from .sweeper import CallbackSweeper
from .views import callback_view, load_visible, not_ringing

log = structlog.get_logger(__name__)


class CallbackService:
    """Everything that changes a callback, and the messages each change sends."""

    def __init__(self, calls: CallService, policy: CallbackPolicy) -> None:
        self.calls = calls
        self.policy = policy
        self.sessions = calls.sessions
        self.hub = calls.hub
        self.clock = calls.clock
        # The state changes the commands share with the sweeper, and the sweeper.
        self._changes = CallbackChanges(self.sessions, policy, self.hub)
        self._sweeper = CallbackSweeper(self._changes, self.sessions, policy, calls.backend)

    # -- customer ------------------------------------------------------------------------
    async def request(self, principal: Principal, call_id: str) -> tuple[dict[str, Any], bool]:
        """Turn the customer's waiting call into a callback. A second request for the
        same call returns the same callback (``False``: nothing new was created)."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            call = await self.calls.load_visible(session, principal, call_id)
            existing = await repo.of_call(session, call_id)
            if existing is not None:
                return await callback_view(session, existing, self.policy), False
            customer = await calls_repo.get_customer(session, call.customer_id)
        estimate = await self.calls.estimate_for(call_id)
        reason = why_not_offered(
            queued=call.state == CallState.QUEUED.value and estimate is not None,
            callback_allowed=call.callback_allowed,
            consent=customer is not None and customer.contact_consent,
            do_not_call=customer is None or customer.do_not_call,
            estimated_wait_s=estimate.seconds if estimate else None,
            threshold_s=self.policy.threshold_s,
        )
        if reason is not None:
            raise Conflict(f"a callback is not available: {reason.value}", code=_NOT_AVAILABLE)
        withdrawn = await self.calls.backend.remove(call_id, now)
        callback = Callback(
            callback_id=uuid.uuid4().hex,
            call_id=call_id,
            customer_id=call.customer_id,
            priority=call.priority,
            original_enqueued_at=call.enqueued_at,
            state=CallbackState.SCHEDULED.value,
            requested_at=calls_repo.utc(now),
            next_attempt_at=None,
            attempts=0,
        )
        try:
            async with self.sessions() as session:
                done = await calls_repo.transition(
                    session,
                    call_id,
                    CallAction.LEAVE_QUEUE,
                    end_reason=EndReason.CANCELLED.value,
                    ended_at=calls_repo.utc(now),
                )
                if done:
                    session.add(callback)
                    await calls_repo.add_event(
                        session,
                        call_id,
                        now,
                        "converted_to_callback",
                        Role.CUSTOMER.value,
                        principal.subject,
                        end_reason=EndReason.CANCELLED.value,
                        callback_id=callback.callback_id,
                    )
                    await repo.record(
                        session,
                        "scheduled",
                        callback,
                        now,
                        actor_role=Role.CUSTOMER.value,
                        actor_id=principal.subject,
                        priority=callback.priority,
                        original_enqueued_at=iso(callback.original_enqueued_at),
                    )
                    await session.commit()
                else:
                    await session.rollback()
        except Exception:
            await self._requeue_if_waiting(call_id, now)
            raise
        if not done:
            # Another request for this call won, or the call stopped waiting.
            async with self.sessions() as session:
                existing = await repo.of_call(session, call_id)
                if existing is not None:
                    return await callback_view(session, existing, self.policy), False
            raise Conflict(
                f"a callback is not available: {Unavailable.NOT_WAITING.value}",
                code=_NOT_AVAILABLE,
            )
        await self._after_leaving_queue(call, withdrawn, callback)
        log.info("callback.scheduled", callback_id=callback.callback_id, call_id=call_id)
        async with self.sessions() as session:
            stored = await repo.get(session, callback.callback_id)
            assert stored is not None
            return await callback_view(session, stored, self.policy), True

    async def _requeue_if_waiting(self, call_id: str, now: float) -> None:
        async with self.sessions() as session:
            call = await calls_repo.get_call(session, call_id)
        if call is not None and call.state in (CallState.QUEUED.value, CallState.OFFERED.value):
            await self.calls.requeue_committed(call, now)

    async def _after_leaving_queue(self, call: Call, withdrawn: Any, callback: Callback) -> None:
        calls = self.calls
        if withdrawn is not None:
            calls.metrics.offer_outcomes.labels("withdrawn").inc()
            await self.hub.send(
                Role.SPECIALIST,
                withdrawn.specialist_id,
                offer_withdrawn(call.call_id, withdrawn.offer_id),
            )
        calls.metrics.calls_ended.labels(EndReason.CANCELLED.value).inc()
        await self.hub.send(
            Role.CUSTOMER,
            call.customer_id,
            call_ended(call.call_id, EndReason.CANCELLED.value, callback_id=callback.callback_id),
        )
        calls.wake.set()

    async def get(self, principal: Principal, callback_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            callback = await load_visible(session, principal, callback_id)
            return await callback_view(session, callback, self.policy, viewer=principal.role)

    async def list_own(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require(Role.CUSTOMER)
        async with self.sessions() as session:
            found = await repo.of_customer(session, principal.subject, limit=20)
            return [await callback_view(session, c, self.policy) for c in found]

    async def answer(self, principal: Principal, callback_id: str) -> tuple[dict[str, Any], bool]:
        """The customer picked up: a new call takes the callback's original place.

        Returns the new call's view; answering again returns the same call (False).
        """
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            callback = await load_visible(session, principal, callback_id)
            if callback.state == CallbackState.CONNECTED.value and callback.new_call_id:
                return await self._call_view(session, callback.new_call_id), False
            if callback.state != CallbackState.RINGING.value:
                raise not_ringing(callback)
            original = await calls_repo.get_call(session, callback.call_id)
            assert original is not None
            call = Call(
                call_id=uuid.uuid4().hex,
                customer_id=callback.customer_id,
                state=CallState.QUEUED.value,
                dialect=original.dialect,
                intent=original.intent,
                ticket=None,
                priority=callback.priority,
                # Already back at the original place: no second conversion.
                callback_allowed=False,
                context=original.context,
                created_at=calls_repo.utc(now),
                enqueued_at=callback.original_enqueued_at,
            )
            won = await repo.move(
                session,
                callback_id,
                {CallbackState.RINGING},
                state=CallbackState.CONNECTED.value,
                new_call_id=call.call_id,
                completed_at=calls_repo.utc(now),
                outcome=Outcome.ANSWERED.value,
                next_attempt_at=None,
            )
            if not won:
                await session.rollback()
                return await self._answer_lost(session, callback_id)
            session.add(call)
            await calls_repo.add_event(
                session,
                call.call_id,
                now,
                "queued",
                Role.CUSTOMER.value,
                principal.subject,
                dialect=call.dialect,
                priority=call.priority,
                callback_id=callback_id,
                original_call_id=callback.call_id,
            )
            await repo.add_attempt(
                session,
                callback,
                now,
                AttemptOutcome.ANSWERED,
                self.policy.zone,
                detail=f"new call {call.call_id}",
                actor_role=Role.CUSTOMER.value,
                actor_id=principal.subject,
            )
            self.calls.record(session, CallQueued(call.call_id, now, cause="callback"))
            try:
                await session.commit()
            except IntegrityError as exc:
                # The customer opened another call meanwhile (one open call each).
                await session.rollback()
                raise Conflict(
                    "you already have an open call; end it to take the callback",
                    code="call_already_open",
                ) from exc
        await self.calls.requeue_committed(call, now)
        self.calls.metrics.calls_created.labels(call.priority).inc()
        log.info("callback.answered", callback_id=callback_id, call_id=call.call_id)
        async with self.sessions() as session:
            return await self._call_view(session, call.call_id), True

    async def _answer_lost(self, session: AsyncSession, callback_id: str) -> tuple[Any, bool]:
        current = await repo.get(session, callback_id)
        assert current is not None
        if current.state == CallbackState.CONNECTED.value and current.new_call_id:
            return await self._call_view(session, current.new_call_id), False
        raise not_ringing(current)

    async def _call_view(self, session: AsyncSession, call_id: str) -> dict[str, Any]:
        call = await calls_repo.get_call(session, call_id)
        assert call is not None
        return await self.calls.render(session, call, Role.CUSTOMER)

    async def decline(self, principal: Principal, callback_id: str) -> dict[str, Any]:
        """Not now: the callback tries again later (within the daily cap)."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            callback = await load_visible(session, principal, callback_id)
        if callback.state != CallbackState.RINGING.value:
            raise not_ringing(callback)
        ended = await self._changes.ring_over(
            callback, AttemptOutcome.DECLINED, now, actor=principal, only_if_expired=False
        )
        if not ended:
            async with self.sessions() as session:
                current = await repo.get(session, callback_id)
            assert current is not None
            if current.state != CallbackState.SCHEDULED.value:
                raise not_ringing(current)
        return await self.get(principal, callback_id)

    async def cancel(self, principal: Principal, callback_id: str) -> None:
        """The customer no longer wants the callback; idempotent once cancelled."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            callback = await load_visible(session, principal, callback_id)
        if callback.state == CallbackState.CANCELLED.value:
            return
        closed = await self._changes.close(
            callback, Outcome.CANCELLED_BY_CUSTOMER, now, actor=principal
        )
        if not closed:
            async with self.sessions() as session:
                current = await repo.get(session, callback_id)
            assert current is not None
            if current.state != CallbackState.CANCELLED.value:
                raise IllegalTransition("callback", current.state, "cancel")

    # -- consent ---------------------------------------------------------------------------
    async def set_consent(self, principal: Principal, consent: bool) -> dict[str, Any]:
        """The customer gives or withdraws consent to be called; withdrawing it ends
        every open callback at once."""
        principal.require(Role.CUSTOMER)
        return await self._set_flag(
            principal,
            principal.subject,
            "contact_consent",
            consent,
            closes=None if consent else Outcome.CONSENT_WITHDRAWN,
            reason=None,
        )

    async def set_do_not_call(
        self, principal: Principal, customer_id: str, do_not_call: bool, reason: str
    ) -> dict[str, Any]:
        """A supervisor puts a customer on (or takes them off) the do-not-call list."""
        principal.require(Role.SUPERVISOR)
        return await self._set_flag(
            principal,
            customer_id,
            "do_not_call",
            do_not_call,
            closes=Outcome.DO_NOT_CALL if do_not_call else None,
            reason=reason,
        )

    async def _set_flag(
        self,
        principal: Principal,
        customer_id: str,
        column: str,
        value: bool,
        *,
        closes: Outcome | None,
        reason: str | None,
    ) -> dict[str, Any]:
        now = self.clock()
        async with self.sessions() as session:
            if not await repo.set_contact_flags(session, customer_id, **{column: value}):
                raise NotFound(
                    "this customer is not known to the branch", code="customer_not_found"
                )
            data: dict[str, Any] = {column: value}
            if reason is not None:
                data["reason"] = reason
            await audit.record(
                session,
                f"customer.{column}",
                at=now,
                actor_role=principal.role.value,
                actor_id=principal.subject,
                subject_type="customer",
                subject_id=customer_id,
                data=data,
            )
            await session.commit()
            open_callbacks = await repo.in_states(session, OPEN, customer_id=customer_id)
        closed: list[str] = []
        if closes is not None:
            for callback in open_callbacks:
                if await self._changes.close(callback, closes, now, actor=principal):
                    closed.append(callback.callback_id)
        async with self.sessions() as session:
            customer = await calls_repo.get_customer(session, customer_id)
        assert customer is not None
        return {
            "customer_id": customer_id,
            "contact_consent": customer.contact_consent,
            "do_not_call": customer.do_not_call,
            "cancelled_callbacks": closed,
        }

    # -- the sweeper -----------------------------------------------------------------------
    async def sweep(self, now: float) -> None:
        """End rings nobody answered, then ring (or skip) the callbacks whose turn has
        come. Run every few seconds by every node's dispatcher (:mod:`.sweeper`)."""
        await self._sweeper.sweep(now)


_NOT_AVAILABLE = "callback_not_available"
