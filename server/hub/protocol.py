"""Every WebSocket message, both directions, as pydantic models.

These models are the published description of the socket protocol
(``GET /api/v1/schemas/ws.json``). The test harness validates every message a
test client receives against :data:`ServerMessage`, so what is published is what
the server sends.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from signaling.messages import (
    LivenessChallenge,
    LivenessResult,
    MediaNotice,
    MediaRestart,
    MediaStart,
    MediaState,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
)
from signaling.messages import VideoIntegrityNotice as VideoIntegrity

from .callback_messages import CallbackRingEnded, CallbackRinging
from .messages import Hello, Ping


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Words(_Out):
    zh: str
    en: str


class Welcome(_Out):
    type: Literal["welcome"]
    role: Literal["customer", "specialist", "supervisor"]
    subject: str


class Error(_Out):
    type: Literal["error"]
    code: str
    detail: str


class Pong(_Out):
    type: Literal["pong"]


class QueueUpdate(_Out):
    type: Literal["queue.update"]
    call_id: str
    position: int
    estimated_wait_s: int | None
    message: Words
    callback_available: bool | None = None
    callback_message: Words | None = None


class SpecialistCard(_Out):
    display_name: str
    dialects: list[str]


class CallAssigned(_Out):
    type: Literal["call.assigned"]
    call_id: str
    specialist: SpecialistCard


class CallerCard(_Out):
    customer_id: str
    display_name: str
    age: int
    preferred_dialect: str | None


class OfferContext(_Out):
    intent: str | None
    dialect: str | None
    priority: Literal["normal", "redirect", "urgent"]
    redirect: dict[str, Any] | None


class CallOffered(_Out):
    type: Literal["call.offered"]
    call_id: str
    offer_id: str
    expires_in_s: float
    customer: CallerCard | None
    context: OfferContext


class CallOfferWithdrawn(_Out):
    type: Literal["call.offer_withdrawn"]
    call_id: str
    offer_id: str
    reason: str | None = None


class CallEnded(_Out):
    type: Literal["call.ended"]
    call_id: str
    end_reason: Literal["completed", "cancelled", "abandoned", "failed", "timeout"]
    message: Words | None = None
    callback_id: str | None = None


class PresenceUpdated(_Out):
    type: Literal["presence.updated"]
    state: Literal["available", "away"]
    reason: str


class ConfirmRequest(_Out):
    type: Literal["operation.confirm_request"]
    operation_id: str
    kind: str
    summary: Words


class RiskWarning(_Out):
    type: Literal["risk.warning"]
    operation_id: str
    decision: Literal["allow", "warn", "review", "hold", "block"]
    text: Words


class PopupReason(_Out):
    code: str
    specialist_text: str
    customer_text: dict[str, str]
    questions: list[str]


class Referral(_Out):
    number: str
    zh: str
    en: str


class RiskPopup(_Out):
    type: Literal["risk.popup"]
    operation_id: str
    decision: Literal["review", "hold", "block"]
    reasons: list[PopupReason]
    score: int
    referral: list[Referral] | None = None


class OperationUpdated(_Out):
    type: Literal["operation.updated"]
    operation: dict[str, Any]


class WarningShown(_Out):
    type: Literal["risk.warning_shown"]
    operation_id: str = Field(min_length=1, max_length=64)


ServerMessage = Annotated[
    Welcome
    | Error
    | Pong
    | QueueUpdate
    | CallAssigned
    | CallOffered
    | CallOfferWithdrawn
    | CallEnded
    | PresenceUpdated
    | ConfirmRequest
    | RiskWarning
    | RiskPopup
    | OperationUpdated
    | CallbackRinging
    | CallbackRingEnded
    | MediaStart
    | MediaRestart
    | MediaNotice
    | VideoIntegrity
    | LivenessChallenge
    | LivenessResult
    | WebRtcOffer
    | WebRtcAnswer
    | WebRtcIce,
    Field(discriminator="type"),
]
"""Anything the server sends on the socket."""

ClientMessage = Annotated[
    Hello | Ping | WebRtcOffer | WebRtcAnswer | WebRtcIce | MediaState | WarningShown,
    Field(discriminator="type"),
]
"""Anything a client may send on the socket."""

server_messages: TypeAdapter[Any] = TypeAdapter(ServerMessage)
client_messages: TypeAdapter[Any] = TypeAdapter(ClientMessage)


@cache
def ws_schema() -> dict[str, Any]:
    """JSON Schema of both directions, for ``GET /api/v1/schemas/ws.json``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Cloud Branch WebSocket protocol (GET /api/v1/ws)",
        "description": "First message: hello within 5 s. Unknown or malformed messages "
        "are answered with an error message; the socket stays open.",
        "client_to_server": client_messages.json_schema(),
        "server_to_client": server_messages.json_schema(mode="serialization"),
    }
