"""Supervisor controls over staff access: disable, enable, revoke sessions (audited).

A change takes effect at once on this node (its open sockets of that account are
closed with 4401) and within ``staff_check_cache_s`` on every other node.
"""

from __future__ import annotations

from aiohttp import web

from server.appkeys import CALLS, HUB
from server.auth.admin import AccessAction, change_access
from server.auth.principal import Role
from server.auth.staff import STAFF_ACCESS

from .registry import RouteContext, registry
from .respond import json_response
from .schemas import StaffAccessResponse


async def _change(ctx: RouteContext[None], action: AccessAction) -> web.Response:
    supervisor = ctx.principal
    service = ctx.app[CALLS]
    access = ctx.app[STAFF_ACCESS]
    staff_id = ctx.path("specialist_id")
    async with service.sessions() as session:
        result = await change_access(
            access,
            session,
            staff_id,
            action,
            actor_role=supervisor.role.value,
            actor_id=supervisor.subject,
            now=service.clock(),
        )
        await session.commit()
    if action is not AccessAction.ENABLE:
        for connection in ctx.app[HUB].connections():
            if connection.principal.subject == staff_id and connection.principal.role in (
                Role.SPECIALIST,
                Role.SUPERVISOR,
            ):
                connection.refuse(
                    "account_disabled" if action is AccessAction.DISABLE else "session_revoked",
                    "a supervisor ended this account's access",
                )
    return json_response(result)


def _route(action: AccessAction, suffix: str, summary: str) -> None:
    async def handler(ctx: RouteContext[None]) -> web.Response:
        return await _change(ctx, action)

    handler.__name__ = f"staff_{action.value}"
    registry.route(
        "POST",
        f"/api/v1/specialists/{{specialist_id}}/{suffix}",
        summary,
        roles=(Role.SUPERVISOR.value,),
        response=StaffAccessResponse,
        errors=(401, 403, 404),
        tag="supervisor",
    )(handler)


_route(
    AccessAction.DISABLE,
    "disable",
    "Disable a specialist: login refused, every session revoked, open sockets closed",
)
_route(AccessAction.ENABLE, "enable", "Enable a disabled specialist again (they log in anew)")
_route(
    AccessAction.REVOKE,
    "revoke-sessions",
    "Revoke every session of a specialist (the account stays enabled)",
)
