"""The supervisor wallboard's list of calls: open ones and those ended in the last hour.

``/api/v1/stats`` gives the figures, ``/api/v1/specialists`` the staff; this list
is what lets a supervisor see which call a specialist is on and open its timeline.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from server.appkeys import CALLS
from server.auth.principal import Role
from server.calls import supervision

from .registry import RouteContext, registry
from .respond import json_response


class WallboardCall(BaseModel):
    call_id: str
    state: Literal["queued", "offered", "connecting", "active", "wrap_up", "ended"]
    end_reason: str | None
    dialect: str | None
    priority: str
    specialist_id: str | None
    created_at: str
    answered_at: str | None
    ended_at: str | None


@registry.route(
    "GET",
    "/api/v1/supervisor/calls",
    "Open calls and calls ended in the last hour, newest first (at most 100)",
    roles=(Role.SUPERVISOR.value,),
    response=WallboardCall,
    many=True,
    errors=(401, 403),
    tag="supervisor",
)
async def wallboard_calls(ctx: RouteContext[None]) -> web.Response:
    return json_response(await supervision.wallboard_calls(ctx.app[CALLS]))
