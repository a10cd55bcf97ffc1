"""Typed keys for what ``create_app`` puts on the application (each set once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.bootstrap import Container
    from server.callbacks.service import CallbackService
    from server.calls.dispatcher import Dispatcher
    from server.calls.service import CallService
    from server.hub.hub import Hub
    from server.integrity.service import IntegrityService
    from server.metrics import Metrics
    from server.operations.service import OperationService
    from server.recordings.service import RecordingService
    from server.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
# The whole container (server/bootstrap.py).
COMPONENTS: web.AppKey[Container] = web.AppKey("components")
CALLS: web.AppKey[CallService] = web.AppKey("calls")
HUB: web.AppKey[Hub] = web.AppKey("hub")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
OPERATIONS: web.AppKey[OperationService] = web.AppKey("operations")
CALLBACKS: web.AppKey[CallbackService] = web.AppKey("callbacks")
RECORDINGS: web.AppKey[RecordingService] = web.AppKey("recordings")
INTEGRITY: web.AppKey[IntegrityService] = web.AppKey("integrity")
