"""Puts compliance recording into the application: one call from ``create_app``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from server.db.models import Call

from .service import RecordingService, recording_applies

if TYPE_CHECKING:
    from server.wiring import Components

RECORDINGS: web.AppKey[RecordingService] = web.AppKey("recordings")


class RecordingObserver:
    """Call lifecycle: the recording notice at media start; the tap closes with the call."""

    def __init__(self, service: RecordingService, components: Components) -> None:
        self.service = service
        self.components = components

    async def call_accepted(self, call: Call) -> None:
        if recording_applies(self.service.settings):
            from .hooks import send_notice

            await send_notice(self.components.hub, self.service.sessions, call, time.time())

    async def call_active(self, call: Call) -> None:
        return None

    async def conversation_ended(self, call: Call) -> None:
        # Also the outbox handler "recording.close" (server/wiring.py), which is
        # what runs when a conversation ends; this serves the live-state repair.
        await self.service.close_call(call.call_id)


def install_recordings(app: web.Application, components: Components) -> RecordingService:
    """Build the recorder (the media node's ``MediaTapFactory``) and its routes' state.

    Runs before ``install_media``: the embedded media node opens each call's tap
    from ``components.media_taps``. The call hooks come later, from
    :func:`install_recording_hooks`.
    """
    service = RecordingService(components.settings, components.sessions)
    components.media_taps = service
    components.recordings = service  # its tap closes at the call's end (an outbox handler)
    app[RECORDINGS] = service

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(_recordings_interrupted_by_shutdown(service))
    return service


def _recordings_interrupted_by_shutdown(
    service: RecordingService,
) -> Callable[[web.Application], Awaitable[None]]:
    """On shutdown, before any cleanup: the embedded media node closes its calls' taps
    (cleanup runs in reverse order, the node's first), and they must close as
    interrupted, not complete: the calls were still going."""

    async def on_shutdown(_app: web.Application) -> None:
        service.node_stopping()

    return on_shutdown


def install_recording_hooks(components: Components, service: RecordingService) -> None:
    """The notice at media start and the tap's close at the call's end.

    Runs after ``install_media``, so the notice follows ``media.start``.
    """
    components.calls.observers.append(RecordingObserver(service, components))
    if components.media_host is not None:
        # Video segments end at a keyframe; the embedded node asks the sender for one.
        service.request_keyframe = components.media_host.node.request_keyframe
