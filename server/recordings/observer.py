"""Compliance recording in the call lifecycle (one of the call service's observers)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from server.db.models import Call

from .hooks import send_notice
from .service import RecordingService, recording_applies

if TYPE_CHECKING:
    from server.ports import Notifier


class RecordingObserver:
    """The recording notice at media start; the tap closes with the call."""

    def __init__(self, service: RecordingService, hub: Notifier) -> None:
        self.service = service
        self.hub = hub

    async def call_accepted(self, call: Call) -> None:
        if recording_applies(self.service.settings):
            await send_notice(self.hub, self.service.sessions, call, time.time())

    async def call_active(self, call: Call) -> None:
        return None

    async def conversation_ended(self, call: Call) -> None:
        # Also the outbox handler "recording.close" (server/bootstrap.py), which is
        # what runs when a conversation ends; this serves the live-state repair.
        await self.service.close_call(call.call_id)
