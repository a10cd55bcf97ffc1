"""HTTP endpoints: in-call operations, reviews, the customer's confirmation, risk lists."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.appkeys import OPERATIONS
from server.auth.principal import Role

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import Request

C, S, V = Role.CUSTOMER.value, Role.SPECIALIST.value, Role.SUPERVISOR.value


class StartOperationRequest(Request):
    kind: str = Field(min_length=1, max_length=32)
    params: dict[str, Any] = Field(default_factory=dict)
    customer_statement: str | None = Field(default=None, max_length=2000)


class ReviewRequest(Request):
    action: Literal["proceed", "hold", "block"]
    answers: dict[str, str] | None = Field(default=None, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class ConfirmRequest(Request):
    confirmed: bool


class BlockPayeeRequest(Request):
    account_no: str = Field(pattern=r"^[0-9]{6,34}$")
    reason: str = Field(min_length=3, max_length=500)
    operation_id: str | None = Field(default=None, max_length=64)


class RiskReasonOut(BaseModel):
    code: str
    specialist_text: str | None = None
    customer_text: dict[str, str]
    questions: list[str] | None = None


class LivenessBindingOut(BaseModel):
    """The liveness challenge an operation waited for (server/operations/liveness.py)."""

    challenge_id: str
    kind: Literal["colour", "head_turn"]
    status: Literal["pending", "passed", "failed", "expired"]
    reason: str | None = None
    decide_by: str


class RiskOut(BaseModel):
    decision: Literal["allow", "warn", "review", "hold", "block"]
    score: int | None = None
    reasons: list[RiskReasonOut]
    ruleset_version: str | None = None
    mitigations: list[str] | None = Field(
        default=None, description="staff only: the codes of the rules that lowered the score"
    )
    unknown_features: list[str] | None = Field(
        default=None, description="staff only: inputs the ruleset did not know"
    )
    typology: str | None = Field(default=None, description="staff only: the fraud pattern named")
    liveness: LivenessBindingOut | None = None


class ReferralStep(BaseModel):
    number: str
    zh: str
    en: str


_STAFF = "staff only (specialists and supervisors)"


class OperationResponse(BaseModel):
    operation_id: str
    call_id: str
    kind: str
    state: Literal[
        "awaiting_liveness",
        "awaiting_review",
        "awaiting_confirmation",
        "held",
        "blocked",
        "executed",
        "rejected",
        "failed",
    ]
    params: dict[str, Any]
    risk: RiskOut | None = None
    result: dict[str, Any] | None = None
    failure_reason: str | None = None
    hold_until: str | None = None
    created_at: str
    updated_at: str
    origin: str = Field(description="specialist, or redirect: started by a scenario redirect")
    customer_statement: str | None = Field(default=None, description=_STAFF)
    review: dict[str, Any] | None = Field(default=None, description=_STAFF)
    confirmation: dict[str, Any] | None = Field(default=None, description=_STAFF)
    referral: list[ReferralStep] | None = Field(
        default=None, description="staff only, when blocked: where to refer the customer"
    )


class BlockedPayeeResponse(BaseModel):
    account_no: str
    blocked: bool
    reason: str


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/operations",
    "Start an operation in an active call; transfers and limit changes are risk-checked inline",
    roles=(S,),
    body=StartOperationRequest,
    response=OperationResponse,
    status=201,
    errors=(401, 403, 404, 409, 422),
    tag="operations",
)
async def start_operation(ctx: RouteContext[StartOperationRequest]) -> web.Response:
    body = ctx.body
    view = await ctx.app[OPERATIONS].start(
        ctx.principal, ctx.path("call_id"), body.kind, body.params, body.customer_statement
    )
    return json_response(view, status=201)


@registry.route(
    "POST",
    "/api/v1/operations/{operation_id}/review",
    "Answer a review (proceed needs every scripted question answered), or release/cancel a hold",
    roles=(S,),
    body=ReviewRequest,
    response=OperationResponse,
    errors=(401, 403, 404, 409, 422),
    tag="operations",
)
async def review_operation(ctx: RouteContext[ReviewRequest]) -> web.Response:
    body = ctx.body
    view = await ctx.app[OPERATIONS].review(
        ctx.principal, ctx.path("operation_id"), body.action, body.answers, body.note
    )
    return json_response(view)


@registry.route(
    "POST",
    "/api/v1/operations/{operation_id}/confirm",
    "The customer's own yes or no (the willingness check)",
    roles=(C,),
    body=ConfirmRequest,
    response=OperationResponse,
    errors=(401, 403, 404, 409, 422),
    tag="operations",
)
async def confirm_operation(ctx: RouteContext[ConfirmRequest]) -> web.Response:
    view = await ctx.app[OPERATIONS].confirm(
        ctx.principal, ctx.path("operation_id"), ctx.body.confirmed
    )
    return json_response(view)


@registry.route(
    "GET",
    "/api/v1/operations/{operation_id}",
    "An operation, as the caller may see it",
    roles=(C, S, V),
    response=OperationResponse,
    errors=(401, 404),
    tag="operations",
)
async def get_operation(ctx: RouteContext[None]) -> web.Response:
    view = await ctx.app[OPERATIONS].get(ctx.principal, ctx.path("operation_id"))
    return json_response(view)


@registry.route(
    "POST",
    "/api/v1/risk/blocked-payees",
    "Put a payee account on the blocked list, with a reason",
    roles=(S, V),
    body=BlockPayeeRequest,
    response=BlockedPayeeResponse,
    status=201,
    errors=(401, 403, 404, 422),
    tag="operations",
)
async def block_payee(ctx: RouteContext[BlockPayeeRequest]) -> web.Response:
    body = ctx.body
    view = await ctx.app[OPERATIONS].block_payee(
        ctx.principal, body.account_no, body.reason, body.operation_id
    )
    return json_response(view, status=201)
