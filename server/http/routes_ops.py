"""Supervisor and operations endpoints: specialists, stats, timelines, health, metrics."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from server import audit
from server.appkeys import CALLS, COMPONENTS, METRICS, SETTINGS
from server.auth.principal import Role
from server.calls import repository as repo
from server.calls.views import iso
from server.db.models import Specialist
from server.errors import ServiceUnavailable
from server.routing.model import QueueSnapshot, SpecialistState

from .auth import require
from .registry import registry
from .respond import json_response
from .schemas import AuditVerifyResponse, SpecialistOut, StatsResponse, TimelineResponse

_SERVICE_LEVEL_S = 60.0


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


@registry.route(
    "GET",
    "/api/v1/specialists",
    "Specialists with dialects, skills and live state",
    roles=(Role.SUPERVISOR.value,),
    response=SpecialistOut,
    errors=(401, 403),
    tag="supervisor",
    many=True,
)
async def list_specialists(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    service = request.app[CALLS]
    async with service.sessions() as session:
        specialists = await repo.all_specialists(session)
    out = []
    for s in specialists:
        view = await service.backend.specialist(s.specialist_id)
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
    return json_response(out)


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}/timeline",
    "The call's events in order",
    roles=(Role.SUPERVISOR.value, Role.SPECIALIST.value, Role.CUSTOMER.value),
    response=TimelineResponse,
    errors=(401, 404),
    tag="supervisor",
)
async def timeline(request: web.Request) -> web.Response:
    principal = require(request, Role.SUPERVISOR, Role.SPECIALIST, Role.CUSTOMER)
    service = request.app[CALLS]
    call_id = request.match_info["call_id"]
    async with service.sessions() as session:
        await service.load_visible(session, principal, call_id)
        events = await repo.timeline(session, call_id)
    return json_response(
        {
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
    )


@registry.route(
    "GET",
    "/api/v1/stats",
    "Queue depth and longest wait per dialect, specialists by state, service level",
    roles=(Role.SUPERVISOR.value,),
    response=StatsResponse,
    errors=(401, 403),
    tag="supervisor",
)
async def stats(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    service = request.app[CALLS]
    now = service.clock()
    snapshot = await service.backend.snapshot(now)
    depth, longest = queue_by_dialect(snapshot)
    queue = {
        key: {"waiting": depth[key], "longest_wait_s": round(longest[key], 1)} for key in depth
    }
    midnight = local_day_start(now, ZoneInfo(request.app[SETTINGS].branch_timezone))
    async with service.sessions() as session:
        roster = await repo.all_specialists(session)
        waits = await repo.answered_waits_since(session, midnight)
        ended = await repo.count_calls_since(session, midnight)
    unanswered = ended.get("cancelled", 0) + ended.get("abandoned", 0) + ended.get("timeout", 0)
    offered_total = len(waits) + unanswered
    return json_response(
        {
            "queue": queue,
            "specialists": specialists_by_state(roster, snapshot),
            "service_level": (
                round(sum(w <= _SERVICE_LEVEL_S for w in waits) / offered_total, 3)
                if offered_total
                else None
            ),
            "abandonment": round(unanswered / offered_total, 3) if offered_total else None,
            "answered_today": len(waits),
            "average_handle_time_s": await service.handle_time(),
            "median_wait_today_s": statistics.median(waits) if waits else None,
        }
    )


@registry.route(
    "GET",
    "/api/v1/audit/verify",
    "Recompute the audit hash chain; names the first entry that does not fit",
    roles=(Role.SUPERVISOR.value,),
    response=AuditVerifyResponse,
    errors=(401, 403),
    tag="supervisor",
)
async def audit_verify(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    async with request.app[CALLS].sessions() as session:
        result = await audit.verify(session)
    return json_response(result.as_dict())


# The operations endpoints go through the registry like every other route, so
# that /api/v1/openapi.json documents them too (they are part of the contract).
@registry.route("GET", "/healthz", "Liveness: the process serves requests", tag="ops")
async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@registry.route(
    "GET",
    "/readyz",
    "Readiness: the database (and Redis, if configured) answer within 2 s",
    errors=(503,),
    tag="ops",
)
async def readyz(request: web.Request) -> web.Response:
    """Ready when the database and (if configured) Redis answer within 2 s."""
    components = request.app[COMPONENTS]
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with components.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if components.redis is not None:
        try:
            async with asyncio.timeout(2):
                await components.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        # The cross-node bus resubscribes by itself; until it has, this node's
        # clients miss messages from other nodes.
        checks["bus"] = "ok" if components.hub.bus_healthy else "error: not subscribed"
    draining = getattr(components, "draining", False)
    if draining:
        checks["drain"] = "error: draining"
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailable("not ready", extra={"checks": checks})
    return json_response({"status": "ready", "checks": checks})


@registry.route(
    "GET",
    "/metrics",
    "Prometheus metrics, text exposition format (outside development mode: "
    "Authorization: Bearer <CLOUDBRANCH_METRICS_TOKEN>)",
    errors=(401,),
    tag="ops",
)
async def metrics(request: web.Request) -> web.Response:
    metrics_ = request.app[METRICS]
    service = request.app[CALLS]
    snapshot = await service.backend.snapshot(service.clock())
    depth, longest = queue_by_dialect(snapshot)
    metrics_.queue_depth.clear()
    metrics_.longest_wait.clear()
    for key, n in depth.items():
        metrics_.queue_depth.labels(key).set(n)
        metrics_.longest_wait.labels(key).set(longest[key])
    async with service.sessions() as session:
        roster = await repo.all_specialists(session)
    for state, count in specialists_by_state(roster, snapshot).items():
        metrics_.specialists.labels(state).set(count)
    body = generate_latest(metrics_.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
