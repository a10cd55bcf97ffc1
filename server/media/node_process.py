"""``cloudbranch media-node``: a media node in its own process, behind the shared Redis.

It registers in Redis (address, capacity, load) and heartbeats every
``CLOUDBRANCH_MEDIA_NODE_HEARTBEAT_S``; servers assign it calls at accept and
send it each call's signaling on its control channel; what it sends the parties
goes out on the hub's bus, which every server delivers to its own sockets. It
needs no database. If it dies, its heartbeat stops, the servers move its calls
to another node and restart media for both parties (``media.restart``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import structlog
from redis.asyncio import Redis

from server.hub.bus import RedisBus
from server.logging import configure_logging
from server.settings import Settings
from signaling.ice import ice_servers_for_call

from .directory import RedisDirectory
from .janus.factory import media_node_factory
from .nodes import NodeHost

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
    node_id = f"{settings.node_id}-media"
    bus = RedisBus(redis, node_id)  # publish only: this process has no client sockets
    host = NodeHost(
        node_id,
        directory=RedisDirectory(redis, settings.media_node_ttl_s),
        deliver=bus.publish,
        ice_servers=_ice_servers(settings),
        capacity=settings.media_node_capacity,
        heartbeat_s=settings.media_node_heartbeat_s,
        address=settings.host,
        redis=redis,
        node_factory=media_node_factory(settings),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await host.start()
        print(f"media node {node_id} ready", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        try:
            async with asyncio.timeout(10):
                await host.close()
        finally:
            await redis.aclose()
        log.info("media.node_stopped", node_id=node_id)
