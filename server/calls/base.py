"""What every part of the call service shares: its collaborators, reading a call
and rendering it, and the step that defers a failed Redis step to the repair pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.db.models import Call, Specialist
from server.errors import NotFound
from server.failures import dependency_failure
from server.hub.hub import Hub
from server.metrics import Metrics
from server.outbox.events import CallQueued, Event
from server.outbox.relay import Outbox
from server.routing.backend import QueueBackend
from server.routing.errors import RoutingError
from server.routing.estimate import WaitEstimate
from server.routing.model import (
    PriorityClass,
)
from server.settings import Settings

from . import recovery
from . import repository as repo
from .estimates import WaitEstimates
from .state import WAITING, CallAction, CallState
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


class CallServiceBase:
    """Everything that changes a call, and the messages each change sends.

    Every collaborator is given here and fixed for the service's life (the
    bootstrap, ``server/bootstrap.py``, decides them): ``outbox`` records each
    change's domain events in its transaction and delivers them to their
    handlers (the list in the bootstrap), ``ticket_resolver`` redeems redirect
    tickets, ``queue_update_hooks`` add fields to ``queue.update`` messages.
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
        ticket_resolver: TicketResolver | None = None,
        queue_update_hooks: Sequence[QueueUpdateHook] = (),
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.hub = hub
        self.metrics = metrics
        self.clock = clock
        # Where a change's domain events are written, in its transaction
        # (server/outbox). Without one nothing reacts to a change beyond its own
        # messages (a service exercised alone, as the unit tier does).
        self.outbox = outbox
        # Without a resolver every ticket is unknown (redirects not wired).
        self.ticket_resolver = ticket_resolver
        self.queue_update_hooks: tuple[QueueUpdateHook, ...] = tuple(queue_update_hooks)
        self.wake = asyncio.Event()
        # A Redis step failed after its SQL step committed: the repair pass must
        # reconcile soon, though the queue's change log did not move (see repair).
        self.repair_due = False
        # The wait estimates and the handle time they come from (:mod:`.estimates`).
        self._waits = WaitEstimates(sessions, backend, clock, settings.handle_time_window)
        # Set while the node drains (server/drain.py): new calls go to another node.
        self.draining = False

    async def handle_time(self) -> float | None:
        """Windowed average handle time, as last refreshed (the dispatcher refreshes it)."""
        return self._waits.handle_time()

    async def refresh_handle_time(self) -> float | None:
        """Recompute the windowed average handle time from recent calls."""
        return await self._waits.refresh_handle_time()

    async def estimate_for(self, call_id: str) -> WaitEstimate | None:
        """One call's estimate (for a GET or a new call)."""
        return await self._waits.of_call(call_id)

    async def estimates_for(self, call_ids: Sequence[str]) -> dict[str, WaitEstimate]:
        """The estimates of those of ``call_ids`` that wait, in one read (the
        greeting's, for the hellos of the moment)."""
        return await self._waits.of_calls(call_ids)

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

    async def get_call(self, principal: Principal, call_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            call = await self.load_visible(session, principal, call_id)
            return await self.render(session, call, principal.role)

    async def _register(self, specialist_id: str) -> Specialist:
        async with self.sessions() as session:
            specialist = await repo.get_specialist(session, specialist_id)
        if specialist is None or not specialist.active:
            raise NotFound("unknown specialist", code="specialist_not_found")
        await self.backend.register(recovery.profile_of(specialist))
        return specialist

    async def _enqueue(self, call: Call, now: float) -> int:
        return await self.backend.enqueue(recovery.queued_call(call), now)

    async def _free_specialist(self, specialist_id: str, now: float) -> None:
        await self.backend.end_call(specialist_id, now)
        await self.backend.finish_wrap_up(specialist_id, now)

    async def _held_call(self, session: AsyncSession, principal: Principal, call_id: str) -> Call:
        call = await repo.get_call(session, call_id) if len(call_id) <= 64 else None
        if call is None or call.specialist_id != principal.subject:
            raise NotFound(f"no call {call_id!r} held by you", code="call_not_found")
        return call

    def record(self, session: AsyncSession, event: Event) -> None:
        """Write ``event`` in ``session``'s transaction (with the change it reports)."""
        if self.outbox is not None:
            self.outbox.append(session, event)

    async def _step(
        self,
        call_id: str,
        action: CallAction,
        values: dict[str, Any],
        kind: str,
        now: float,
        actor: Principal | None,
        event: Event | None = None,
        **data: Any,
    ) -> tuple[bool, Call | None]:
        """One transition in its own transaction: the conditional update, then (if it
        applied) its timeline line by ``actor`` and its domain event; returns whether
        it applied and the call as committed."""
        async with self.sessions() as session:
            stepped = await repo.stepped_call(session, call_id, action, **values)
            done = stepped is not None
            if done:
                await repo.add_event(
                    session,
                    call_id,
                    now,
                    kind,
                    actor.role.value if actor else None,
                    actor.subject if actor else None,
                    **data,
                )
                if event is not None:
                    self.record(session, event)
            await session.commit()
            return done, stepped if stepped is not None else await repo.get_call(session, call_id)

    async def withdraw_offer(
        self, session: AsyncSession, call_id: str, now: float, cause: str
    ) -> bool:
        """Offered → queued in ``session``'s transaction, with its ``CallQueued``
        event: every way an offer goes back to the queue comes through here."""
        done = await repo.transition(session, call_id, CallAction.WITHDRAW_OFFER)
        if done:
            self.record(session, CallQueued(call_id, now, cause=cause))
        return done

    async def deliver(self, call_id: str) -> None:
        """Right after a commit: the call's events to their handlers, in this task,
        so that their effects (media.start, ...) follow the change at once. A
        handler that fails is retried by the outbox's relay; never the caller."""
        if self.outbox is not None:
            await self.outbox.flush(call_id)

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
        self.repair_due = True
        self.wake.set()
        return None
