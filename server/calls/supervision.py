"""What a supervisor sees: the branch's figures, the specialists, the wallboard's calls.

``/api/v1/stats``, ``/api/v1/specialists``, ``/api/v1/supervisor/calls`` and the
queue gauges of ``/metrics`` read them from here; the routes only answer them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import desc, or_, select

from server.db.models import Call, Specialist
from server.routing.model import QueueSnapshot, SpecialistState

from . import repository as repo
from .views import iso

if TYPE_CHECKING:
    from .service import CallService

# A call answered within this wait counts towards the service level.
SERVICE_LEVEL_S = 60.0
# The wallboard lists open calls and those that ended this recently, newest first.
WALLBOARD_RECENT = timedelta(hours=1)
WALLBOARD_LIMIT = 100


def queue_by_dialect(snapshot: QueueSnapshot) -> tuple[Counter[str], dict[str, float]]:
    """Waiting calls and the longest wait (s) per dialect ("any" for none)."""
    depth: Counter[str] = Counter()
    longest: dict[str, float] = {}
    for view in snapshot.waiting:
        key = view.call.dialect or "any"
        depth[key] += 1
        longest[key] = max(longest.get(key, 0.0), snapshot.taken_at - view.call.enqueued_at)
    return depth, longest


def local_day_start(now: float, zone: ZoneInfo) -> datetime:
    """The midnight that began ``now``'s day in ``zone`` (the branch's "today"), in UTC."""
    local = datetime.fromtimestamp(now, tz=zone)
    midnight = datetime.combine(local.date(), time(), tzinfo=zone)
    return midnight.astimezone(UTC)


def specialists_by_state(roster: Sequence[Specialist], snapshot: QueueSnapshot) -> dict[str, int]:
    """Every specialist on the roster by live state, as ``/api/v1/specialists`` shows
    them: one the queue has never seen (no desk socket since the start) is offline."""
    live = {view.specialist_id: view.state for view in snapshot.specialists}
    counts = Counter(live.get(s.specialist_id, SpecialistState.OFFLINE) for s in roster)
    return {state.value: counts.get(state, 0) for state in SpecialistState}


async def branch_stats(calls: CallService, zone: ZoneInfo) -> dict[str, Any]:
    """Queue depth and longest wait per dialect, specialists by state, and today's
    service level, abandonment, answered calls, handle time and median wait."""
    now = calls.clock()
    snapshot = await calls.backend.snapshot(now)
    depth, longest = queue_by_dialect(snapshot)
    queue = {
        key: {"waiting": depth[key], "longest_wait_s": round(longest[key], 1)} for key in depth
    }
    midnight = local_day_start(now, zone)
    async with calls.sessions() as session:
        roster = await repo.all_specialists(session)
        waits = await repo.answered_waits_since(session, midnight)
        ended = await repo.count_calls_since(session, midnight)
    unanswered = ended.get("cancelled", 0) + ended.get("abandoned", 0) + ended.get("timeout", 0)
    offered_total = len(waits) + unanswered
    return {
        "queue": queue,
        "specialists": specialists_by_state(roster, snapshot),
        "service_level": (
            round(sum(w <= SERVICE_LEVEL_S for w in waits) / offered_total, 3)
            if offered_total
            else None
        ),
        "abandonment": round(unanswered / offered_total, 3) if offered_total else None,
        "answered_today": len(waits),
        "average_handle_time_s": await calls.handle_time(),
        "median_wait_today_s": statistics.median(waits) if waits else None,
    }


async def queue_gauges(
    calls: CallService,
) -> tuple[Counter[str], dict[str, float], dict[str, int]]:
    """Waiting calls and longest wait per dialect, and specialists by state (/metrics)."""
    snapshot = await calls.backend.snapshot(calls.clock())
    depth, longest = queue_by_dialect(snapshot)
    async with calls.sessions() as session:
        roster = await repo.all_specialists(session)
    return depth, longest, specialists_by_state(roster, snapshot)


async def specialists_overview(calls: CallService) -> list[dict[str, Any]]:
    """Every specialist with dialects, skills and live state."""
    async with calls.sessions() as session:
        specialists = await repo.all_specialists(session)
    out = []
    for s in specialists:
        view = await calls.backend.specialist(s.specialist_id)
        out.append(
            {
                "specialist_id": s.specialist_id,
                "username": s.username,
                "display_name": s.display_name,
                "dialects": {d.dialect: d.proficiency for d in s.dialects},
                "skills": list(s.skills or []),
                "state": (view.state if view else SpecialistState.OFFLINE).value,
            }
        )
    return out


async def wallboard_calls(calls: CallService) -> list[dict[str, Any]]:
    """Open calls and calls ended in the last hour, newest first (at most 100)."""
    since = datetime.fromtimestamp(calls.clock(), tz=UTC) - WALLBOARD_RECENT
    async with calls.sessions() as session:
        result = await session.execute(
            select(Call)
            .where(or_(Call.ended_at.is_(None), Call.ended_at >= since))
            .order_by(desc(Call.created_at))
            .limit(WALLBOARD_LIMIT)
        )
        rows = result.scalars().all()
    # No customer id or name here: the wallboard is shown on a shared screen.
    return [
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
        for c in rows
    ]
