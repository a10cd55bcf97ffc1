"""``create_app(settings)``: the aiohttp application and everything it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.appkeys import CALLS, COMPONENTS, DISPATCHER, HUB, METRICS, SETTINGS
from server.http import (  # noqa: F401  (importing a routes module registers its routes)
    routes_auth,
    routes_callbacks,
    routes_calls,
    routes_documents,
    routes_integrity,
    routes_operations,
    routes_ops,
    routes_recordings,
    routes_redirects,
    routes_staff,
    routes_wallboard,
)
from server.http.edge import handler_args, install_edge
from server.http.openapi import install_openapi
from server.http.problems import problem_middleware
from server.http.registry import registry
from server.http.routes_web import install_web
from server.hub.ws import install_ws
from server.integrity.wiring import install_integrity, install_integrity_hooks
from server.logging import configure_logging
from server.recordings.wiring import install_recording_hooks, install_recordings
from server.settings import Settings
from server.wiring import build


def create_app(settings: Settings) -> web.Application:
    """Wire the service from ``settings``. Nothing connects until the app starts."""
    configure_logging(settings.effective_log_format, settings.log_level)
    app = web.Application(
        middlewares=[problem_middleware],
        client_max_size=settings.max_body_bytes,
        handler_args=handler_args(settings),
    )
    app[SETTINGS] = settings
    components = build(settings)
    app[COMPONENTS] = components
    app[CALLS] = components.calls
    app[HUB] = components.hub
    app[METRICS] = components.metrics
    app[DISPATCHER] = components.dispatcher
    registry.install(app)
    install_ws(app)
    recordings = install_recordings(app, components)  # the media node's taps, sweeper, API
    integrity = install_integrity(app, components)  # the video analyser, composed into the taps
    components.install_media(app)
    install_recording_hooks(components, recordings)  # notice after media.start; close at end
    operations = components.install_operations(app)
    install_integrity_hooks(components, integrity, operations)  # risk input, liveness
    routes_redirects.install(app, components)  # scenario redirects: ticket desk + resolver
    install_openapi(app)
    install_web(app)  # the desk, supervisor and senior-app pages (server/web/)
    install_edge(app, components)  # staff access checks, throttles, security headers

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await components.start()
        yield
        await components.close()

    app.cleanup_ctx.append(lifecycle)
    # Close client sockets before aiohttp waits for their handlers to return.
    app.on_shutdown.append(lambda _app: components.hub.close())
    return app
