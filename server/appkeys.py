"""Typed keys for what ``create_app`` puts on the application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.calls.dispatcher import Dispatcher
    from server.calls.service import CallService
    from server.hub.hub import Hub
    from server.metrics import Metrics
    from server.operations.service import OperationService
    from server.settings import Settings
    from server.wiring import Components

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
COMPONENTS: web.AppKey[Components] = web.AppKey("components")
CALLS: web.AppKey[CallService] = web.AppKey("calls")
HUB: web.AppKey[Hub] = web.AppKey("hub")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
OPERATIONS: web.AppKey[OperationService] = web.AppKey("operations")
