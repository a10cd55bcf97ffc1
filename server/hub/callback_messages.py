"""Server → customer WebSocket messages about callbacks (their shapes).

They live with the socket protocol, which lists every message the hub sends;
what they say in plain words is the callback service's (server/callbacks/messages.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Words(BaseModel):
    zh: str
    en: str


class CallbackRinging(BaseModel):
    type: Literal["callback.ringing"] = "callback.ringing"
    callback_id: str
    # The call does not exist yet: it is created when the customer answers.
    call_id: None = None
    expires_in_s: float
    message: Words


RingEndReason = Literal["declined", "no_answer", "cancelled"]


class CallbackRingEnded(BaseModel):
    type: Literal["callback.ring_ended"] = "callback.ring_ended"
    callback_id: str
    reason: RingEndReason
    next_attempt_at: str | None = None
