"""A call's events in order, as the caller may see them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import repository as repo
from .views import iso

if TYPE_CHECKING:
    from server.auth.principal import Principal

    from .service import CallService


async def call_timeline(calls: CallService, principal: Principal, call_id: str) -> dict[str, Any]:
    """The events of a call the principal may see (404 ``call_not_found`` otherwise)."""
    async with calls.sessions() as session:
        await calls.load_visible(session, principal, call_id)
        events = await repo.timeline(session, call_id)
    return {
        "call_id": call_id,
        "events": [
            {
                "at": iso(e.at),
                "kind": e.kind,
                "actor_role": e.actor_role,
                "actor_id": e.actor_id,
                "data": e.data,
            }
            for e in events
        ],
    }
