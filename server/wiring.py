"""Builds the concrete parts from settings: the one place clients are created.

Shutdown order (reverse of start-up, documented because it matters): stop the
dispatcher so no new offers go out, close client sockets, close the queue backend
and Redis, then dispose of the database engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import risk
from server.appkeys import OPERATIONS
from server.auth.principal import Role
from server.callbacks.wiring import install_callbacks
from server.calls.clock import SharedClock, redis_time
from server.calls.dispatcher import Dispatcher
from server.calls.repository import get_call
from server.calls.service import CallService
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call
from server.errors import ValidationFailed
from server.hub.bus import LocalBus, MessageBus, RedisBus
from server.hub.connection import ClientConnection
from server.hub.hub import Hub
from server.hub.ws import CONNECT_HOOKS, DISCONNECT_HOOKS, WS_HANDLERS
from server.media.coordinator import MediaCoordinator
from server.media.directory import LocalDirectory, MediaDirectory, RedisDirectory
from server.media.janus.factory import media_node_factory
from server.media.nodes import MediaRelay, NodeHost
from server.media.store import MediaStore
from server.metrics import Metrics
from server.operations.observer import OperationsObserver
from server.operations.pending import calls_with_pending_operations
from server.operations.service import OperationService
from server.outbox.events import ConversationEnded, Event
from server.outbox.relay import Handler, Outbox
from server.recordings.service import RecordingService
from server.routing.backend import QueueBackend
from server.routing.memory import MemoryQueueBackend
from server.settings import Settings
from signaling.ice import ice_servers_for_call
from signaling.media.tap import MediaTapFactory
from signaling.messages import CLIENT_MEDIA_MESSAGE_TYPES

log = structlog.get_logger(__name__)

_SHUTDOWN_STEP_S = 10.0


@dataclass
class Components:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis | None
    backend: QueueBackend
    hub: Hub
    metrics: Metrics
    calls: CallService
    dispatcher: Dispatcher
    closed: bool = field(default=False)
    media_host: NodeHost | None = field(default=None)
    # What the embedded media node hands each forwarded frame to: the compliance
    # recorder (server/recordings/wiring.py: install_recordings sets it); None:
    # nothing is kept (NullTap).
    media_taps: MediaTapFactory | None = field(default=None)
    # Set on SIGTERM (server/drain.py): readiness fails, no new calls or offers.
    draining: bool = field(default=False)
    # Domain events written with the change and delivered after it (server/outbox);
    # the services below are kept for its handlers (outbox_handlers).
    outbox: Outbox | None = field(default=None)
    media_coordinator: MediaCoordinator | None = field(default=None)
    operations: OperationService | None = field(default=None)
    recordings: RecordingService | None = field(default=None)

    def ice_servers(self, call_id: str) -> list[dict[str, Any]]:
        """ICE servers for a call's peers; empty when none are configured."""
        s = self.settings
        servers = ice_servers_for_call(
            stun_urls=s.stun_urls,
            turn_urls=s.turn_urls,
            turn_secret=s.turn_secret.get_secret_value() if s.turn_secret else None,
            ttl_s=s.turn_ttl_s,
            call_id=call_id,
            now=time.time(),
        )
        return [server.model_dump(exclude_none=True) for server in servers]

    def install_media(self, app: web.Application) -> None:
        """Media set-up and signaling relay: WebSocket handlers and call hooks."""
        coordinator = MediaCoordinator(
            self.calls,
            MediaStore(self.sessions, self.settings.media_grace_s),
            self.ice_servers,
            media=self.media_relay(self.media_taps),
        )
        self.calls.observers.append(coordinator)
        self.media_coordinator = coordinator
        self.dispatcher.sweepers.append(coordinator.sweep)
        for kind in CLIENT_MEDIA_MESSAGE_TYPES:
            app[WS_HANDLERS][kind] = coordinator.handle
        app[CONNECT_HOOKS].append(coordinator.connected)
        app[DISCONNECT_HOOKS].append(coordinator.disconnected)
        install_callbacks(self, app)  # callbacks: sweeper, queue.update hook, socket replay

    def media_relay(self, taps: MediaTapFactory | None = None) -> MediaRelay | None:
        """Relay mode: the media directory and, when embedded, this process's media
        node (``taps`` records what it forwards); ``None`` in direct mode."""
        s = self.settings
        if s.media_mode != "relay":
            return None
        directory: MediaDirectory = (
            RedisDirectory(self.redis, s.media_node_ttl_s)
            if self.redis is not None
            else LocalDirectory(s.media_node_ttl_s)
        )
        if s.media_embedded_node:
            hub = self.hub

            async def deliver(role: str, subject: str, message: dict[str, Any]) -> None:
                await hub.send(Role(role), subject, message)

            self.media_host = NodeHost(
                f"{s.node_id}-media",
                directory=directory,
                deliver=deliver,
                ice_servers=self.ice_servers,
                taps=taps,
                capacity=s.media_node_capacity,
                heartbeat_s=s.media_node_heartbeat_s,
                redis=self.redis,
                node_factory=media_node_factory(s),
            )
        return MediaRelay(directory, self.media_host, self.redis)

    def install_operations(self, app: web.Application) -> OperationService:
        """In-call operations: the risk engine, the ledger, their routes and hooks."""
        from server.banking.documents import DOCUMENTS, DocumentStore
        from server.banking.ledger import SqlLedger

        engine = risk.RiskEngine(
            risk.load_ruleset(self.settings.risk_ruleset_path)
            if self.settings.risk_ruleset_path
            else None
        )
        if self.settings.risk_shadow_ruleset_path:
            engine.set_shadow(risk.load_ruleset(self.settings.risk_shadow_ruleset_path))
        # Certificates and statements produced in calls (server/http/routes_documents.py).
        documents = DocumentStore(self.settings.documents_dir)
        app[DOCUMENTS] = documents
        operations = OperationService(
            self.settings,
            self.sessions,
            self.hub,
            engine,
            core=SqlLedger(tz=ZoneInfo(self.settings.branch_timezone), documents=documents),
        )
        self.calls.observers.append(OperationsObserver(operations))
        self.operations = operations
        app[OPERATIONS] = operations

        async def warning_shown(connection: ClientConnection, data: dict[str, Any]) -> None:
            operation_id = data.get("operation_id")
            if not isinstance(operation_id, str) or not 0 < len(operation_id) <= 64:
                raise ValidationFailed("operation_id: required", code="invalid_message")
            await operations.warning_shown(connection.principal, operation_id)

        app[WS_HANDLERS]["risk.warning_shown"] = warning_shown
        return operations

    # -- the outbox's handlers: who reacts to each event, in delivery order ----------
    def outbox_handlers(self) -> list[Handler]:
        """Every handler of the outbox's events, in one list. Each is idempotent
        (it may run twice after a crash) and isolated (see server/outbox/relay.py).

        conversation_ended: pending operations are closed first (money moves only
        inside a live call), then the media session, then the recording's tap.
        """
        ended = frozenset({ConversationEnded.kind})
        handlers: list[Handler] = []
        if self.operations is not None:
            handlers.append(
                Handler(
                    "operations.close_pending", ended, self._with_call(self.operations.call_ended)
                )
            )
        if self.media_coordinator is not None:
            handlers.append(
                Handler(
                    "media.close_session",
                    ended,
                    self._with_call(self.media_coordinator.conversation_ended),
                )
            )
        if self.recordings is not None:
            recordings = self.recordings

            async def close_recording(event: Event) -> None:
                if event.call_id is not None:
                    await recordings.close_call(event.call_id)

            handlers.append(Handler("recording.close", ended, close_recording))
        return handlers

    def _with_call(
        self, react: Callable[[Call], Awaitable[None]]
    ) -> Callable[[Event], Awaitable[None]]:
        """A handler that hands ``react`` the event's call, as read now."""
        sessions = self.sessions

        async def handle(event: Event) -> None:
            if event.call_id is None:
                return
            async with sessions() as session:
                call = await get_call(session, event.call_id)
            if call is not None:
                await react(call)

        return handle

    async def start(self) -> None:
        await self.hub.start()
        if self.media_host is not None:
            await self.media_host.start()
        if self.outbox is not None:
            # Also delivers what a previous run committed but did not deliver.
            self.outbox.start(self.outbox_handlers())
        await self.calls.refresh_handle_time()
        rebuilt = await self.calls.rebuild_queue()
        log.info("node.started", node_id=self.settings.node_id, requeued=rebuilt)
        self.dispatcher.start()

    async def close(self) -> None:
        """Stop everything in order; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("dispatcher", self.dispatcher.stop),
            *([("outbox relay", self.outbox.stop)] if self.outbox is not None else []),
            *([("media node", self.media_host.close)] if self.media_host is not None else []),
            ("hub", self.hub.close),
            ("queue backend", self.backend.close),
        ]
        if self.redis is not None:
            steps.append(("redis", self.redis.aclose))
        steps.append(("database", self.engine.dispose))
        for name, step in steps:
            # A stuck step must not keep the process from exiting: each has a bound.
            try:
                async with asyncio.timeout(_SHUTDOWN_STEP_S):
                    await step()
            except TimeoutError:
                log.error("node.shutdown_step_overran", step=name, seconds=_SHUTDOWN_STEP_S)


def _redis_client(url: str) -> Redis:
    """Every round trip bounded; a dropped connection retried a few times with
    redis-py's own backoff (a Redis restart is then one short pause, and past
    the retries the caller gets a ConnectionError, answered 503)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def build(settings: Settings) -> Components:
    engine = make_engine(
        settings.database_url,
        statement_timeout_s=settings.db_statement_timeout_s,
        lock_timeout_s=settings.db_lock_timeout_s,
        pool_timeout_s=settings.db_pool_timeout_s,
    )
    sessions = make_sessionmaker(engine)
    policy = settings.routing_policy()
    redis: Redis | None = None
    backend: QueueBackend
    bus: MessageBus
    if settings.redis_url:
        from server.routing.redis_backend import RedisQueueBackend

        redis = _redis_client(settings.redis_url)
        backend = RedisQueueBackend(redis, policy)
        bus = RedisBus(redis, settings.node_id)
    else:
        backend = MemoryQueueBackend(policy)
        bus = LocalBus()
    hub = Hub(bus)
    metrics = Metrics()
    # Routing times come from Redis's clock, so skew between nodes does not matter.
    clock = SharedClock(redis_time(redis) if redis is not None else None)
    outbox = Outbox(sessions, settings.node_id)
    calls = CallService(settings, sessions, backend, hub, metrics, clock=clock, outbox=outbox)
    return Components(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        backend=backend,
        hub=hub,
        metrics=metrics,
        calls=calls,
        dispatcher=Dispatcher(calls, calls_with_pending_operations),
        outbox=outbox,
    )
