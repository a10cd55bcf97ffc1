"""``build(settings) -> Container``: every client and service, made once, here.

The one wiring module. Every collaborator (event handlers, sweepers, hooks, the
ticket resolver, the clock) is passed to a constructor; nothing is attached to a
service afterwards, and nothing is kept at module level. The order below is the
order of construction; each step needs only what the steps before it made:

1. the database engine, Redis, the queue backend and the message bus; the hub
   (the notifier), the metrics and the shared clock;
2. the redirects' ticket desk (its ``redeem`` is the call service's resolver);
3. the recorder, then the video analyser composed with it (the media node's taps;
   both ask the node for keyframes through one :class:`KeyframeLine`), and with
   Redis the reader of what media-node processes analyse;
4. the risk engine, the ledger and the operations service (told of video integrity;
   it writes its record-only events with an :class:`OutboxWriter`);
5. the embedded media node, if any (it connects itself to the keyframe line), and
   the media lifecycle (a call's media start and close: outbox handlers);
6. the outbox, with its handlers in delivery order (:func:`outbox_handlers`), then
   the media coordinator, which writes ``CallActive`` to it (it holds no call
   service);
7. the call service, with the outbox, ticket resolver and ``queue.update`` hook;
8. the callback service and the dispatcher with its sweepers;
9. the staff access checks, throttles and login guard of the HTTP edge.

``server/app.py`` turns the container into the aiohttp application, and holds
the start-up and shutdown order.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import risk
from server.auth.login import LoginGuard
from server.auth.principal import Role
from server.auth.staff import StaffAccess, StaffSocketWatch
from server.auth.throttle import Throttle, login_throttle, make_storage
from server.banking.documents import DocumentStore
from server.banking.ledger import SqlLedger
from server.callbacks.offers import CallbackOffers
from server.callbacks.policy import CallbackPolicy
from server.callbacks.service import CallbackService
from server.calls.clock import SharedClock, redis_time
from server.calls.dispatcher import Dispatcher
from server.calls.service import CallService
from server.calls.state import IN_CONVERSATION, CallState
from server.collector import CollectorWatch
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call
from server.hub.bus import LocalBus, MessageBus, RedisBus
from server.hub.hub import Hub
from server.integrity.remote import RemoteIntegrity
from server.integrity.service import IntegrityService, integrity_applies
from server.media.coordinator import MediaCoordinator
from server.media.directory import LocalDirectory, MediaDirectory, RedisDirectory
from server.media.janus.factory import media_node_factory
from server.media.keyframes import KeyframeLine
from server.media.lifecycle import MediaLifecycle
from server.media.nodes import MediaRelay, NodeHost
from server.media.store import MediaStore
from server.metrics import Metrics
from server.operations.pending import calls_with_pending_operations
from server.operations.service import OperationService
from server.outbox.events import (
    RECORD_ONLY,
    CallAccepted,
    CallActive,
    ConversationEnded,
    Event,
)
from server.outbox.relay import Handler, Outbox, OutboxWriter
from server.reactions import recording_notice, redirect_transfer, with_call
from server.recordings.service import RecordingService
from server.redirects.desk import TicketDesk
from server.routing.backend import QueueBackend
from server.routing.memory import MemoryQueueBackend
from server.settings import Settings
from signaling.ice import ice_servers_for_call
from signaling.media.tap import MediaTapFactory


@dataclass
class NodeState:
    """What changes while the node runs (flags, not collaborators)."""

    # Set on SIGTERM (server/drain.py): readiness fails, no new calls or offers.
    draining: bool = False
    # Set once shutdown has begun (server/app.py): a second close does nothing.
    closed: bool = False


@dataclass(frozen=True)
class Container:
    """Every client and service of one node, as :func:`build` made them."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis | None
    backend: QueueBackend
    bus: MessageBus
    hub: Hub
    metrics: Metrics
    # Times this process's garbage collections into the metrics while the app runs.
    collector_watch: CollectorWatch
    clock: SharedClock
    desk: TicketDesk
    recordings: RecordingService
    integrity: IntegrityService
    # The states of calls analysed by media-node processes (with Redis; else None).
    remote_integrity: RemoteIntegrity | None
    risk_engine: risk.RiskEngine
    documents: DocumentStore
    operations: OperationService
    # The embedded media node (relay mode with CLOUDBRANCH_MEDIA_EMBEDDED_NODE); None
    # otherwise, including with separate media-node processes.
    media_host: NodeHost | None
    media_coordinator: MediaCoordinator
    # A call's media start and close (outbox handlers).
    media_lifecycle: MediaLifecycle
    # Domain events written with the change and delivered after it (server/outbox).
    outbox: Outbox
    calls: CallService
    callbacks: CallbackService
    # The callback option on queue.update: the call service's hook and the greeting's.
    callback_offers: CallbackOffers
    dispatcher: Dispatcher
    staff_access: StaffAccess
    staff_socket_watch: StaffSocketWatch
    throttle: Throttle
    login_guard: LoginGuard
    state: NodeState = field(default_factory=NodeState)

    @property
    def draining(self) -> bool:
        return self.state.draining

    @property
    def outbox_handlers(self) -> tuple[Handler, ...]:
        """The outbox's handlers, in delivery order (see :func:`outbox_handlers`)."""
        return self.outbox.handlers

    def ice_servers(self, call_id: str) -> list[dict[str, Any]]:
        """ICE servers for a call's peers; empty when none are configured."""
        return ice_servers_of(self.settings, call_id)


