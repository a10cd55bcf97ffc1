"""How a callback looks to the customer and to a supervisor, and who may see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal, Role
from server.calls.views import iso
from server.db.banking import Callback
from server.errors import Conflict, NotFound

from . import repository as repo
from .policy import CallbackPolicy


def timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def not_ringing(callback: Callback) -> Conflict:
    return Conflict(f"callback is {callback.state}; it is not ringing", code="callback_not_ringing")


async def load_visible(session: AsyncSession, principal: Principal, callback_id: str) -> Callback:
    """The callback if ``principal`` may see it; otherwise not found (no existence leak)."""
    callback = await repo.get(session, callback_id)
    visible = callback is not None and (
        principal.role is Role.SUPERVISOR
        or (principal.role is Role.CUSTOMER and callback.customer_id == principal.subject)
    )
    if callback is None or not visible:
        raise NotFound(f"no callback {callback_id[:64]!r} for you", code="callback_not_found")
    return callback


async def callback_view(
    session: AsyncSession,
    callback: Callback,
    policy: CallbackPolicy,
    viewer: Role = Role.CUSTOMER,
) -> dict[str, Any]:
    attempts = await repo.attempts(session, callback.callback_id)
    view: dict[str, Any] = {
        "callback_id": callback.callback_id,
        "call_id": callback.call_id,
        "state": callback.state,
        "priority": callback.priority,
        "original_enqueued_at": iso(callback.original_enqueued_at),
        "requested_at": iso(callback.requested_at),
        "next_attempt_at": iso(callback.next_attempt_at),
        "ring_count": callback.attempts,
        "completed_at": iso(callback.completed_at),
        "outcome": callback.outcome,
        "new_call_id": callback.new_call_id,
        "hours": policy.hours.describe(),
        "timezone": policy.zone.key,
        "attempts": [
            {
                "at": iso(a.at),
                "local_time": a.local_time,
                "outcome": a.outcome,
                "detail": a.detail,
            }
            for a in attempts
        ],
    }
    if viewer is not Role.CUSTOMER:
        view["customer_id"] = callback.customer_id
    return view
