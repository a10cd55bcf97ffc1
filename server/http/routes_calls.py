"""Customer and specialist call endpoints (contract: Customer, Specialist)."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import CALLS, COMPONENTS
from server.auth.principal import Role
from server.calls.service import CallRequest
from server.errors import Conflict, ValidationFailed
from server.routing.intents import INTENTS

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import (
    CallResponse,
    CreateCallRequest,
    OfferRequest,
    PresenceRequest,
    PresenceResponse,
    WrapUpRequest,
)

C, S, V = Role.CUSTOMER.value, Role.SPECIALIST.value, Role.SUPERVISOR.value


def _offer_expired() -> Conflict:
    # An unknown call is an offer that is not live: the same answer as for a real
    # call, so nothing leaks about which ids exist.
    return Conflict("this offer has expired or was withdrawn", code="offer_expired")


@registry.route(
    "POST",
    "/api/v1/calls",
    "One-click call: queue a call (a second tap returns the open call with 200)",
    roles=(C,),
    body=CreateCallRequest,
    response=CallResponse,
    status=201,
    errors=(401, 403, 404, 409, 422),
    also=(200,),
    body_optional=True,
)
async def create_call(ctx: RouteContext[CreateCallRequest]) -> web.Response:
    body = ctx.body
    _check_intent(body.intent)
    view, created = await ctx.app[CALLS].create_call(
        ctx.principal,
        CallRequest(
            dialect=body.dialect,
            intent=body.intent,
            ticket=body.ticket,
            callback_allowed=body.callback_allowed,
        ),
    )
    view["ice_servers"] = ctx.app[COMPONENTS].ice_servers(view["call_id"])
    return json_response(view, status=201 if created else 200)


def _check_intent(intent: str | None) -> None:
    """Routing needs an intent it knows; the value itself is not echoed (a
    customer's free text could be personal)."""
    if intent is not None and intent not in INTENTS:
        raise ValidationFailed(
            "intent: must be one of " + ", ".join(INTENTS), code="unknown_intent"
        )


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}",
    "A call, as the caller may see it",
    roles=(C, S, V),
    response=CallResponse,
    errors=(401, 404),
)
async def get_call(ctx: RouteContext[None]) -> web.Response:
    return json_response(await ctx.app[CALLS].get_call(ctx.principal, ctx.path("call_id")))


@registry.route(
    "DELETE",
    "/api/v1/calls/{call_id}",
    "Leave the queue or hang up",
    roles=(C,),
    status=204,
    errors=(401, 403, 404),
)
async def delete_call(ctx: RouteContext[None]) -> web.Response:
    await ctx.app[CALLS].hang_up(ctx.principal, ctx.path("call_id"))
    return web.Response(status=204)


@registry.route(
    "PUT",
    "/api/v1/desk/presence",
    "Set the specialist's presence",
    roles=(S,),
    body=PresenceRequest,
    response=PresenceResponse,
    errors=(401, 403, 422),
    tag="desk",
)
async def put_presence(ctx: RouteContext[PresenceRequest]) -> web.Response:
    return json_response(await ctx.app[CALLS].set_presence(ctx.principal, ctx.body.state))


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/accept",
    "Accept an offer",
    roles=(S,),
    body=OfferRequest,
    response=CallResponse,
    errors=(401, 403, 409, 422),
    tag="desk",
    invalid_id=_offer_expired,
)
async def accept(ctx: RouteContext[OfferRequest]) -> web.Response:
    view = await ctx.app[CALLS].accept(ctx.principal, ctx.path("call_id"), ctx.body.offer_id)
    return json_response(view)


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/decline",
    "Decline an offer (the call keeps its place; not counted as a miss)",
    roles=(S,),
    body=OfferRequest,
    status=204,
    errors=(401, 403, 409, 422),
    tag="desk",
    invalid_id=_offer_expired,
)
async def decline(ctx: RouteContext[OfferRequest]) -> web.Response:
    await ctx.app[CALLS].decline(ctx.principal, ctx.path("call_id"), ctx.body.offer_id)
    return web.Response(status=204)


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/end",
    "End the conversation; the call moves to wrap-up",
    roles=(S,),
    response=CallResponse,
    errors=(401, 403, 404, 409),
    tag="desk",
)
async def end(ctx: RouteContext[None]) -> web.Response:
    view = await ctx.app[CALLS].end_by_specialist(ctx.principal, ctx.path("call_id"))
    return json_response(view)


@registry.route(
    "POST",
    "/api/v1/calls/{call_id}/wrap-up",
    "Submit wrap-up; the call ends and the specialist is available again",
    roles=(S,),
    body=WrapUpRequest,
    response=CallResponse,
    errors=(401, 403, 404, 409, 422),
    tag="desk",
)
async def wrap_up(ctx: RouteContext[WrapUpRequest]) -> web.Response:
    body = ctx.body
    view = await ctx.app[CALLS].wrap_up(ctx.principal, ctx.path("call_id"), body.code, body.note)
    return json_response(view)