def ice_servers_of(settings: Settings, call_id: str) -> list[dict[str, Any]]:
    """ICE servers for a call's peers; empty when none are configured."""
    s = settings
    servers = ice_servers_for_call(
        stun_urls=s.stun_urls,
        turn_urls=s.turn_urls,
        turn_secret=s.turn_secret.get_secret_value() if s.turn_secret else None,
        ttl_s=s.turn_ttl_s,
        call_id=call_id,
        now=time.time(),
    )
    return [server.model_dump(exclude_none=True) for server in servers]


def callback_policy(settings: Settings) -> CallbackPolicy:
    """The callback rules from settings."""
    return CallbackPolicy.build(
        threshold_s=settings.callback_threshold_s,
        hours=settings.callback_hours,
        timezone=settings.callback_timezone,
        max_attempts_per_day=settings.callback_max_attempts_per_day,
        ring_s=settings.callback_ring_s,
        retry_after_s=settings.callback_retry_after_s,
        max_days=settings.callback_max_days,
    )


def risk_engine(settings: Settings) -> risk.RiskEngine:
    """The risk engine with the configured ruleset (and shadow ruleset, if any)."""
    engine = risk.RiskEngine(
        risk.load_ruleset(settings.risk_ruleset_path) if settings.risk_ruleset_path else None
    )
    if settings.risk_shadow_ruleset_path:
        engine.set_shadow(risk.load_ruleset(settings.risk_shadow_ruleset_path))
    return engine


# A node's Redis connections: a storm of requests waits for one of these (at most
# _REDIS_POOL_WAIT_S, then 503) rather than opening a connection each, which at a
# few thousand would run the node out of file descriptors. Two are held by the
# message bus's and the media control channel's subscriptions.
_REDIS_MAX_CONNECTIONS = 64
_REDIS_POOL_WAIT_S = 5.0


def redis_client(url: str) -> Redis:
    """Every round trip bounded, and the connections too (``_REDIS_MAX_CONNECTIONS``);
    a dropped connection retried a few times with redis-py's own backoff (a Redis
    restart is then one short pause, and past the retries the caller gets a
    ConnectionError, answered 503)."""
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_REDIS_MAX_CONNECTIONS,
        timeout=_REDIS_POOL_WAIT_S,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


