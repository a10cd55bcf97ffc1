"""Supervisor and operations endpoints: specialists, stats, timelines, health, metrics.

The figures come from server/calls/supervision.py, a call's events from
server/calls/timeline.py, the audit chain's verdict from server/audit.py.
"""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from server import audit
from server.appkeys import CALLS, COMPONENTS, METRICS, SETTINGS
from server.auth.principal import Role
from server.calls.supervision import (
    branch_stats,
    queue_gauges,
    specialists_overview,
)
from server.calls.timeline import call_timeline
from server.errors import ServiceUnavailable

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import (
    AuditVerifyResponse,
    HealthResponse,
    ReadyResponse,
    SpecialistOut,
    StatsResponse,
    TimelineResponse,
)


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
async def list_specialists(ctx: RouteContext[None]) -> web.Response:
    return json_response(await specialists_overview(ctx.app[CALLS]))


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}/timeline",
    "The call's events in order",
    roles=(Role.SUPERVISOR.value, Role.SPECIALIST.value, Role.CUSTOMER.value),
    response=TimelineResponse,
    errors=(401, 404),
    tag="supervisor",
)
async def timeline(ctx: RouteContext[None]) -> web.Response:
    view = await call_timeline(ctx.app[CALLS], ctx.principal, ctx.path("call_id"))
    return json_response(view)


@registry.route(
    "GET",
    "/api/v1/stats",
    "Queue depth and longest wait per dialect, specialists by state, service level",
    roles=(Role.SUPERVISOR.value,),
    response=StatsResponse,
    errors=(401, 403),
    tag="supervisor",
)
async def stats(ctx: RouteContext[None]) -> web.Response:
    zone = ZoneInfo(ctx.app[SETTINGS].branch_timezone)
    return json_response(await branch_stats(ctx.app[CALLS], zone))


@registry.route(
    "GET",
    "/api/v1/audit/verify",
    "Recompute the audit hash chain; names the first entry that does not fit",
    roles=(Role.SUPERVISOR.value,),
    response=AuditVerifyResponse,
    errors=(401, 403),
    tag="supervisor",
)
async def audit_verify(ctx: RouteContext[None]) -> web.Response:
    result = await audit.verify_stored(ctx.app[CALLS].sessions)
    return json_response(result.as_dict())


# The operations endpoints go through the registry like every other route, so
# that /api/v1/openapi.json documents them too (they are part of the contract).
@registry.route(
    "GET", "/healthz", "Liveness: the process serves requests", response=HealthResponse, tag="ops"
)
async def healthz(_ctx: RouteContext[None]) -> web.Response:
    return json_response({"status": "ok"})


@registry.route(
    "GET",
    "/readyz",
    "Readiness: the database (and Redis, if configured) answer within 2 s",
    response=ReadyResponse,
    errors=(503,),
    tag="ops",
)
async def readyz(ctx: RouteContext[None]) -> web.Response:
    """Ready when the database and (if configured) Redis answer within 2 s."""
    components = ctx.app[COMPONENTS]
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
async def metrics(ctx: RouteContext[None]) -> web.Response:
    metrics_ = ctx.app[METRICS]
    depth, longest, by_state = await queue_gauges(ctx.app[CALLS])
    metrics_.queue_depth.clear()
    metrics_.longest_wait.clear()
    for key, n in depth.items():
        metrics_.queue_depth.labels(key).set(n)
        metrics_.longest_wait.labels(key).set(longest[key])
    for state, count in by_state.items():
        metrics_.specialists.labels(state).set(count)
    body = generate_latest(metrics_.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
