"""Sockets coming and going: a desk's hello registers its presence and replays a
pending offer; a customer's hello tells where its open call stands."""

from __future__ import annotations

from typing import Any

from server.auth.principal import Role
from server.outbox.events import CallQueued

from . import repository as repo
from .base import CallServiceBase
from .messages import call_assigned, call_offered, queue_update
from .state import IN_CONVERSATION, WAITING, CallAction, CallState


class SocketResume(CallServiceBase):
    """What a desk or customer socket's hello and close change, and what they replay."""

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
                if await repo.transition(session, withdrawn.call_id, CallAction.WITHDRAW_OFFER):
                    event = CallQueued(withdrawn.call_id, now, cause="desk_disconnected")
                    self.record(session, event)
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

    async def relogin_desk(self, specialist_id: str, connection: str) -> None:
        """Routing lost a desk whose socket this node holds: log it in again."""
        await self._register(specialist_id)
        await self.backend.connect(specialist_id, self.clock(), connection)
        self.wake.set()
