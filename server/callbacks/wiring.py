"""Installs callbacks into the application: the service, the sweeper and the hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.auth.principal import Role
from server.hub.connection import ClientConnection
from server.hub.ws import CONNECT_HOOKS
from server.settings import Settings

from .policy import CallbackPolicy
from .service import CallbackService

if TYPE_CHECKING:
    from server.wiring import Components

CALLBACKS: web.AppKey[CallbackService] = web.AppKey("callbacks")


def policy_from(settings: Settings) -> CallbackPolicy:
    return CallbackPolicy.build(
        threshold_s=settings.callback_threshold_s,
        hours=settings.callback_hours,
        timezone=settings.callback_timezone,
        max_attempts_per_day=settings.callback_max_attempts_per_day,
        ring_s=settings.callback_ring_s,
        retry_after_s=settings.callback_retry_after_s,
        max_days=settings.callback_max_days,
    )


def install_callbacks(components: Components, app: web.Application) -> CallbackService:
    """Build the callback service and hook it into the dispatcher, ``queue.update``
    and customer sockets. Call once, after the WebSocket hub is installed."""
    service = CallbackService(components.calls, policy_from(components.settings))
    components.dispatcher.sweepers.append(service.sweep)
    components.calls.queue_update_hooks.append(service.annotate_queue_updates)

    async def replay_ringing(connection: ClientConnection) -> list[dict[str, Any]]:
        principal = connection.principal
        if principal.role is not Role.CUSTOMER:
            return []
        return await service.customer_connected(principal.subject)

    app[CONNECT_HOOKS].append(replay_ringing)
    app[CALLBACKS] = service
    return service
