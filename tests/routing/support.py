"""Helpers shared by the routing tests: the policy, call and specialist builders."""

from __future__ import annotations

from server.routing.backend import QueueBackend
from server.routing.model import (
    DesiredPresence,
    PriorityClass,
    QueuedCall,
    RoutingPolicy,
    SpecialistProfile,
    SpecialistState,
)

# The defaults, spelled out because the tests' times depend on them.
POLICY = RoutingPolicy(
    dialect_wait_s=30.0,
    urgent_dialect_wait_s=10.0,
    proficiency_threshold=3,
    weight_normal_s=0.0,
    weight_redirect_s=120.0,
    weight_urgent_s=600.0,
    skill_wait_s=15.0,
    urgent_skill_wait_s=5.0,
    offer_lease_s=15.0,
    max_consecutive_misses=3,
    presence_ttl_s=45.0,
)


def call(
    call_id: str,
    dialect: str | None = None,
    priority: PriorityClass = PriorityClass.NORMAL,
    at: float = 0.0,
    intent: str | None = None,
) -> QueuedCall:
    return QueuedCall(
        call_id=call_id,
        customer_id=f"cust-{call_id}",
        dialect=dialect,
        priority=priority,
        enqueued_at=at,
        intent=intent,
    )


async def staff(
    backend: QueueBackend,
    specialist_id: str,
    dialects: dict[str, int],
    at: float = 0.0,
    *,
    available: bool = True,
    skills: frozenset[str] = frozenset(),
) -> SpecialistState:
    """Register, log in and (unless told otherwise) make available at ``at``."""
    await backend.register(SpecialistProfile(specialist_id, dialects, skills))
    state = await backend.connect(specialist_id, at)
    if available:
        state = await backend.set_presence(specialist_id, DesiredPresence.AVAILABLE, at)
    return state
