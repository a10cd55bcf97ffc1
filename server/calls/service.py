"""The call lifecycle as small service functions over SQL, the queue backend and the hub.

Order of effects, and why:

- create: SQL first (the call exists durably), then the queue. A crash between
  the two is repaired at start-up by :meth:`CallService.rebuild_queue`.
- accept: the queue first (the atomic reservation decides who won), then SQL with a
  conditional update; if the call was cancelled in between, the specialist is
  released and the accept refused.
- cancel: the queue first (so no new offer can be made), then SQL.

Every step that spans SQL and Redis has a compensation, and once SQL has
committed, a failing Redis step never fails the caller (it is logged, and the
repair pass in :mod:`server.calls.repair` reconciles Redis with SQL):

- accept: the call is read before the reservation, so a database that is down
  fails the accept before Redis changes; if the SQL update then fails, the call
  goes back in the queue and the specialist is freed (no miss is counted).
- end, wrap-up, leave the queue: SQL is the record; the parties are told once
  it has committed; pending operations are cancelled by every way a call ends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.db.models import Call, Specialist
from server.errors import Conflict, NodeDraining, NotFound
from server.failures import dependency_failure
from server.hub.hub import Hub
from server.metrics import Metrics
from server.outbox.events import ConversationEnded
from server.outbox.relay import Outbox
from server.routing.backend import QueueBackend
from server.routing.errors import OfferExpired, RoutingError
from server.routing.estimate import WaitEstimate
from server.routing.model import (
    DesiredPresence,
    PriorityClass,
)
from server.settings import Settings

from . import recovery
from . import repository as repo
from .estimates import WaitEstimates
from .messages import call_assigned, call_ended, call_offered, offer_withdrawn, queue_update
from .state import IN_CONVERSATION, WAITING, CallAction, CallState, EndReason
from .views import call_view

if TYPE_CHECKING:
    from server.ports import Clock

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CallRequest:
    dialect: str | None
    intent: str | None
    ticket: str | None
    callback_allowed: bool


@dataclass(frozen=True)
class TicketGrant:
    """What a redirect ticket gives a call: priority and context."""

    priority: PriorityClass
    context: dict[str, Any]
    # What the redirect says the customer needs (server.routing.intents), if anything.
    intent: str | None = None


QueueUpdateHook = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]
# Redeems a redirect ticket: (session, customer_id, ticket, now) -> its grant.
TicketResolver = Callable[[AsyncSession, str, str, float], Awaitable[TicketGrant]]


class CallObserver(Protocol):
    """Told about lifecycle steps that other parts (media) act on."""

    async def call_accepted(self, call: Call) -> None: ...

    async def call_active(self, call: Call) -> None: ...

    async def conversation_ended(self, call: Call) -> None: ...


class CallService:
    """Everything that changes a call, and the messages each change sends.

    Every collaborator is given here and fixed for the service's life (the
    bootstrap, ``server/bootstrap.py``, decides them): ``observers`` are told of
    lifecycle steps in order, ``ticket_resolver`` redeems redirect tickets,
    ``queue_update_hooks`` add fields to ``queue.update`` messages.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        backend: QueueBackend,
        hub: Hub,
        metrics: Metrics,
        clock: Clock = time.time,
        outbox: Outbox | None = None,
        *,
        observers: Sequence[CallObserver] = (),
        ticket_resolver: TicketResolver | None = None,
        queue_update_hooks: Sequence[QueueUpdateHook] = (),
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.hub = hub
        self.metrics = metrics
        self.clock = clock
        # Where the effects of a change outside its transaction are recorded
        # (server/outbox): without one, observers are called directly.
        self.outbox = outbox
        self.observers: tuple[CallObserver, ...] = tuple(observers)
        # Without a resolver every ticket is unknown (redirects not wired).
        self.ticket_resolver = ticket_resolver
        self.queue_update_hooks: tuple[QueueUpdateHook, ...] = tuple(queue_update_hooks)
        self.wake = asyncio.Event()
        # The wait estimates and the handle time they come from (:mod:`.estimates`).
        self._waits = WaitEstimates(sessions, backend, clock, settings.handle_time_window)
        # Set while the node drains (server/drain.py): new calls go to another node.
        self.draining = False

    # -- reading -----------------------------------------------------------------
    async def handle_time(self) -> float | None:
        """Windowed average handle time, as last refreshed (the dispatcher refreshes it)."""
        return self._waits.handle_time()

    async def refresh_handle_time(self) -> float | None:
        """Recompute the windowed average handle time from recent calls."""
        return await self._waits.refresh_handle_time()

    async def estimates(self, max_age_s: float = 0.0) -> dict[str, WaitEstimate]:
        """Estimates for every waiting call; reuses a set at most ``max_age_s`` old."""
        return await self._waits.all(max_age_s)

    async def estimate_for(self, call_id: str) -> WaitEstimate | None:
        """One call's estimate (for a GET or a new call)."""
        return await self._waits.of_call(call_id)

    async def annotate_queue_updates(self, updates: dict[str, dict[str, Any]]) -> None:
        """Let the hooks add fields to ``queue.update`` messages (keyed by call id).
        A failing hook is logged and skipped: the position must still go out."""
        for hook in self.queue_update_hooks:
            try:
                await hook(updates)
            except Exception:
                log.exception("queue_update.hook_failed")

    async def load_visible(self, session: AsyncSession, principal: Principal, call_id: str) -> Call:
        """The call if ``principal`` may see it; otherwise not found (no existence leak)."""
        call = await repo.get_call(session, call_id) if len(call_id) <= 64 else None
        if call is None or not await self._may_see(principal, call):
            raise NotFound(f"no call {call_id!r} for you", code="call_not_found")
        return call

    async def _may_see(self, principal: Principal, call: Call) -> bool:
        if principal.role is Role.SUPERVISOR:
            return True
        if principal.role is Role.CUSTOMER:
            return call.customer_id == principal.subject
        if call.specialist_id == principal.subject:
            return True
        offer = await self.backend.pending_offer(principal.subject)
        return offer is not None and offer.call_id == call.call_id

    async def render(
        self, session: AsyncSession, call: Call, viewer: Role, estimate: WaitEstimate | None = None
    ) -> dict[str, Any]:
        if estimate is None and CallState(call.state) in WAITING:
            # Without Redis there is no estimate; the call itself is still shown.
            estimate = await self._deferrable(
                "estimate", self.estimate_for(call.call_id), call.call_id
            )
        specialist = (
            await repo.get_specialist(session, call.specialist_id) if call.specialist_id else None
        )
        customer = (
            await repo.get_customer(session, call.customer_id)
            if viewer is not Role.CUSTOMER
            else None
        )
        return call_view(
            call,
            viewer,
            estimate=estimate,
            specialist=specialist,
            customer=customer,
            threshold=self.settings.proficiency_threshold,
        )

    # -- customer ------------------------------------------------------------------
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
            await session.commit()
            # SQL has the call: from here a failing Redis is repaired, not refused.
            await self._deferrable("enqueue", self._enqueue(call, now), call.call_id)
            estimate = await self._deferrable(
                "estimate", self.estimate_for(call.call_id), call.call_id
            )
            if estimate is not None:
                call.predicted_wait_s = estimate.seconds
                await session.merge(call)
                await session.commit()
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

    async def _enqueue(self, call: Call, now: float) -> int:
        return await self.backend.enqueue(recovery.queued_call(call), now)

    async def get_call(self, principal: Principal, call_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            call = await self.load_visible(session, principal, call_id)
            return await self.render(session, call, principal.role)

    async def hang_up(self, principal: Principal, call_id: str) -> None:
        """The customer leaves the queue or hangs up; idempotent once ended."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            call = await self.load_visible(session, principal, call_id)
        state = CallState(call.state)
        if state in WAITING:
            await self.leave_queue(call_id, EndReason.CANCELLED, now, actor=principal)
        elif state in IN_CONVERSATION:
            await self.end_conversation(call_id, EndReason.COMPLETED, now, actor=principal)

    async def leave_queue(
        self, call_id: str, reason: EndReason, now: float, actor: Principal | None = None
    ) -> bool:
        # Redis first, so no new offer is made; if Redis is down, SQL still records
        # the end and the repair pass takes the call out of the queue later.
        withdrawn = await self._deferrable("remove", self.backend.remove(call_id, now), call_id)
        async with self.sessions() as session:
            done = await repo.transition(
                session,
                call_id,
                CallAction.LEAVE_QUEUE,
                end_reason=reason.value,
                ended_at=repo.utc(now),
            )
            if done:
                await repo.add_event(
                    session,
                    call_id,
                    now,
                    "left_queue",
                    actor.role.value if actor else None,
                    actor.subject if actor else None,
                    end_reason=reason.value,
                )
            await session.commit()
            call = await repo.get_call(session, call_id)
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

    # -- specialist ----------------------------------------------------------------
    async def set_presence(self, principal: Principal, desired: DesiredPresence) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        await self._register(principal.subject)
        state = await self.backend.set_presence(principal.subject, desired, self.clock())
        self.wake.set()
        return {"state": desired.value, "routing_state": state.value}

    async def _register(self, specialist_id: str) -> Specialist:
        async with self.sessions() as session:
            specialist = await repo.get_specialist(session, specialist_id)
        if specialist is None or not specialist.active:
            raise NotFound("unknown specialist", code="specialist_not_found")
        await self.backend.register(recovery.profile_of(specialist))
        return specialist

    async def accept(self, principal: Principal, call_id: str, offer_id: str) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        offer = await self.backend.pending_offer(principal.subject)
        if offer is None or offer.offer_id != offer_id or offer.call_id != call_id:
            raise Conflict("this offer has expired or was withdrawn", code="offer_expired")
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
        try:
            await self.backend.accept(offer_id, principal.subject, now)
        except OfferExpired as exc:
            raise Conflict("this offer has expired or was withdrawn", code="offer_expired") from exc
        return await self._record_accept(principal, call_id, offer_id, offer, before, now)

    async def _undo_accept(self, call: Call, specialist_id: str, now: float) -> None:
        log.warning("call.accept_compensated", call_id=call.call_id)
        await self._deferrable("requeue", self._enqueue(call, now), call.call_id)
        await self._deferrable(
            "free_specialist", self._free_specialist(specialist_id, now), call.call_id
        )
        self.wake.set()

    async def _free_specialist(self, specialist_id: str, now: float) -> None:
        await self.backend.end_call(specialist_id, now)
        await self.backend.finish_wrap_up(specialist_id, now)

    async def _record_accept(
        self,
        principal: Principal,
        call_id: str,
        offer_id: str,
        offer: Any,
        before: Call | None,
        now: float,
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            waited = now - before.enqueued_at.timestamp() if before else None
            try:
                won = await repo.transition(
                    session,
                    call_id,
                    CallAction.ACCEPT,
                    specialist_id=principal.subject,
                    answered_at=repo.utc(now),
                    actual_wait_s=waited,
                    ladder_step=offer.step.value,
                )
                if won:
                    await repo.add_event(
                        session,
                        call_id,
                        now,
                        "accepted",
                        Role.SPECIALIST.value,
                        principal.subject,
                        offer_id=offer_id,
                        waited_s=waited,
                    )
                    await session.commit()
            except Exception as exc:
                if dependency_failure(exc) is not None and before is not None:
                    # SQL failed after Redis handed over the call: give the call
                    # back its place and free the specialist, so neither is left
                    # with no owner. (If the commit landed and only its answer was
                    # lost, the repair pass gives the specialist the call back.)
                    await self._undo_accept(before, principal.subject, now)
                raise
            if not won:
                await session.rollback()
                # Cancelled between reservation and here: free the specialist.
                await self._free_specialist(principal.subject, now)
                self.wake.set()
                raise Conflict("the caller has already left", code="offer_expired")
            call = await repo.get_call(session, call_id)
            specialist = await repo.get_specialist(session, principal.subject)
            assert call is not None and specialist is not None
            self.metrics.offer_outcomes.labels("accepted").inc()
            if waited is not None:
                self.metrics.wait_seconds.observe(waited)
            log.info("call.accepted", call_id=call_id, specialist_id=principal.subject)
            assigned = call_assigned(call_id, specialist, self.settings.proficiency_threshold)
            view = await self.render(session, call, Role.SPECIALIST)
        # No pooled connection is held while Redis (the bus) is awaited, and
        # observers (media set-up) open their own sessions.
        await self.hub.send(Role.CUSTOMER, call.customer_id, assigned)
        await self.on_accepted(call, principal.subject)
        return view

    async def on_accepted(self, call: Call, specialist_id: str) -> None:
        for observer in self.observers:
            await observer.call_accepted(call)

    async def decline(self, principal: Principal, call_id: str, offer_id: str) -> None:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        offer = await self.backend.pending_offer(principal.subject)
        if offer is None or offer.offer_id != offer_id or offer.call_id != call_id:
            raise Conflict("this offer has expired or was withdrawn", code="offer_expired")
        try:
            await self.backend.decline(offer_id, principal.subject, now)
        except OfferExpired as exc:
            raise Conflict("this offer has expired or was withdrawn", code="offer_expired") from exc
        async with self.sessions() as session:
            await repo.transition(session, call_id, CallAction.WITHDRAW_OFFER)
            await repo.add_event(
                session, call_id, now, "declined", Role.SPECIALIST.value, principal.subject
            )
            await session.commit()
        self.metrics.offer_outcomes.labels("declined").inc()
        self.wake.set()

    async def end_by_specialist(self, principal: Principal, call_id: str) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            if CallState(call.state) not in IN_CONVERSATION:
                raise Conflict(f"call is {call.state}; cannot end", code="illegal_state")
        await self.end_conversation(call_id, EndReason.COMPLETED, now, actor=principal)
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            return await self.render(session, call, Role.SPECIALIST)

    async def end_conversation(
        self, call_id: str, reason: EndReason, now: float, actor: Principal | None = None
    ) -> bool:
        """Connecting or active → wrap-up; both parties are told the call ended."""
        async with self.sessions() as session:
            done = await repo.transition(
                session,
                call_id,
                CallAction.END_CONVERSATION,
                end_reason=reason.value,
                conversation_ended_at=repo.utc(now),
            )
            if done:
                await repo.add_event(
                    session,
                    call_id,
                    now,
                    "conversation_ended",
                    actor.role.value if actor else None,
                    actor.subject if actor else None,
                    end_reason=reason.value,
                )
                if self.outbox is not None:
                    self.outbox.append(session, ConversationEnded(call_id, now, reason.value))
            await session.commit()
            call = await repo.get_call(session, call_id)
        if not done or call is None:
            return False
        # SQL has committed: every step below runs whatever the others do.
        # Pending operations go first: money moves only inside a live call.
        if self.outbox is not None:
            # Its handlers (the list in server/bootstrap.py), each isolated and retried.
            await self.outbox.flush(call_id)
        else:
            await self.on_conversation_ended(call)
        ended = call_ended(call_id, reason.value)
        if call.specialist_id:
            await self._deferrable(
                "end_call", self.backend.end_call(call.specialist_id, now), call_id
            )
            await self.hub.send(Role.SPECIALIST, call.specialist_id, ended)
        await self.hub.send(Role.CUSTOMER, call.customer_id, ended)
        return True

    async def on_conversation_ended(self, call: Call) -> None:
        # One observer failing (media, a database blip) never skips the others:
        # cancelling pending operations must happen whatever else fails.
        for observer in self.observers:
            try:
                await observer.conversation_ended(call)
            except Exception:
                log.exception(
                    "call.observer_failed", call_id=call.call_id, observer=type(observer).__name__
                )

    async def wrap_up(
        self, principal: Principal, call_id: str, code: str, note: str | None
    ) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            if CallState(call.state) is not CallState.WRAP_UP:
                raise Conflict(f"call is {call.state}; cannot wrap up", code="illegal_state")
        await self.finish_wrap_up(call_id, code, note, now, actor=principal)
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            return await self.render(session, call, Role.SPECIALIST)

    async def finish_wrap_up(
        self, call_id: str, code: str, note: str | None, now: float, actor: Principal | None
    ) -> bool:
        async with self.sessions() as session:
            done = await repo.transition(
                session,
                call_id,
                CallAction.FINISH_WRAP_UP,
                wrap_up_code=code,
                wrap_up_note=note,
                ended_at=repo.utc(now),
            )
            if done:
                await repo.add_event(
                    session,
                    call_id,
                    now,
                    "wrapped_up",
                    actor.role.value if actor else None,
                    actor.subject if actor else None,
                    code=code,
                )
            await session.commit()
            call = await repo.get_call(session, call_id)
        if done and call is not None:
            self.metrics.calls_ended.labels(call.end_reason or "completed").inc()
            if call.specialist_id:
                await self._deferrable(
                    "finish_wrap_up", self.backend.finish_wrap_up(call.specialist_id, now), call_id
                )
            self.wake.set()
        return done

    async def _held_call(self, session: AsyncSession, principal: Principal, call_id: str) -> Call:
        call = await repo.get_call(session, call_id) if len(call_id) <= 64 else None
        if call is None or call.specialist_id != principal.subject:
            raise NotFound(f"no call {call_id!r} held by you", code="call_not_found")
        return call

    async def _deferrable(self, step: str, work: Awaitable[T], call_id: str) -> T | None:
        """Run a Redis step that follows a committed SQL step. If Redis fails (or
        lost the state the step expects), log it and go on: the repair pass
        brings Redis back in line with SQL. Returns None when it failed."""
        try:
            return await work
        except RoutingError as exc:
            log.warning("live_state.step_deferred", step=step, call_id=call_id, code=exc.code)
        except Exception as exc:
            if dependency_failure(exc) is None:
                raise
            log.warning(
                "live_state.step_deferred", step=step, call_id=call_id, error=type(exc).__name__
            )
        self.wake.set()
        return None

    # -- desk socket ---------------------------------------------------------------
    async def desk_connected(
        self, specialist_id: str, connection: str = ""
    ) -> list[dict[str, Any]]:
        """A desk socket came up; returns messages to replay (a pending offer)."""
        await self._register(specialist_id)
        await self.backend.connect(specialist_id, self.clock(), connection)
        self.wake.set()
        offer = await self.backend.pending_offer(specialist_id)
        if offer is None:
            return []
        message = await self.offer_message(offer.call_id, offer.offer_id, offer.expires_at)
        return [message] if message else []

    async def desk_disconnected(self, specialist_id: str, connection: str = "") -> None:
        """A desk socket closed: only the presence that connection registered ends."""
        now = self.clock()
        withdrawn = await self.backend.disconnect(specialist_id, now, connection)
        if withdrawn is not None:
            async with self.sessions() as session:
                await repo.transition(session, withdrawn.call_id, CallAction.WITHDRAW_OFFER)
                await repo.add_event(
                    session,
                    withdrawn.call_id,
                    now,
                    "offer_withdrawn",
                    Role.SPECIALIST.value,
                    specialist_id,
                    reason="desk_disconnected",
                )
                await session.commit()
            self.metrics.offer_outcomes.labels("withdrawn").inc()
        self.wake.set()

    async def offer_message(
        self, call_id: str, offer_id: str, expires_at: float
    ) -> dict[str, Any] | None:
        async with self.sessions() as session:
            call = await repo.get_call(session, call_id)
            if call is None:
                return None
            customer = await repo.get_customer(session, call.customer_id)
        return call_offered(call, customer, offer_id, expires_at - self.clock())

    async def customer_connected(self, customer_id: str) -> list[dict[str, Any]]:
        """A customer socket came up: tell it where its open call stands.

        Read-only on purpose: a thousand apps reconnecting at once must not queue
        a thousand writes (SQLite takes one at a time); the dispatcher marks
        connected customers as seen in one batched update every few seconds."""
        async with self.sessions() as session:
            call = await repo.open_call_of(session, customer_id)
            specialist = (
                await repo.get_specialist(session, call.specialist_id)
                if call is not None and call.specialist_id
                else None
            )
        # The session is closed before the annotation hooks, which open their own.
        if call is None:
            return []
        state = CallState(call.state)
        if state in WAITING:
            estimate = await self.estimate_for(call.call_id)
            if estimate is None:
                return []
            update = queue_update(estimate)
            await self.annotate_queue_updates({call.call_id: update})
            return [update]
        if state in IN_CONVERSATION and specialist is not None:
            return [call_assigned(call.call_id, specialist, self.settings.proficiency_threshold)]
        return []

    # -- recovery ------------------------------------------------------------------
    async def rebuild_queue(self) -> int:
        """Put every call SQL says is waiting back in the queue (idempotent), and
        give specialists back the calls SQL says they hold (:mod:`.recovery`)."""
        rebuilt = await recovery.rebuild_queue(self.sessions, self.backend, self.clock())
        if rebuilt:
            self.wake.set()
        return rebuilt

    async def restore_assignments(self, now: float) -> int:
        """Specialists hold, in routing, the calls SQL says they hold (idempotent)."""
        return await recovery.restore_assignments(self.sessions, self.backend, now)

    async def requeue(self, call: Call, now: float) -> None:
        """Put one waiting call back in the queue (idempotent)."""
        await self._enqueue(call, now)

    async def relogin_desk(self, specialist_id: str, connection: str) -> None:
        """Routing lost a desk whose socket this node holds: log it in again."""
        await self._register(specialist_id)
        await self.backend.connect(specialist_id, self.clock(), connection)
        self.wake.set()


__all__ = ["CallRequest", "CallService", "TicketGrant", "queue_update"]
