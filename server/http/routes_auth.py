"""Desk login and development tokens."""

from __future__ import annotations

from aiohttp import web

from server import audit
from server.appkeys import CALLS, SETTINGS
from server.auth.passwords import verify_password_async
from server.auth.principal import Role
from server.auth.tokens import issue_token
from server.calls import repository as repo
from server.errors import NotFound, Unauthorized

from .body import read_json
from .registry import registry
from .respond import json_response
from .schemas import DevTokenRequest, LoginRequest, LoginResponse, TokenResponse


@registry.route(
    "POST",
    "/api/v1/desk/login",
    "Staff login (specialists and supervisors); the answer says the role",
    body=LoginRequest,
    response=LoginResponse,
    errors=(401, 422),
    tag="auth",
)
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginRequest)
    service = request.app[CALLS]
    async with service.sessions() as session:
        specialist = await repo.specialist_by_username(session, body.username)
    password_hash = specialist.password_hash if specialist and specialist.active else None
    ok = await verify_password_async(password_hash, body.password) and specialist is not None
    async with service.sessions() as session:
        await audit.record(
            session,
            "auth.login" if ok else "auth.login_failed",
            at=service.clock(),
            actor_role=staff_role(specialist.role if specialist else None).value,
            actor_id=specialist.specialist_id if specialist else None,
            data={} if specialist else {"username_known": False},
        )
        await session.commit()
    if not ok or specialist is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    role = staff_role(specialist.role)
    token = issue_token(request.app[SETTINGS], role, specialist.specialist_id)
    return json_response(
        {
            "token": token,
            "specialist_id": specialist.specialist_id,
            "display_name": specialist.display_name,
            "role": role.value,
        }
    )


def staff_role(stored: str | None) -> Role:
    """The token role of a staff account: supervisor when stored so, else specialist."""
    return Role.SUPERVISOR if stored == Role.SUPERVISOR.value else Role.SPECIALIST


@registry.route(
    "POST",
    "/api/v1/dev/tokens",
    "Development mode only: a token for any role and subject",
    body=DevTokenRequest,
    response=TokenResponse,
    status=201,
    errors=(404, 422),
    tag="auth",
)
async def dev_token(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.dev_mode:
        raise NotFound("not found", code="not_found")
    body = await read_json(request, DevTokenRequest)
    return json_response({"token": issue_token(settings, body.role, body.subject)}, status=201)
