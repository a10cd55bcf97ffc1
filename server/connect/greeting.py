"""The connect hook of every socket: what a new socket is told.

A customer's hello costs one read (:class:`~server.connect.facts.HelloReads`,
shared with the other hellos of the moment), and each part of the greeting does
I/O only when it applies:

- waiting: ``queue.update`` from the node's recent estimates, with the callback
  offer decided on the facts already read;
- in conversation: ``call.assigned`` (the specialist's card) and the media
  session taken over by this socket (``media.restart`` once everyone is back);
- nothing open: ``call.ended`` once, if their last call failed while away;
- a callback ringing: ``callback.ringing``, from the facts already read.

A desk's socket logs it in to routing, then resumes its media
(:class:`~server.calls.sockets.CallSocketHooks`, then the media coordinator).
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.auth.principal import Role
from server.callbacks.changes import ringing_replay
from server.callbacks.offers import CallbackOffers
from server.calls import repository as calls_repo
from server.calls.messages import call_assigned, queue_update
from server.calls.service import CallService
from server.calls.sockets import CallSocketHooks
from server.calls.state import IN_CONVERSATION, WAITING
from server.hub.connection import ClientConnection
from server.media.coordinator import MediaCoordinator
from server.ports import Clock
from server.routing.estimate import WaitEstimate
from server.tasks import cancel_and_wait
from signaling.relay import CallParties

from .facts import CustomerFacts, HelloReads

# How old a set of wait estimates a greeting may use (the call service's own
# reuse window for one call's estimate).
_ESTIMATES_MAX_AGE_S = 0.5


class Greeting:
    """``SocketRoutes.connect_hooks`` of the application (``server/app.py``)."""

    def __init__(
        self,
        *,
        reads: HelloReads,
        calls: CallService,
        desks: CallSocketHooks,
        media: MediaCoordinator,
        offers: CallbackOffers,
        clock: Clock,
    ) -> None:
        self._reads = reads
        self._calls = calls
        self._desks = desks
        self._media = media
        self._offers = offers
        self._clock = clock
        # One estimates read at a time, shared by the hellos that wait for it.
        self._estimating: asyncio.Task[dict[str, WaitEstimate]] | None = None

    async def connected(self, connection: ClientConnection) -> list[dict[str, Any]]:
        if connection.principal.role is Role.CUSTOMER:
            return await self._customer(connection)
        return [*await self._desks.connected(connection), *await self._media.connected(connection)]

    async def _customer(self, connection: ClientConnection) -> list[dict[str, Any]]:
        customer_id = connection.principal.subject
        facts = await self._reads.of_customer(customer_id)
        call = facts.call
        replay: list[dict[str, Any]] = []
        if call is None:
            if facts.failed_call_id is not None:
                replay += await self._media.tell_failed(facts.failed_call_id)
        elif call.state in WAITING:
            replay += await self._queue_update(call.call_id, facts)
        elif call.state in IN_CONVERSATION and call.specialist_id is not None:
            replay += await self._assigned(call.call_id, call.specialist_id)
            parties = CallParties(call.call_id, customer_id, call.specialist_id)
            replay += await self._media.party_returned(connection, parties)
        replay += ringing_replay(facts.ringing, self._clock())
        return replay

    async def _queue_update(self, call_id: str, facts: CustomerFacts) -> list[dict[str, Any]]:
        estimate = (await self._recent_estimates()).get(call_id)
        if estimate is None:  # a call newer than the recent set
            estimate = await self._calls.estimate_for(call_id)
        if estimate is None:
            return []
        update = queue_update(estimate)
        self._offers.annotate(update, facts.offer_facts())
        return [update]

    async def _recent_estimates(self) -> dict[str, WaitEstimate]:
        task = self._estimating
        if task is None:
            task = asyncio.create_task(
                self._calls.estimates(_ESTIMATES_MAX_AGE_S), name="greeting-estimates"
            )
            self._estimating = task
            task.add_done_callback(self._estimated)
        return await asyncio.shield(task)

    def _estimated(self, task: asyncio.Task[dict[str, WaitEstimate]]) -> None:
        if self._estimating is task:
            self._estimating = None

    async def _assigned(self, call_id: str, specialist_id: str) -> list[dict[str, Any]]:
        async with self._calls.sessions() as session:
            specialist = await calls_repo.get_specialist(session, specialist_id)
        if specialist is None:
            return []
        threshold = self._calls.settings.proficiency_threshold
        return [call_assigned(call_id, specialist, threshold)]

    async def stop(self) -> None:
        """Stop the reads under way (the node shuts down)."""
        await cancel_and_wait(self._estimating)
        await self._reads.stop()
