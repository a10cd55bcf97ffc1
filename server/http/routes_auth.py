"""Staff login, refresh and logout, and development tokens."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import CALLS, SETTINGS
from server.auth.desk_login import DeskLogin
from server.auth.login import LOGIN_GUARD
from server.auth.principal import Role
from server.auth.staff import STAFF_ACCESS
from server.auth.throttle import THROTTLE
from server.auth.tokens import issue_token

from .edge import client_address
from .registry import RouteContext, registry
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
async def login(ctx: RouteContext[LoginRequest]) -> web.Response:
    body = ctx.body
    done = await _desk_login(ctx.app).login(
        body.username, body.password, client_address(ctx.request)
    )
    return json_response(done.as_dict())


def _desk_login(app: web.Application) -> DeskLogin:
    return DeskLogin(app[CALLS], app[LOGIN_GUARD], app[THROTTLE], app[STAFF_ACCESS])


@registry.route(
    "POST",
    "/api/v1/desk/refresh",
    "A new access token for a live staff session (the refresh token is rotated)",
    body=RefreshRequest,
    response=RefreshResponse,
    errors=(401, 422),
    tag="auth",
)
async def refresh(ctx: RouteContext[RefreshRequest]) -> web.Response:
    issued, staff_id = await ctx.app[STAFF_ACCESS].refresh(ctx.body.refresh_token)
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
async def logout(ctx: RouteContext[None]) -> web.Response:
    await _desk_login(ctx.app).logout(ctx.principal)
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
    dev_only=True,
)
async def dev_token(ctx: RouteContext[DevTokenRequest]) -> web.Response:
    token = issue_token(ctx.app[SETTINGS], ctx.body.role, ctx.body.subject)
    return json_response({"token": token}, status=201)
