"""HTTP endpoints for supervisors: a call's recording, its verification, its legal hold.

Every access is itself audited (``recording.accessed``, ``recording.hold_*``).
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.appkeys import RECORDINGS
from server.auth.principal import Role

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import Request

V = Role.SUPERVISOR.value


class TrackOut(BaseModel):
    party: Literal["customer", "specialist"]
    kind: Literal["audio", "video"]
    segments: int
    duration_s: float


class MarkerOut(BaseModel):
    at_s: float
    kind: str
    operation_id: str | None = None
    data: dict[str, Any] | None = None


class RecordingResponse(BaseModel):
    call_id: str
    state: Literal["recording", "complete", "interrupted", "none", "deleted"]
    tracks: list[TrackOut]
    markers: list[MarkerOut]
    retain_until: str | None
    legal_hold: bool
    healthy: bool | None = None
    encryption: str | None = None
    final_hash: str | None = None


class FirstBad(BaseModel):
    index: int
    party: str
    kind: str
    problem: Literal["missing", "altered", "reordered", "extra"]


class VerifyResponse(BaseModel):
    ok: bool
    segments: int
    first_bad: FirstBad | None = None


class HoldRequest(Request):
    hold: bool
    reason: str = Field(min_length=3, max_length=500)


class HoldResponse(BaseModel):
    call_id: str
    legal_hold: bool
    reason: str


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}/recording",
    "The call's recording: state, tracks, markers at their media time, retention and hold",
    roles=(V,),
    response=RecordingResponse,
    errors=(401, 403),
    tag="recordings",
)
async def get_recording(ctx: RouteContext[None]) -> web.Response:
    call_id = ctx.path("call_id")
    service = ctx.app[RECORDINGS]
    await service.audit_access(call_id, "recording", ctx.principal)
    return json_response(await service.status(call_id))


@registry.route(
    "GET",
    "/api/v1/calls/{call_id}/recording/verify",
    "Recompute the recording's hash chain over the stored bytes; names the first bad segment",
    roles=(V,),
    response=VerifyResponse,
    errors=(401, 403, 404, 503),
    tag="recordings",
)
async def verify_recording(ctx: RouteContext[None]) -> web.Response:
    call_id = ctx.path("call_id")
    service = ctx.app[RECORDINGS]
    await service.audit_access(call_id, "verify", ctx.principal)
    verdict = await service.verify(call_id)
    return json_response(verdict.as_dict())


@registry.route(
    "PUT",
    "/api/v1/calls/{call_id}/recording/hold",
    "Set or release a legal hold: a held recording is never deleted by retention",
    roles=(V,),
    body=HoldRequest,
    response=HoldResponse,
    errors=(401, 403, 404, 422),
    tag="recordings",
)
async def hold_recording(ctx: RouteContext[HoldRequest]) -> web.Response:
    body = ctx.body
    view = await ctx.app[RECORDINGS].set_hold(
        ctx.path("call_id"), body.hold, body.reason, ctx.principal
    )
    return json_response(view)
