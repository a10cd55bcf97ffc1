"""The supervisor wallboard's list of calls: open ones and those ended in the last hour.

``/api/v1/stats`` gives the figures, ``/api/v1/specialists`` the staff; this list
is what lets a supervisor see which call a specialist is on and open its timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import desc, or_, select

from server.appkeys import CALLS
from server.auth.principal import Role
from server.calls.views import iso
from server.db.models import Call

from .auth import require
from .registry import registry
from .respond import json_response

_RECENT = timedelta(hours=1)
_LIMIT = 100


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
async def wallboard_calls(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    service = request.app[CALLS]
    since = datetime.fromtimestamp(service.clock(), tz=UTC) - _RECENT
    async with service.sessions() as session:
        result = await session.execute(
            select(Call)
            .where(or_(Call.ended_at.is_(None), Call.ended_at >= since))
            .order_by(desc(Call.created_at))
            .limit(_LIMIT)
        )
        calls = result.scalars().all()
    # No customer id or name here: the wallboard is shown on a shared screen.
    return json_response(
        [
            {
                "call_id": c.call_id,
                "state": c.state,
                "end_reason": c.end_reason,
                "dialect": c.dialect,
                "priority": c.priority,
                "specialist_id": c.specialist_id,
                "created_at": iso(c.created_at),
                "answered_at": iso(c.answered_at),
                "ended_at": iso(c.ended_at),
            }
            for c in calls
        ]
    )
