"""Video integrity in the call lifecycle (one of the call service's observers)."""

from __future__ import annotations

from server.db.models import Call

from .service import IntegrityService


class IntegrityObserver:
    """Random challenges while the call is active; state dropped at its end."""

    def __init__(self, service: IntegrityService) -> None:
        self.service = service

    async def call_accepted(self, call: Call) -> None:
        return None

    async def call_active(self, call: Call) -> None:
        self.service.call_started(call.call_id)

    async def conversation_ended(self, call: Call) -> None:
        await self.service.call_ended(call.call_id)
