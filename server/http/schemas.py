"""Pydantic models of the HTTP API: request bodies and documented responses.

These models are the source of ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.auth.principal import Role
from server.routing.intents import INTENTS
from server.routing.model import DesiredPresence

Dialect = str
_SUBJECT = r"^[A-Za-z0-9_\-]{1,32}$"
_DIALECT = r"^[a-z]{2,8}$"


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginRequest(Request):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    specialist_id: str
    display_name: str
    role: Literal["specialist", "supervisor"]
    refresh_token: str | None = None
    expires_in_s: int | None = None


class RefreshRequest(Request):
    refresh_token: str = Field(min_length=16, max_length=128)


class RefreshResponse(BaseModel):
    token: str
    refresh_token: str
    expires_in_s: int
    specialist_id: str


class StaffAccessResponse(BaseModel):
    specialist_id: str
    active: bool
    sessions_revoked: int


class DevTokenRequest(Request):
    role: Role
    subject: str = Field(pattern=_SUBJECT)


class TokenResponse(BaseModel):
    token: str


class CreateCallRequest(Request):
    dialect: Dialect | None = Field(default=None, pattern=_DIALECT)
    intent: str | None = Field(
        default=None,
        max_length=200,
        description="what the customer calls about, one of: "
        + ", ".join(INTENTS)
        + " (any other value is refused with 422 unknown_intent)",
        examples=list(INTENTS),
    )
    ticket: str | None = Field(default=None, min_length=1, max_length=64)
    callback_allowed: bool = False


class WaitMessage(BaseModel):
    zh: str
    en: str


class SpecialistPublic(BaseModel):
    display_name: str
    dialects: list[str]
    specialist_id: str | None = None


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class CustomerForDesk(BaseModel):
    customer_id: str
    display_name: str
    age: int
    preferred_dialect: str | None


_STAFF = "staff only (specialists and supervisors)"


class CallResponse(BaseModel):
    call_id: str
    state: Literal["queued", "offered", "connecting", "active", "wrap_up", "ended"]
    end_reason: Literal["completed", "cancelled", "abandoned", "failed", "timeout"] | None = None
    position: int | None = None
    estimated_wait_s: int | None = None
    wait_message: WaitMessage | None = None
    specialist: SpecialistPublic | None = None
    dialect: str | None = None
    intent: str | None = None
    priority: Literal["normal", "redirect", "urgent"]
    created_at: str
    answered_at: str | None = None
    ended_at: str | None = None
    ice_servers: list[IceServer] | None = None
    context: dict[str, Any] | None = None
    customer_id: str | None = Field(default=None, description=_STAFF)
    customer: CustomerForDesk | None = Field(default=None, description=_STAFF)
    ladder_step: str | None = Field(default=None, description=_STAFF)
    wrap_up_code: str | None = Field(default=None, description=_STAFF)
    predicted_wait_s: float | None = Field(default=None, description=_STAFF)
    actual_wait_s: float | None = Field(default=None, description=_STAFF)


class PresenceRequest(Request):
    state: DesiredPresence


class PresenceResponse(BaseModel):
    state: DesiredPresence
    routing_state: str


class OfferRequest(Request):
    offer_id: str = Field(min_length=1, max_length=64)


class WrapUpRequest(Request):
    code: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class SpecialistOut(BaseModel):
    specialist_id: str
    username: str
    display_name: str
    dialects: dict[str, int]
    skills: list[str]
    state: str


class TimelineEvent(BaseModel):
    at: str
    kind: str
    actor_role: str | None
    actor_id: str | None
    data: dict[str, Any]


class TimelineResponse(BaseModel):
    call_id: str
    events: list[TimelineEvent]


class DialectStats(BaseModel):
    waiting: int
    longest_wait_s: float


class StatsResponse(BaseModel):
    queue: dict[str, DialectStats]
    specialists: dict[str, int]
    service_level: float | None = Field(description="share of calls answered today within 60 s")
    abandonment: float | None = Field(description="share of calls today that left unanswered")
    answered_today: int
    average_handle_time_s: float | None
    median_wait_today_s: float | None = Field(
        description="median wait of the calls answered today (s)"
    )


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str


class AuditVerifyResponse(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["ok"]] = Field(
        description="database, and with Redis: redis and bus (the 503 problem names the failing)"
    )