def outbox_handlers(
    sessions: async_sessionmaker[AsyncSession],
    hub: Hub,
    clock: SharedClock,
    operations: OperationService,
    integrity: IntegrityService,
    media: MediaLifecycle,
    recordings: RecordingService,
) -> list[Handler]:
    """Every handler of the outbox's events, in delivery order (for each event, the
    handlers that take its kind run in this order; each call's events reach a
    handler in the order they were written). Each is idempotent (it may run twice
    after a crash) and isolated: one failing is retried with backoff and never
    keeps the others from their delivery (server/outbox/relay.py).

    call_accepted: media set-up first (a session, a node, ``media.start``), then
    the recording notice (the parties hear it as their media starts).
    call_active: a redirect's attempted transfer becomes a pending operation, then
    integrity's random liveness challenges begin.
    conversation_ended: pending operations are closed first (money moves only
    inside a live call), then the media session, the recording's tap, and
    integrity's state for the call.
    The other kinds are a record only (``RECORD_ONLY``): no handler takes them.
    """
    accepted = frozenset({CallAccepted.kind})
    active = frozenset({CallActive.kind})
    ended = frozenset({ConversationEnded.kind})
    connecting = {CallState.CONNECTING}
    live = {CallState.ACTIVE}

    async def close_recording(event: Event) -> None:
        if event.call_id is not None:
            await recordings.close_call(event.call_id)

    async def forget_integrity(event: Event) -> None:
        if event.call_id is not None:
            await integrity.call_ended(event.call_id)

    async def start_challenges(call: Call) -> None:
        integrity.call_started(call.call_id)

    notice = recording_notice(recordings, hub, sessions, clock)
    return [
        Handler("media.start", accepted, with_call(sessions, media.start, connecting)),
        Handler("recording.notice", accepted, with_call(sessions, notice, IN_CONVERSATION)),
        Handler(
            "operations.redirect_transfer",
            active,
            with_call(sessions, redirect_transfer(operations, sessions), live),
        ),
        Handler("integrity.random_checks", active, with_call(sessions, start_challenges, live)),
        Handler("operations.close_pending", ended, with_call(sessions, operations.call_ended)),
        Handler("media.close_session", ended, with_call(sessions, media.close)),
        Handler("recording.close", ended, close_recording),
        Handler("integrity.forget", ended, forget_integrity),
    ]


def _media_relay(
    settings: Settings,
    redis: Redis | None,
    hub: Hub,
    taps: MediaTapFactory | None,
    keyframes: KeyframeLine,
) -> tuple[MediaRelay | None, NodeHost | None]:
    """Relay mode: the media directory and, when embedded, this process's media node
    (``taps`` get what it forwards); ``(None, None)`` in direct mode."""
    s = settings
    if s.media_mode != "relay":
        return None, None
    directory: MediaDirectory = (
        RedisDirectory(redis, s.media_node_ttl_s)
        if redis is not None
        else LocalDirectory(s.media_node_ttl_s)
    )
    host: NodeHost | None = None
    if s.media_embedded_node:

        async def deliver(role: str, subject: str, message: dict[str, Any]) -> None:
            await hub.send(Role(role), subject, message)

        host = NodeHost(
            f"{s.node_id}-media",
            directory=directory,
            deliver=deliver,
            ice_servers=functools.partial(ice_servers_of, s),
            taps=taps,
            capacity=s.media_node_capacity,
            heartbeat_s=s.media_node_heartbeat_s,
            redis=redis,
            node_factory=media_node_factory(s),
            keyframes=keyframes,
        )
    return MediaRelay(directory, host, redis), host


