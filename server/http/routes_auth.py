"""Staff login, refresh and logout, and development tokens."""

from __future__ import annotations

from aiohttp import web

from server import audit
from server.appkeys import CALLS, SETTINGS
from server.auth.login import LOGIN_GUARD
from server.auth.principal import Role
from server.auth.staff import STAFF_ACCESS
from server.auth.throttle import THROTTLE
from server.auth.tokens import issue_token
from server.calls import repository as repo
from server.errors import NotFound, Unauthorized

from .auth import require
from .body import read_json
from .edge import client_address
from .registry import registry
from .respond import json_response
from .schemas import (
    DevTokenRequest,
    LoginRequest,
    LoginResponse,
    RefreshRequest,
    RefreshResponse,
    TokenResponse,
)


@registry.route(
    "POST",
    "/api/v1/desk/login",
    "Staff login (specialists and supervisors; the answer says the role): a short-lived "
    "access token and a refresh token for one session. Repeated failures lock the account "
    "(and the client address) for a while: 429",
    body=LoginRequest,
    response=LoginResponse,
    errors=(401, 422, 429),
    tag="auth",
)
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginRequest)
    service = request.app[CALLS]
    guard = request.app[LOGIN_GUARD]
    keys = {
        "login:account": body.username.strip().lower(),
        "login:address": client_address(request),
    }
    throttle = request.app[THROTTLE]
    async with guard.slot():
        # Before any lookup, hashing or audit row: a locked account or address costs
        # nothing. Inside the slot, so attempts sent at once are counted one by one.
        await throttle.check(keys)
        async with service.sessions() as session:
            specialist = await repo.specialist_by_username(session, body.username)
        password_hash = specialist.password_hash if specialist and specialist.active else None
        ok = await guard.verify(password_hash, body.password) and specialist is not None
        if not ok:
            await throttle.failed(keys)
    if not ok or specialist is None:
        await guard.record_failure(service, specialist.specialist_id if specialist else None)
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    await request.app[THROTTLE].forgive("login:account", keys["login:account"])
    access = request.app[STAFF_ACCESS]
    # Staff rows that carry a role (supervisors) get a session of that role.
    role = staff_role(specialist.role)
    async with service.sessions() as session:
        issued = await access.open_session(session, specialist.specialist_id, role)
        await audit.record(
            session,
            "auth.login",
            at=service.clock(),
            actor_role=role.value,
            actor_id=specialist.specialist_id,
            data={"session_id": issued.session_id},
        )
        await session.commit()
    return json_response(
        {
            "token": issued.token,
            "specialist_id": specialist.specialist_id,
            "display_name": specialist.display_name,
            "role": role.value,
            "refresh_token": issued.refresh_token,
            "expires_in_s": issued.expires_in_s,
        }
    )


def staff_role(stored: str | None) -> Role:
    """The token role of a staff account: supervisor when stored so, else specialist."""
    return Role.SUPERVISOR if stored == Role.SUPERVISOR.value else Role.SPECIALIST


@registry.route(
    "POST",
    "/api/v1/desk/refresh",
    "A new access token for a live staff session (the refresh token is rotated)",
    body=RefreshRequest,
    response=RefreshResponse,
    errors=(401, 422),
    tag="auth",
)
async def refresh(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshRequest)
    issued, staff_id = await request.app[STAFF_ACCESS].refresh(body.refresh_token)
    return json_response(
        {
            "token": issued.token,
            "refresh_token": issued.refresh_token,
            "expires_in_s": issued.expires_in_s,
            "specialist_id": staff_id,
        }
    )


@registry.route(
    "POST",
    "/api/v1/desk/logout",
    "End this staff session: its access and refresh tokens stop working at once",
    roles=(Role.SPECIALIST.value, Role.SUPERVISOR.value),
    status=204,
    errors=(401, 403),
    tag="auth",
)
async def logout(request: web.Request) -> web.Response:
    principal = require(request, Role.SPECIALIST, Role.SUPERVISOR)
    service = request.app[CALLS]
    if principal.session_id is not None:
        async with service.sessions() as session:
            await request.app[STAFF_ACCESS].revoke_session(session, principal.session_id, "logout")
            await audit.record(
                session,
                "auth.logout",
                at=service.clock(),
                actor_role=principal.role.value,
                actor_id=principal.subject,
                data={"session_id": principal.session_id},
            )
            await session.commit()
    return web.Response(status=204)


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
