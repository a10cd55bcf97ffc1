"""``create_app(settings)``: the container (``server/bootstrap.py``) as an aiohttp app.

It adds the HTTP routes, the socket routes (:class:`~server.hub.ws.SocketRoutes`:
message type -> handler, connect hooks, disconnect hooks, fixed here) and one
``cleanup_ctx`` that runs :func:`lifecycle` in order.

Start-up and shutdown order (:func:`lifecycle`): the steps start top to bottom
and stop bottom to top, each stop bounded, whatever the others do:

==================  ===============================  ==================================
step                start                            stop
==================  ===============================  ==================================
recordings          salvage what a crash left        close open taps, stop the sweeper
integrity           (analysis pool on first call)    stop notices and challenges
staff socket watch  close sockets of disabled staff  stop
database            (connects on first use)          dispose of the engine
redis               (connects on first use)          close
queue backend       --                               close
hub                 subscribe to the bus             close client sockets
media node          register, heartbeats             close calls, deregister
outbox relay        deliver what is pending          stop (the rest stays in the table)
routing state       handle time, queue from SQL      --
dispatcher          offers, leases, sweepers         stop: no new offers
==================  ===============================  ==================================

So on shutdown no new offers go out first, then nothing is delivered, then the
media node and the client sockets close, and the stores close last. Client sockets
are also closed in ``on_shutdown``, before aiohttp waits for their handlers.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from server.appkeys import (
    CALLBACKS,
    CALLS,
    COMPONENTS,
    DISPATCHER,
    HUB,
    INTEGRITY,
    METRICS,
    OPERATIONS,
    RECORDINGS,
    SETTINGS,
)
from server.auth.login import LOGIN_GUARD
from server.auth.principal import Role
from server.auth.staff import STAFF_ACCESS
from server.auth.throttle import THROTTLE
from server.banking.documents import DOCUMENTS
from server.bootstrap import Container, build
from server.calls.sockets import CallSocketHooks
from server.connect.facts import HelloReads
from server.connect.greeting import Greeting
from server.errors import ValidationFailed
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
from server.http.routes_redirects import TICKET_DESK
from server.http.routes_web import install_web
from server.hub.connection import ClientConnection
from server.hub.ws import MessageHandler, SocketRoutes, socket_endpoint
from server.logging import configure_logging
from server.settings import Settings
from signaling.messages import CLIENT_MEDIA_MESSAGE_TYPES

log = structlog.get_logger(__name__)

_SHUTDOWN_STEP_S = 10.0
_SLOW_SHUTDOWN_STEP_S = 1.0


def create_app(settings: Settings) -> web.Application:
    """Wire the service from ``settings``. Nothing connects until the app starts."""
    configure_logging(settings.effective_log_format, settings.log_level)
    return app_of(build(settings))


def app_of(container: Container) -> web.Application:
    """The application serving ``container`` (which it starts and stops)."""
    settings = container.settings
    app = web.Application(
        middlewares=[problem_middleware],
        client_max_size=settings.max_body_bytes,
        handler_args=handler_args(settings),
    )
    _put_services(app, container)
    registry.install(app)
    sockets = socket_routes(container)
    app.router.add_get("/api/v1/ws", socket_endpoint(sockets))
    install_openapi(app)
    install_web(app)  # the desk, supervisor and senior-app pages (server/web/)
    install_edge(app)  # staff access checks, throttles, security headers
    if settings.redirect_secret is None:
        log.info("redirects.not_configured", hint="set CLOUDBRANCH_REDIRECT_SECRET")

    async def run(_app: web.Application) -> AsyncIterator[None]:
        async with lifecycle(container):
            yield

    app.cleanup_ctx.append(run)

    async def shutting_down(_app: web.Application) -> None:
        # The calls still relayed here were still going: their recordings close as
        # interrupted, whoever closes them first (cleanup closes the media node's
        # taps before the recorder stops).
        container.recordings.node_stopping()
        # Close client sockets before aiohttp waits for their handlers to return.
        await container.hub.close()
        for stop in sockets.stops:
            await stop()

    app.on_shutdown.append(shutting_down)
    return app


def _put_services(app: web.Application, c: Container) -> None:
    """What route handlers read from the application (typed keys, set once)."""
    app[SETTINGS] = c.settings
    app[COMPONENTS] = c
    app[CALLS] = c.calls
    app[HUB] = c.hub
    app[METRICS] = c.metrics
    app[DISPATCHER] = c.dispatcher
    app[OPERATIONS] = c.operations
    app[CALLBACKS] = c.callbacks
    app[RECORDINGS] = c.recordings
    app[INTEGRITY] = c.integrity
    app[DOCUMENTS] = c.documents
    app[TICKET_DESK] = c.desk
    app[STAFF_ACCESS] = c.staff_access
    app[THROTTLE] = c.throttle
    app[LOGIN_GUARD] = c.login_guard


def socket_routes(c: Container) -> SocketRoutes:
    """Every socket message type's handler, and the connect and disconnect hooks in
    the order they run."""
    operations = c.operations

    async def warning_shown(connection: ClientConnection, data: dict[str, Any]) -> None:
        operation_id = data.get("operation_id")
        if not isinstance(operation_id, str) or not 0 < len(operation_id) <= 64:
            raise ValidationFailed("operation_id: required", code="invalid_message")
        # The socket edge checks the role, as the HTTP route registry does for routes.
        connection.principal.require(Role.CUSTOMER)
        await operations.warning_shown(connection.principal, operation_id)

    media = c.media_coordinator
    calls = CallSocketHooks(c.calls, c.hub)
    greeting = Greeting(
        reads=HelloReads(c.sessions),
        calls=c.calls,
        desks=calls,
        media=media,
        offers=c.callback_offers,
        positions=c.dispatcher.positions,
        clock=c.clock,
    )
    handlers: list[tuple[str, MessageHandler]] = [
        *((kind, media.handle) for kind in CLIENT_MEDIA_MESSAGE_TYPES),
        ("risk.warning_shown", warning_shown),
    ]
    return SocketRoutes.of(
        handlers,
        # A customer's hello: one read for the call, its media and a ringing
        # callback; a desk logs in to routing, then its media resumes.
        connect_hooks=(greeting.connected,),
        # The desk leaves routing first, then its media party is marked absent.
        disconnect_hooks=(calls.disconnected, media.disconnected),
        stops=(greeting.stop,),
    )


@dataclass(frozen=True)
class Step:
    """One line of the start-up and shutdown table (module docstring)."""

    name: str
    start: Callable[[], Awaitable[None] | None] | None
    stop: Callable[[], Awaitable[None] | None] | None


def lifecycle_steps(c: Container) -> list[Step]:
    """The start-up order; shutdown is the same list backwards."""
    steps = [
        Step("collector watch", c.collector_watch.start, c.collector_watch.stop),
        Step("recordings", c.recordings.start, c.recordings.stop),
        Step("integrity", c.integrity.start, c.integrity.stop),
        Step("staff socket watch", c.staff_socket_watch.start, c.staff_socket_watch.stop),
        Step("database", None, c.engine.dispose),
    ]
    if c.redis is not None:
        steps.append(Step("redis", None, c.redis.aclose))
    if c.remote_integrity is not None:
        # Reads media-node processes' integrity streams; stops before Redis closes.
        steps.append(Step("remote integrity", c.remote_integrity.start, c.remote_integrity.stop))
    steps += [
        Step("queue backend", None, c.backend.close),
        Step("hub", c.hub.start, c.hub.close),
    ]
    if c.media_host is not None:
        steps.append(Step("media node", c.media_host.start, c.media_host.close))

    async def routing_state() -> None:
        await c.calls.refresh_handle_time()
        rebuilt = await c.calls.rebuild_queue()
        log.info("node.started", node_id=c.settings.node_id, requeued=rebuilt)

    steps += [
        # Also delivers what a previous run committed but did not deliver.
        Step("outbox relay", c.outbox.start, c.outbox.stop),
        Step("routing state", routing_state, None),
        Step("dispatcher", c.dispatcher.start, c.dispatcher.stop),
    ]
    return steps


async def _run(step: Callable[[], Awaitable[None] | None]) -> None:
    result = step()
    if inspect.isawaitable(result):
        await result


@asynccontextmanager
async def lifecycle(c: Container) -> AsyncIterator[None]:
    """Start every step in order; on exit (or a failed start) stop the started ones
    backwards, each bounded by ``_SHUTDOWN_STEP_S``; a second exit does nothing."""
    steps = lifecycle_steps(c)
    started: list[Step] = []
    try:
        for step in steps:
            if step.start is not None:
                await _run(step.start)
            started.append(step)
        yield
    finally:
        await close(c, started)


async def close(c: Container, started: list[Step]) -> None:
    """Stop ``started`` backwards; safe to call twice."""
    if c.state.closed:
        return
    c.state.closed = True
    # With node.drained before it, the time between says how long aiohttp waited
    # for request handlers to return.
    log.info("node.stopping_components", steps=len(started))
    for step in reversed(started):
        if step.stop is None:
            continue
        # A stuck step must not keep the process from exiting: each has a bound.
        began = time.monotonic()
        try:
            async with asyncio.timeout(_SHUTDOWN_STEP_S):
                await _run(step.stop)
        except TimeoutError:
            log.error("node.shutdown_step_overran", step=step.name, seconds=_SHUTDOWN_STEP_S)
        except Exception:
            log.exception("node.shutdown_step_failed", step=step.name)
        else:
            took = time.monotonic() - began
            if took >= _SLOW_SHUTDOWN_STEP_S:
                # A drain has a bound for the whole stop: say which step spent it.
                log.warning("node.shutdown_step_slow", step=step.name, seconds=round(took, 2))
