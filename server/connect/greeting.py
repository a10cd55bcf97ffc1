"""The connect hook of every socket: what a new socket is told.

A customer's hello costs one read (:class:`~server.connect.facts.HelloReads`,
shared with the other hellos of the moment), and each part of the greeting does
I/O only when it applies:

- waiting: ``queue.update`` from the call's standing (O(log n), never a
  snapshot of the queue; the standings of the moment's hellos read together),
  with the callback offer decided on the facts already read; the node's
  positions (:class:`~server.routing.positions.NodePositions`) are told, so
  the dispatcher does not look the call up and tell it again;
- in conversation: ``call.assigned`` (the specialist's card) and the media
  session taken over by this socket (``media.restart`` once everyone is back);
- nothing open: ``call.ended`` once, if their last call failed while away;
- a callback ringing: ``callback.ringing``, from the facts already read.

A desk's socket logs it in to routing, then resumes its media
(:class:`~server.calls.sockets.CallSocketHooks`, then the media coordinator).
"""

from __future__ import annotations

from typing import Any

from server.auth.principal import Role
from server.batched import BatchedReads
from server.callbacks.changes import ringing_replay
from server.callbacks.offers import CallbackOffers
from server.calls import repository as calls_repo
from server.calls.messages import call_assigned, hook_fields, queue_update
from server.calls.service import CallService
from server.calls.sockets import CallSocketHooks
from server.calls.state import IN_CONVERSATION, WAITING
from server.hub.connection import ClientConnection
from server.media.coordinator import MediaCoordinator
from server.ports import Clock
from server.routing.estimate import WaitEstimate
from server.routing.positions import NodePositions
from signaling.relay import CallParties

from .facts import CustomerFacts, HelloReads


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
        positions: NodePositions,
        clock: Clock,
    ) -> None:
        self._reads = reads
        self._calls = calls
        self._desks = desks
        self._media = media
        self._offers = offers
        self._positions = positions
        self._clock = clock
        self._estimates: BatchedReads[str, WaitEstimate | None] = BatchedReads(
            calls.estimates_for, None, name="greeting-estimates"
        )

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
            replay += await self._queue_update(customer_id, call.call_id, facts)
        elif call.state in IN_CONVERSATION and call.specialist_id is not None:
            replay += await self._assigned(call.call_id, call.specialist_id)
            parties = CallParties(call.call_id, customer_id, call.specialist_id)
            replay += await self._media.party_returned(connection, parties)
        replay += ringing_replay(facts.ringing, self._clock())
        return replay

    async def _queue_update(
        self, customer_id: str, call_id: str, facts: CustomerFacts
    ) -> list[dict[str, Any]]:
        estimate = await self._estimates.of(call_id)
        if estimate is None:
            return []
        update = queue_update(estimate)
        self._offers.annotate(update, facts.offer_facts())
        self._positions.greeted(customer_id, call_id, estimate, self._clock(), hook_fields(update))
        return [update]

    async def _assigned(self, call_id: str, specialist_id: str) -> list[dict[str, Any]]:
        async with self._calls.sessions() as session:
            specialist = await calls_repo.get_specialist(session, specialist_id)
        if specialist is None:
            return []
        threshold = self._calls.settings.proficiency_threshold
        return [call_assigned(call_id, specialist, threshold)]

    async def stop(self) -> None:
        """Stop the reads under way (the node shuts down)."""
        await self._estimates.stop()
        await self._reads.stop()
