"""The background loop that turns queue state into offers, withdrawals and updates.

Every node runs one. Each pass expires leases, makes offers (the backend's
reservation is atomic, so nodes never double-offer), and pushes ``queue.update``
to the customers connected to *this* node. Slower housekeeping (stale desks,
wrap-ups left open, calls waiting past the limit) runs every few seconds.

Positions move by delta, never from a snapshot: each pass reads the backend's
change log after the version this node has seen (one small round trip, empty
when nothing changed) and shifts the standings of the calls whose customers it
holds (:class:`~server.routing.positions.NodePositions`). A customer is told when
the words they see change (position, "about N minutes"), no more often than
``_MIN_UPDATE_GAP_S``, and again every ``queue_update_interval_s`` regardless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from server.auth.principal import Role
from server.db.models import Call, Customer
from server.failures import dependency_failure
from server.outbox.events import OfferMade
from server.routing.model import Offer
from server.routing.positions import Due, NodePositions
from server.tasks import cancel_and_wait, stop_if_cancel_requested, wait_event

from . import repository as repo
from .messages import call_offered, hook_fields, offer_withdrawn, queue_update
from .repair import LiveStateRepair, PendingOperationCalls
from .service import CallService
from .state import WAITING, CallAction, CallState, EndReason

# A housekeeping pass at ``now`` (the dispatcher's clock).
Sweeper = Callable[[float], Awaitable[None]]

log = structlog.get_logger(__name__)

_HOUSEKEEPING_EVERY_S = 2.0
# A customer is told a change at most this often; the last change still goes out
# once the gap has passed.
_MIN_UPDATE_GAP_S = 0.25
# Desks on other nodes change the staffing without waking this one: it is read
# again after every change this node sees, and at least this often.
_STAFFING_EVERY_S = 2.0
_HOLD_EVERY_S = 1.0
_HOLD_OFFERS_AFTER_FAILURE_S = 1.0
# How old the hooks' fields of a reminder may be. The callback option they carry is
# checked afresh when the customer asks for a callback (409 if it is no longer
# possible), so a reminder may repeat a minute-old option; asking the hooks on
# every reminder was one SQL read per waiting customer every queue_update_interval_s.
_EXTRAS_FRESH_S = 60.0


class PassCounter:
    """Counts completed dispatch passes, and lets a caller wait for the next ones.

    "No offer was made" has no event of its own; "two passes completed since the
    change, and neither made it" does: a pass that completes after the second
    began after the change, so it saw the change. Tests wait on this rather than
    sleeping for a while and hoping the dispatcher ran meanwhile.
    """

    def __init__(self) -> None:
        self.completed = 0
        self._next = asyncio.Event()

    def pass_completed(self) -> None:
        self.completed += 1
        finished, self._next = self._next, asyncio.Event()
        finished.set()

    async def wait(self, passes: int = 2) -> int:
        """Return once ``passes`` more passes have completed; the count then."""
        target = self.completed + passes
        while self.completed < target:
            await self._next.wait()
        return self.completed


class Dispatcher:
    """Owns the dispatch task; :meth:`stop` cancels and awaits it."""

    def __init__(
        self,
        service: CallService,
        pending_operation_calls: PendingOperationCalls,
        sweepers: Sequence[Sweeper] = (),
    ) -> None:
        self.service = service
        self.settings = service.settings
        self._task: asyncio.Task[None] | None = None
        self._alive: asyncio.Task[None] | None = None
        self._last_housekeeping = 0.0
        self._last_staffing = float("-inf")
        self._last_hold = float("-inf")
        self._last_customers_seen = float("-inf")
        # The standings of the calls whose customers have a socket here.
        self.positions = NodePositions()
        # Extra housekeeping passes (media grace windows, callbacks), run in order
        # with the others; fixed here (server/bootstrap.py decides them).
        self.sweepers: tuple[Sweeper, ...] = tuple(sweepers)
        self.repair = LiveStateRepair(
            service,
            self.settings.node_id,
            self.settings.repair_interval_s,
            pending_operation_calls,
        )
        # Set while the node drains: no new offers are made from here.
        self.paused = False
        # After an offer could not be recorded (SQL down), offers wait this long,
        # rather than reserving and releasing on every pass.
        self._hold_offers_until = 0.0
        # The passes completed so far (see :class:`PassCounter`).
        self.passes = PassCounter()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-dispatcher")
        self._alive = asyncio.create_task(
            self.repair.keep_alive(self._heartbeats), name="node-keep-alive"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        alive, self._alive = self._alive, None
        await cancel_and_wait(alive)
        await cancel_and_wait(task)

    async def _run(self) -> None:
        wake = self.service.wake
        while True:
            stop_if_cancel_requested("dispatcher")
            await wait_event(wake, self.settings.dispatch_interval_s)
            # Woken means something changed (a call came or went, an offer was
            # answered): positions may have moved, so updates go out this pass.
            changed = wake.is_set()
            wake.clear()
            try:
                await self.run_once(changed=changed)
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad pass (a database blip) must not stop routing for good.
                log.exception("dispatcher.pass_failed")
                await asyncio.sleep(self.settings.dispatch_interval_s)

    async def run_once(self, changed: bool = True) -> None:
        service = self.service
        now = service.clock()
        # Live-state repair first: after Redis came back empty, this pass offers.
        await self.repair.tick(now)
        expired = await service.backend.expire_offers(now)
        for item in expired:
            await self._step(
                "offer_missed", self._offer_missed(item.offer, item.specialist_now_away, now)
            )
        offers: list[Offer] = []
        if not self.paused and now >= self._hold_offers_until:
            started = time.perf_counter()
            offers = await service.backend.dispatch(now)
            if offers:
                service.metrics.assignment_latency.observe(time.perf_counter() - started)
        for offer in offers:
            await self._offer_made_or_released(offer, now)
        if now - self._last_housekeeping >= _HOUSEKEEPING_EVERY_S:
            self._last_housekeeping = now
            await self._housekeeping(now)
        staffing_moved = changed or bool(offers) or bool(expired)
        await self._step("queue_updates", self.push_queue_updates(now, staffing_moved))
        self.passes.pass_completed()

    async def _step(self, name: str, work: Awaitable[object]) -> None:
        """One step of a pass, guarded: a failing dependency skips it (logged),
        never the steps after it (heartbeats must go on while SQL is down)."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if dependency_failure(exc) is None:
                log.exception("dispatcher.step_failed", step=name)
            else:
                log.warning("dispatcher.step_deferred", step=name, error=type(exc).__name__)

    async def _offer_made_or_released(self, offer: Offer, now: float) -> None:
        """Record and send one offer; if its SQL step fails, release the
        reservation at once (a decline: the call keeps its place, and the desk,
        which never saw the offer, is not counted a miss)."""
        try:
            await self._offer_made(offer, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "dispatcher.offer_released", call_id=offer.call_id, error=type(exc).__name__
            )
            self._hold_offers_until = now + _HOLD_OFFERS_AFTER_FAILURE_S
            await self._step(
                "release_offer",
                self.service.backend.decline(offer.offer_id, offer.specialist_id, now),
            )

    async def _offer_made(self, offer: Offer, now: float) -> None:
        service = self.service
        message: dict[str, Any] | None = None
        found: Call | None = None
        async with service.sessions() as session:
            call = await repo.stepped_call(
                session, offer.call_id, CallAction.OFFER, ladder_step=offer.step.value
            )
            customer: Customer | None = None
            if call is not None:
                await repo.add_event(
                    session,
                    offer.call_id,
                    now,
                    "offered",
                    Role.SPECIALIST.value,
                    offer.specialist_id,
                    offer_id=offer.offer_id,
                    step=offer.step.value,
                )
                event = OfferMade(offer.call_id, now, offer.specialist_id, offer.offer_id)
                service.record(session, event)
                # The desk's message is read in the offer's own transaction, so it
                # can go out the moment the offer commits (below): a cancel that
                # commits after the offer then withdraws it after the desk has it.
                customer = await repo.get_customer(session, call.customer_id)
            await session.commit()
            if call is not None:
                message = call_offered(
                    call, customer, offer.offer_id, offer.expires_at - service.clock()
                )
                # Nothing awaited between the commit and this: the message is
                # queued for the desk's socket here before any other task runs.
                service.hub.send_local(Role.SPECIALIST, offer.specialist_id, message)
            else:
                # Why SQL did not take the offer.
                found = await repo.get_call(session, offer.call_id)
        if message is not None:
            await service.hub.publish(Role.SPECIALIST, offer.specialist_id, message)
        if call is None:
            if found is not None and CallState(found.state) not in WAITING:
                # SQL says the call is no longer waiting (it ended on another path):
                # take it out of the queue, which also frees the specialist.
                await service.backend.remove(offer.call_id, now)
                service.wake.set()
            else:
                # Not visible to this transaction yet (a create enqueues inside its
                # own, and may commit meanwhile), or SQL still records an earlier
                # offer: give the reservation back rather than leave an offer
                # nobody was told of to run out. The call keeps its place, the
                # desk is not counted a miss; the next pass offers it again, and a
                # call SQL never gets is taken out by repair.
                await service.backend.decline(offer.offer_id, offer.specialist_id, now)
            return
        service.metrics.offers.labels(offer.step.value).inc()

    async def _offer_missed(self, offer: Offer, now_away: bool, now: float) -> None:
        service = self.service
        async with service.sessions() as session:
            await service.withdraw_offer(session, offer.call_id, now, "offer_missed")
            await repo.add_event(
                session,
                offer.call_id,
                now,
                "offer_expired",
                Role.SPECIALIST.value,
                offer.specialist_id,
                offer_id=offer.offer_id,
            )
            await session.commit()
        service.metrics.offer_outcomes.labels("missed").inc()
        await service.hub.send(
            Role.SPECIALIST,
            offer.specialist_id,
            offer_withdrawn(offer.call_id, offer.offer_id, reason="expired"),
        )
        if now_away:
            log.info("specialist.auto_away", specialist_id=offer.specialist_id)
            await service.hub.send(
                Role.SPECIALIST,
                offer.specialist_id,
                {"type": "presence.updated", "state": "away", "reason": "missed_offers"},
            )
        service.wake.set()

    async def _housekeeping(self, now: float) -> None:
        await self._step("reap_stale", self._reap_stale(now))
        await self._step("handle_time", self.service.refresh_handle_time())
        await self._step("customers_seen", self._customers_seen(now))
        await self._step("due_calls", self._due_calls(now))
        for sweep in self.sweepers:
            await self._step("sweep", sweep(now))

    async def _heartbeats(self, now: float) -> None:
        """Each desk socket here says it is alive; a desk routing lost (Redis came
        back empty, or it was reaped while its socket lived) is logged in again."""
        service = self.service
        for subject, connection in service.hub.local_connections(Role.SPECIALIST):
            if not await service.backend.heartbeat(subject, now, connection):
                log.info("specialist.relogin", specialist_id=subject)
                await service.relogin_desk(subject, connection)

    async def _reap_stale(self, now: float) -> None:
        service = self.service
        for withdrawn in await service.backend.reap_stale(now):
            async with service.sessions() as session:
                await service.withdraw_offer(session, withdrawn.call_id, now, "offer_stale")
                await session.commit()

    async def _customers_seen(self, now: float) -> None:
        # Abandonment is decided on a scale of abandon_after_s: marking every
        # connected customer on each housekeeping pass would write a row per
        # socket every two seconds for nothing.
        every = max(_HOUSEKEEPING_EVERY_S, self.settings.abandon_after_s / 8)
        if now - self._last_customers_seen < every:
            return
        self._last_customers_seen = now
        service = self.service
        customers = service.hub.local_subjects(Role.CUSTOMER)
        if customers:
            async with service.sessions() as session:
                await repo.mark_customers_seen(session, customers, now)
                await session.commit()

    async def _due_calls(self, now: float) -> None:
        service = self.service
        wait_cutoff = now - self.settings.max_queue_wait_s
        gone_cutoff = now - self.settings.abandon_after_s
        wrap_cutoff = now - self.settings.wrap_up_max_s
        async with service.sessions() as session:
            due = await repo.calls_due_for_housekeeping(
                session, wait_cutoff, gone_cutoff, wrap_cutoff
            )
        for call in due:
            waiting = CallState(call.state) in WAITING
            if waiting and call.enqueued_at.timestamp() < wait_cutoff:
                await service.leave_queue(call.call_id, EndReason.TIMEOUT, now)
            elif waiting and (call.customer_seen_at or call.created_at).timestamp() < gone_cutoff:
                await service.leave_queue(call.call_id, EndReason.ABANDONED, now)
            elif (
                call.state == CallState.WRAP_UP.value
                and call.conversation_ended_at is not None
                and call.conversation_ended_at.timestamp() < wrap_cutoff
            ):
                await service.finish_wrap_up(call.call_id, "auto", None, now, actor=None)

    async def push_queue_updates(self, now: float, staffing_moved: bool = True) -> int:
        """Move the held standings by the queue's change log and send ``queue.update``
        to the local customers who should be told now. Returns how many."""
        service = self.service
        positions = self.positions
        if staffing_moved or now - self._last_hold >= _HOLD_EVERY_S:
            # Which customers have a socket here: a scan of every socket, so not
            # on every quiet pass (a new socket's hello tells it its place itself).
            self._last_hold = now
            positions.hold(set(service.hub.local_subjects(Role.CUSTOMER)))
        positions.apply(await service.backend.queue_changes(positions.version))
        wanted = set(positions.wanted)
        new = positions.to_look_up()
        if new:
            async with service.sessions() as session:
                found = await repo.waiting_calls_of(session, new)
            positions.looked_up(new, found)
            wanted.update(found.values())
        if wanted:
            _, standings = await service.backend.standings(sorted(wanted))
            positions.wanted.difference_update(wanted)
            positions.put(standings)
        if not len(positions):
            return 0
        stale = now - self._last_staffing >= _STAFFING_EVERY_S
        if staffing_moved or stale or not positions.has_figures:
            self._last_staffing = now
            positions.set_figures(await service.backend.staffing(), await service.handle_time())
        due = positions.due(now, _MIN_UPDATE_GAP_S, self.settings.queue_update_interval_s)
        if not due:
            return 0
        await self._annotate(due, now)
        sent = 0
        for item in due:
            estimate = item.estimate
            fields = positions.fields_for(estimate.call_id, estimate.seconds)
            if fields is None:
                # A hook could not annotate it (not committed yet): told next pass.
                positions.untold(estimate.call_id)
                continue
            message = {**queue_update(estimate), **fields}
            service.hub.send_local(Role.CUSTOMER, item.customer_id, message)
            sent += 1
        return sent

    async def _annotate(self, due: list[Due], now: float) -> None:
        """The hooks' fields (the callback option) for each update. They depend on
        the call and on its wait figure: a call whose figure is the one last
        annotated keeps its fields (a cancel at the head moves a thousand sockets
        without a thousand-row read); a reminder asks the hooks again once their
        fields are ``_EXTRAS_FRESH_S`` old, so that what changed meanwhile in SQL
        (the customer's consent, the do-not-call list) shows within that."""
        positions = self.positions
        fresh: dict[str, dict[str, Any]] = {}
        for item in due:
            estimate = item.estimate
            since = now - _EXTRAS_FRESH_S if item.reminder else float("-inf")
            if positions.fields_for(estimate.call_id, estimate.seconds, since) is None:
                fresh[estimate.call_id] = queue_update(estimate)
        if not fresh:
            return
        await self.service.annotate_queue_updates(fresh)
        for call_id, message in fresh.items():  # less those the hooks took out
            positions.annotated(call_id, message["estimated_wait_s"], hook_fields(message), now)
