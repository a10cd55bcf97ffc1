"""Puts video integrity into the application: two calls from ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from server.db.models import Call

from .remote import RemoteIntegrity
from .service import IntegrityService

if TYPE_CHECKING:
    from server.operations.service import OperationService
    from server.wiring import Components

INTEGRITY: web.AppKey[IntegrityService] = web.AppKey("integrity")


class IntegrityObserver:
    """Call lifecycle: random challenges while the call is active; state dropped at its end."""

    def __init__(self, service: IntegrityService) -> None:
        self.service = service

    async def call_accepted(self, call: Call) -> None:
        return None

    async def call_active(self, call: Call) -> None:
        self.service.call_started(call.call_id)

    async def conversation_ended(self, call: Call) -> None:
        await self.service.call_ended(call.call_id)


def install_integrity(app: web.Application, components: Components) -> IntegrityService:
    """Compose the analyser into the media node's taps (after the recorder is installed,
    before the media node is built) and own the service's lifecycle."""
    service = IntegrityService(components.settings, components.sessions, components.hub)
    components.media_taps = service.wrap(components.media_taps)
    app[INTEGRITY] = service

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    install_remote_integrity(app, components, service)
    return service


def install_remote_integrity(
    app: web.Application, components: Components, service: IntegrityService
) -> None:
    """With Redis: the states of calls analysed by media-node processes, read from
    their streams (server/integrity/remote.py), answer for those calls here too."""
    if service.taps is None or components.redis is None:
        return
    remote = RemoteIntegrity(components.redis, components.sessions, components.hub)
    service.taps.remote = remote

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await remote.start()
        yield
        await remote.stop()

    app.cleanup_ctx.append(lifecycle)


def install_integrity_hooks(
    components: Components, service: IntegrityService, operations: OperationService
) -> None:
    """After the media node and the operations exist: keyframes, risk input, challenges."""
    if service.taps is not None and components.media_host is not None:
        service.taps.request_keyframe = components.media_host.node.request_keyframe
    service.large_amount = float(operations.engine.ruleset.large_amount_cny)
    operations.integrity = service
    components.calls.observers.append(IntegrityObserver(service))
