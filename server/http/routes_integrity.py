"""``GET /api/v1/calls/{call_id}/integrity``: what the analysis says of the customer's video."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from server.appkeys import CALLS, INTEGRITY
from server.auth.principal import Role
from server.errors import NotFound
from signaling.messages import IntegritySignal, IntegrityStatus

from .registry import RouteContext, registry
from .respond import json_response


class IntegrityResponse(BaseModel):
    call_id: str
    status: IntegrityStatus
    signals: list[IntegritySignal]  # as in the desk's ``video.integrity`` notice
    liveness: Literal["passed", "failed"] | None = None


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}/integrity",
    "The customer's video integrity in this call: status and signals (unknown when the "
    "video is not analysed, e.g. direct media)",
    roles=(Role.SPECIALIST.value, Role.SUPERVISOR.value),
    response=IntegrityResponse,
    errors=(401, 403, 404),
    tag="calls",
)
async def get_integrity(ctx: RouteContext[None]) -> web.Response:
    principal = ctx.principal
    call_id = ctx.path("call_id")
    calls = ctx.app[CALLS]
    async with calls.sessions() as session:
        call = await calls.load_visible(session, principal, call_id)
        if principal.role is Role.SPECIALIST and call.specialist_id != principal.subject:
            # Offered, not held: the picture of the customer is not this desk's yet.
            raise NotFound(f"no call {call_id!r} held by you", code="call_not_found")
    return json_response(ctx.app[INTEGRITY].view(call.call_id))
