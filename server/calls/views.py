"""How calls look on the wire, per role."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.auth.principal import Role
from server.db.models import Call, Customer, Specialist
from server.routing.estimate import WaitEstimate, wait_message

from .state import WAITING, CallState


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def specialist_public(specialist: Specialist, threshold: int) -> dict[str, Any]:
    """What a customer may know of their specialist."""
    return {
        "display_name": specialist.display_name,
        "dialects": sorted(d.dialect for d in specialist.dialects if d.proficiency >= threshold),
    }


def customer_for_desk(customer: Customer) -> dict[str, Any]:
    """What the desk needs to greet and serve the caller."""
    return {
        "customer_id": customer.customer_id,
        "display_name": customer.display_name,
        "age": customer.age,
        "preferred_dialect": customer.preferred_dialect,
    }


def call_view(
    call: Call,
    viewer: Role,
    *,
    estimate: WaitEstimate | None = None,
    specialist: Specialist | None = None,
    customer: Customer | None = None,
    threshold: int = 3,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "call_id": call.call_id,
        "state": call.state,
        "end_reason": call.end_reason,
        "dialect": call.dialect,
        "intent": call.intent,
        "priority": call.priority,
        "created_at": iso(call.created_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
    }
    if CallState(call.state) in WAITING:
        view["position"] = estimate.position if estimate else None
        seconds = estimate.seconds if estimate else None
        view["estimated_wait_s"] = seconds
        view["wait_message"] = wait_message(seconds)
    if specialist is not None:
        view["specialist"] = specialist_public(specialist, threshold)
        if viewer is not Role.CUSTOMER:
            view["specialist"]["specialist_id"] = specialist.specialist_id
    if viewer is not Role.CUSTOMER:
        view["customer_id"] = call.customer_id
        view["context"] = call.context
        view["ladder_step"] = call.ladder_step
        view["wrap_up_code"] = call.wrap_up_code
        view["predicted_wait_s"] = call.predicted_wait_s
        view["actual_wait_s"] = call.actual_wait_s
        if customer is not None:
            view["customer"] = customer_for_desk(customer)
    return view
