"""HTTP endpoints: callbacks, and the customer's consent to be called.

A waiting customer may choose a callback instead of waiting (when the wait is
long, the call allowed it, and the customer may be called). The callback rings
the customer's app when its turn comes; answering it puts a new call at the
original place in the queue.
"""

from __future__ import annotations

import re
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.appkeys import CALLBACKS, COMPONENTS
from server.auth.principal import Role
from server.errors import NotFound

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import CallResponse, Request

C, V = Role.CUSTOMER.value, Role.SUPERVISOR.value
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_\-]{1,32}")


class CallbackAttemptOut(BaseModel):
    at: str
    local_time: str = Field(description="the same instant in the configured local zone")
    outcome: Literal[
        "rang",
        "answered",
        "declined",
        "no_answer",
        "skipped_outside_hours",
        "skipped_no_consent",
        "skipped_do_not_call",
        "skipped_daily_limit",
    ]
    detail: str | None = None


class CallbackResponse(BaseModel):
    callback_id: str
    call_id: str = Field(description="the call that was converted (now ended, cancelled)")
    state: Literal["scheduled", "ringing", "connected", "cancelled", "failed"]
    priority: Literal["normal", "redirect", "urgent"]
    original_enqueued_at: str
    requested_at: str
    next_attempt_at: str | None = Field(
        default=None, description="when scheduled: next look; when ringing: end of the ring"
    )
    ring_count: int
    completed_at: str | None = None
    outcome: str | None = None
    new_call_id: str | None = Field(default=None, description="the call created on answer")
    hours: str = Field(description="local hours in which callbacks ring, HH:MM-HH:MM")
    timezone: str
    attempts: list[CallbackAttemptOut]
    customer_id: str | None = Field(default=None, description="supervisors only")


class ConsentRequest(Request):
    consent: bool = Field(strict=True)


class DoNotCallRequest(Request):
    do_not_call: bool = Field(strict=True)
    reason: str = Field(min_length=1, max_length=500)


class ContactResponse(BaseModel):
    customer_id: str
    contact_consent: bool
    do_not_call: bool
    cancelled_callbacks: list[str] = Field(description="open callbacks this change ended")


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/callback",
    "Be called back instead of waiting; the call leaves the queue, its place is kept "
    "(a second request returns the same callback with 200)",
    roles=(C,),
    response=CallbackResponse,
    status=201,
    errors=(401, 403, 404, 409),
    tag="callbacks",
    also=(200,),
)
async def request_callback(ctx: RouteContext[None]) -> web.Response:
    view, created = await ctx.app[CALLBACKS].request(ctx.principal, ctx.path("call_id"))
    return json_response(view, status=201 if created else 200)


@registry.route(
    "GET",
    "/api/v1/callbacks/{callback_id}",
    "A callback with every attempt (its customer, supervisors)",
    roles=(C, V),
    response=CallbackResponse,
    errors=(401, 403, 404),
    tag="callbacks",
)
async def get_callback(ctx: RouteContext[None]) -> web.Response:
    view = await ctx.app[CALLBACKS].get(ctx.principal, ctx.path("callback_id"))
    return json_response(view)


@registry.route(
    "GET",
    "/api/v1/me/callbacks",
    "The customer's latest callbacks, newest first",
    roles=(C,),
    response=CallbackResponse,
    errors=(401, 403),
    tag="callbacks",
    many=True,
)
async def my_callbacks(ctx: RouteContext[None]) -> web.Response:
    return json_response(await ctx.app[CALLBACKS].list_own(ctx.principal))


@registry.route(
    "DELETE",
    "/api/v1/callbacks/{callback_id}",
    "Cancel a callback that has not connected yet",
    roles=(C,),
    status=204,
    errors=(401, 403, 404, 409),
    tag="callbacks",
)
async def cancel_callback(ctx: RouteContext[None]) -> web.Response:
    await ctx.app[CALLBACKS].cancel(ctx.principal, ctx.path("callback_id"))
    return web.Response(status=204)


@registry.route(
    "POST",
    "/api/v1/callbacks/{callback_id}/answer",
    "Answer a ringing callback: a new call is queued at the original place "
    "(answering again returns the same call with 200)",
    roles=(C,),
    response=CallResponse,
    status=201,
    errors=(401, 403, 404, 409),
    tag="callbacks",
    also=(200,),
)
async def answer_callback(ctx: RouteContext[None]) -> web.Response:
    view, created = await ctx.app[CALLBACKS].answer(ctx.principal, ctx.path("callback_id"))
    view["ice_servers"] = ctx.app[COMPONENTS].ice_servers(view["call_id"])
    return json_response(view, status=201 if created else 200)


@registry.route(
    "POST",
    "/api/v1/callbacks/{callback_id}/decline",
    "Decline a ringing callback for now; it rings again later, within the daily limit",
    roles=(C,),
    response=CallbackResponse,
    errors=(401, 403, 404, 409),
    tag="callbacks",
)
async def decline_callback(ctx: RouteContext[None]) -> web.Response:
    view = await ctx.app[CALLBACKS].decline(ctx.principal, ctx.path("callback_id"))
    return json_response(view)


@registry.route(
    "PUT",
    "/api/v1/me/contact",
    "Give or withdraw consent to be called; withdrawing ends every open callback",
    roles=(C,),
    body=ConsentRequest,
    response=ContactResponse,
    errors=(401, 403, 404, 422),
    tag="callbacks",
)
async def put_contact(ctx: RouteContext[ConsentRequest]) -> web.Response:
    return json_response(await ctx.app[CALLBACKS].set_consent(ctx.principal, ctx.body.consent))


@registry.route(
    "PUT",
    "/api/v1/customers/{customer_id}/do-not-call",
    "Put a customer on (or take them off) the do-not-call list; putting them on it "
    "ends every open callback",
    roles=(V,),
    body=DoNotCallRequest,
    response=ContactResponse,
    errors=(401, 403, 404, 422),
    tag="callbacks",
)
async def put_do_not_call(ctx: RouteContext[DoNotCallRequest]) -> web.Response:
    customer_id = ctx.path("customer_id")
    if not _CUSTOMER_ID.fullmatch(customer_id):
        raise NotFound("this customer is not known to the branch", code="customer_not_found")
    body = ctx.body
    view = await ctx.app[CALLBACKS].set_do_not_call(
        ctx.principal, customer_id, body.do_not_call, body.reason
    )
    return json_response(view)
