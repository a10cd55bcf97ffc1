"""``cloudbranch media-node``: a media node in its own process, behind the shared Redis.

It registers in Redis (address, capacity, load) and heartbeats every
``CLOUDBRANCH_MEDIA_NODE_HEARTBEAT_S``; servers assign it calls at accept and
send it each call's signaling on its control channel; what it sends the parties
goes out on the hub's bus, which every server delivers to its own sockets. If it
dies, its heartbeat stops, the servers move its calls to another node and
restart media for both parties (``media.restart``).

It records every call it relays exactly as the embedded node does (the same
:class:`~server.recordings.service.RecordingService`: segments, encryption, a
crash's salvage on start), and writes each segment's index and audit-chain entry
straight into the database it is configured with (``CLOUDBRANCH_DATABASE_URL``,
the API nodes' PostgreSQL). Why the database and not the bus: an entry must be
in the index *before* its segment is stored (a crash between the two then
leaves a salvageable spool file, never an unindexed object), the audit chain is
appended under its own lock in one transaction, and Redis pub/sub delivers at
most once, so entries sent over it could be lost or arrive out of order.

It serves ``/healthz`` (the process runs) and ``/readyz`` (Redis and the
database answer, its control channel is subscribed, it is not stopping) on
``CLOUDBRANCH_HOST``:``CLOUDBRANCH_PORT`` for the orchestrator's probes.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any, Literal

import structlog
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.engine import make_engine, make_sessionmaker
from server.errors import ServiceUnavailable
from server.http.problems import problem_middleware
from server.hub.bus import RedisBus
from server.integrity.node import NodeIntegrity
from server.logging import configure_logging
from server.recordings.service import RecordingService
from server.settings import Settings
from signaling.ice import ice_servers_for_call

from .directory import RedisDirectory
from .janus.factory import media_node_factory
from .keyframes import KeyframeLine
from .nodes import DescriptionRefused, NodeHost
from .store import MediaStore

PROBE_TIMEOUT_S = 2.0

log = structlog.get_logger(__name__)


def run(settings: Settings) -> int:
    if not settings.redis_url:
        print("cloudbranch media-node needs CLOUDBRANCH_REDIS_URL", file=sys.stderr)
        return 2
    configure_logging(settings.effective_log_format, settings.log_level)
    asyncio.run(_serve(settings))
    return 0


def _ice_servers(settings: Settings) -> Any:
    def servers(call_id: str) -> list[dict[str, Any]]:
        return [
            server.model_dump(exclude_none=True)
            for server in ice_servers_for_call(
                stun_urls=settings.stun_urls,
                turn_urls=settings.turn_urls,
                turn_secret=(
                    settings.turn_secret.get_secret_value() if settings.turn_secret else None
                ),
                ttl_s=settings.turn_ttl_s,
                call_id=call_id,
                now=time.time(),
            )
        ]

    return servers


async def _serve(settings: Settings) -> None:
    assert settings.redis_url is not None
    redis = Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=15,
    )
    engine = make_engine(
        settings.database_url,
        statement_timeout_s=settings.db_statement_timeout_s,
        lock_timeout_s=settings.db_lock_timeout_s,
        pool_timeout_s=settings.db_pool_timeout_s,
    )
    keyframes = KeyframeLine()  # the node below connects to it
    sessions = make_sessionmaker(engine)
    recordings = RecordingService(settings, sessions, request_keyframe=keyframes)
    # The analysis of its calls' customer video, shared with the servers (server/integrity/node.py).
    integrity = NodeIntegrity(
        settings, redis, sessions, inner=recordings, request_keyframe=keyframes
    )
    node_id = f"{settings.node_id}-media"
    bus = RedisBus(redis, node_id)  # publish only: this process has no client sockets
    host = NodeHost(
        node_id,
        directory=RedisDirectory(redis, settings.media_node_ttl_s),
        deliver=bus.publish,
        ice_servers=_ice_servers(settings),
        taps=integrity.tap_factory,
        capacity=settings.media_node_capacity,
        heartbeat_s=settings.media_node_heartbeat_s,
        address=settings.host,
        redis=redis,
        node_factory=media_node_factory(settings),
        on_call_closed=_closing(recordings, integrity),
        keyframes=keyframes,
        on_description_refused=_uncount_refused(MediaStore(sessions, settings.media_grace_s)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    probes = web.AppRunner(_probe_app(redis, engine, host, stop), handle_signals=False)
    try:
        await recordings.start()  # salvage what a crash of this node left in its spool
        await integrity.start()
        await host.start()
        await probes.setup()
        await web.TCPSite(probes, settings.host, settings.port).start()
        print(f"media node {node_id} ready", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        try:
            async with asyncio.timeout(20):
                # The calls go on on another node: their recordings close as
                # interrupted here, then the node lets go of their media.
                await recordings.stop()
                await host.close()
                await integrity.stop()
        finally:
            await probes.cleanup()
            await redis.aclose()
            await engine.dispose()
        log.info("media.node_stopped", node_id=node_id)


def _closing(recordings: RecordingService, integrity: NodeIntegrity) -> Any:
    """What lets go of a call when its media closes here: its recorder, its analysis."""

    async def closed(call_id: str) -> None:
        try:
            await recordings.close_call(call_id)
        finally:
            integrity.forget(call_id)

    return closed


def _uncount_refused(store: MediaStore) -> DescriptionRefused:
    """What this node refuses, the party's server never sees (the party hears of it
    from here): the node uncounts it in the call's media session itself."""

    async def uncount(call_id: str, kind: Literal["offer", "answer"], generation: int) -> None:
        await store.description_refused(call_id, kind, generation, time.time())

    return uncount


def _probe_app(
    redis: Redis, engine: AsyncEngine, host: NodeHost, stop: asyncio.Event
) -> web.Application:
    """``/healthz`` and ``/readyz`` of a media node process (same shapes as the API's)."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        checks["control"] = "ok" if host.listening else "error: not subscribed"
        if stop.is_set():
            checks["drain"] = "error: stopping"
        if any(v != "ok" for v in checks.values()):
            raise ServiceUnavailable("not ready", extra={"checks": checks})
        return web.json_response({"status": "ready", "checks": checks})

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
