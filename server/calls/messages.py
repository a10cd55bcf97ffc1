"""The call lifecycle's socket messages, built from what the service has read.

Pure: no I/O, no clock (times arrive as arguments). The shapes are the
contract's (``docs/contract.md``); :mod:`server.hub.protocol` publishes them.
"""

from __future__ import annotations

from typing import Any

from server.db.models import Call, Customer, Specialist
from server.routing.estimate import WaitEstimate

from .views import customer_for_desk, specialist_public


def queue_update(estimate: WaitEstimate) -> dict[str, Any]:
    """Where a waiting call stands, and the wait in plain words."""
    return {
        "type": "queue.update",
        "call_id": estimate.call_id,
        "position": estimate.position,
        "estimated_wait_s": estimate.seconds,
        "message": estimate.message(),
    }


# The keys queue_update() itself writes (taken from it, so the two cannot drift
# apart); anything else in an update a hook added.
_QUEUE_UPDATE_KEYS = frozenset(queue_update(WaitEstimate("", 0, None)))


def hook_fields(update: dict[str, Any]) -> dict[str, Any]:
    """What the hooks added to ``update`` (the callback option), kept per call so
    that updates sent without asking the hooks again carry it too."""
    return {k: v for k, v in update.items() if k not in _QUEUE_UPDATE_KEYS}


def call_offered(
    call: Call, customer: Customer | None, offer_id: str, expires_in_s: float
) -> dict[str, Any]:
    """The offer a desk gets: who calls, why, and how long the lease has left."""
    return {
        "type": "call.offered",
        "call_id": call.call_id,
        "offer_id": offer_id,
        "expires_in_s": max(0.0, round(expires_in_s, 1)),
        "customer": customer_for_desk(customer) if customer else None,
        "context": {
            "intent": call.intent,
            "dialect": call.dialect,
            "priority": call.priority,
            "redirect": (call.context or {}).get("redirect"),
        },
    }


def call_assigned(call_id: str, specialist: Specialist, threshold: int) -> dict[str, Any]:
    """The customer's news that a specialist took the call (only what they may know)."""
    return {
        "type": "call.assigned",
        "call_id": call_id,
        "specialist": specialist_public(specialist, threshold),
    }


def call_ended(call_id: str, end_reason: str, **extra: Any) -> dict[str, Any]:
    return {"type": "call.ended", "call_id": call_id, "end_reason": end_reason, **extra}


def offer_withdrawn(call_id: str, offer_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "call.offer_withdrawn", "call_id": call_id, "offer_id": offer_id, **extra}
