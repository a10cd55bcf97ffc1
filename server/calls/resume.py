"""Desk sockets coming and going: a desk's hello registers its presence and
replays a pending offer; its socket closing withdraws an offer it had. (A
customer's hello is server/connect/greeting.py's.)"""

from __future__ import annotations

from typing import Any

from server.auth.principal import Role

from . import repository as repo
from .base import CallServiceBase
from .messages import call_offered


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
                await self.withdraw_offer(session, withdrawn.call_id, now, "desk_disconnected")
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

    async def relogin_desk(self, specialist_id: str, connection: str) -> None:
        """Routing lost a desk whose socket this node holds: log it in again."""
        await self._register(specialist_id)
        await self.backend.connect(specialist_id, self.clock(), connection)
        self.wake.set()