def build(settings: Settings) -> Container:
    """Every client and service, in the order the module docstring gives.

    Nothing connects here: connections open when the application starts
    (``server/app.py``)."""
    # 1. clients, the notifier and the clock
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

        redis = redis_client(settings.redis_url)
        backend = RedisQueueBackend(redis, policy)
        bus = RedisBus(redis, settings.node_id)
    else:
        backend = MemoryQueueBackend(policy)
        bus = LocalBus()
    hub = Hub(bus)
    metrics = Metrics()
    # Routing times come from Redis's clock, so skew between nodes does not matter.
    clock = SharedClock(redis_time(redis) if redis is not None else None)

    # 2. redirects
    desk = TicketDesk(settings, sessions, clock)

    # 3. the media node's taps: the recorder, the analyser composed with it
    keyframes = KeyframeLine()
    recordings = RecordingService(settings, sessions, request_keyframe=keyframes)
    engine_of_risk = risk_engine(settings)
    # With Redis, the calls that media-node processes analyse are read from their
    # streams (server/integrity/remote.py) and answered for here too.
    remote_integrity = (
        RemoteIntegrity(redis, sessions, hub)
        if redis is not None and integrity_applies(settings)
        else None
    )
    integrity = IntegrityService(
        settings,
        sessions,
        hub,
        large_amount=float(engine_of_risk.ruleset.large_amount_cny),
        recorder=recordings,
        request_keyframe=keyframes,
        remote=remote_integrity,
    )

    # 4. operations: risk engine, ledger, documents
    documents = DocumentStore(settings.documents_dir)
    operations = OperationService(
        settings,
        sessions,
        hub,
        engine_of_risk,
        core=SqlLedger(tz=ZoneInfo(settings.branch_timezone), documents=documents),
        integrity=integrity,
        events=OutboxWriter(settings.node_id, RECORD_ONLY),
    )

    # 5. media: the node, and a call's media start and close (outbox handlers)
    relay, media_host = _media_relay(settings, redis, hub, integrity.tap_factory, keyframes)
    media_store = MediaStore(sessions, settings.media_grace_s)
    ice = functools.partial(ice_servers_of, settings)
    lifecycle = MediaLifecycle(
        media_store, ice, media=relay, sessions=sessions, hub=hub, clock=clock
    )

    # 6. the outbox and its handlers; the coordinator writes CallActive to it
    outbox = Outbox(
        sessions,
        settings.node_id,
        handlers=outbox_handlers(
            sessions, hub, clock, operations, integrity, lifecycle, recordings
        ),
        record_only=RECORD_ONLY,
    )
    coordinator = MediaCoordinator(
        media_store, ice, media=relay, sessions=sessions, hub=hub, clock=clock, outbox=outbox
    )

    # 7. calls (what reacts to their changes: the outbox's handlers)
    callbacks_policy = callback_policy(settings)
    callback_offers = CallbackOffers(sessions, callbacks_policy)
    calls = CallService(
        settings,
        sessions,
        backend,
        hub,
        metrics,
        clock=clock,
        outbox=outbox,
        ticket_resolver=desk.redeem,
        queue_update_hooks=(callback_offers.annotate_queue_updates,),
    )

    # 8. callbacks and the dispatcher. Sweepers, in order: media grace windows,
    # callbacks, and operations whose liveness verdict was lost (decided as not
    # passed, on any node).
    callbacks = CallbackService(calls, callbacks_policy)
    dispatcher = Dispatcher(
        calls,
        calls_with_pending_operations,
        sweepers=(
            functools.partial(coordinator.sweep, end_conversation=calls.end_conversation),
            callbacks.sweep,
            operations.expire_overdue_liveness,
        ),
    )

    # 9. the HTTP edge's staff checks and throttles
    staff_access = StaffAccess(settings, sessions, clock)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        backend=backend,
        bus=bus,
        hub=hub,
        metrics=metrics,
        collector_watch=CollectorWatch(metrics.gc_pauses),
        clock=clock,
        desk=desk,
        recordings=recordings,
        integrity=integrity,
        remote_integrity=remote_integrity,
        risk_engine=engine_of_risk,
        documents=documents,
        operations=operations,
        media_host=media_host,
        media_coordinator=coordinator,
        media_lifecycle=lifecycle,
        outbox=outbox,
        calls=calls,
        callbacks=callbacks,
        callback_offers=callback_offers,
        dispatcher=dispatcher,
        staff_access=staff_access,
        staff_socket_watch=StaffSocketWatch(
            staff_access,
            lambda: list(hub.connections()),
            interval_s=max(settings.staff_check_cache_s, 0.5),
        ),
        throttle=login_throttle(settings, make_storage(settings)),
        login_guard=LoginGuard(settings.login_audit_per_minute),
    )
