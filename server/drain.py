"""Serving until SIGTERM, then draining: how a node leaves without losing anything.

On the first SIGTERM (or SIGINT) the node:

1. stops taking work: ``/readyz`` answers 503 (the load balancer stops sending
   traffic), new calls are refused ``503 service_unavailable`` with
   ``Retry-After`` (the app retries, and lands on another node), and this
   node's dispatcher makes no more offers;
2. withdraws its desks from routing, which hands their pending offers back to
   the queue at once, so other nodes' desks are offered those calls now rather
   than when the leases run out (a withdrawal is not a miss);
3. closes every client socket with close code 1012 "service restart": clients
   reconnect (through the load balancer, to another node) and resume, as
   ``docs/clients.md`` describes; calls in conversation survive through the
   media grace window;
4. shuts down as usual (in-flight requests finish, then every component stops).

The whole drain is bounded by ``drain_timeout_s`` (default 30 s); past the
bound, or on a second SIGTERM, the process exits at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import structlog
from aiohttp import web

from server.appkeys import COMPONENTS
from server.auth.principal import Role
from server.collector import freeze_start_up
from server.hub.connection import CLOSE_SERVICE_RESTART

log = structlog.get_logger(__name__)

# Exit status of a forced exit (bound passed or second signal): not a clean stop.
FORCED_EXIT_STATUS = 70


async def drain(app: web.Application) -> None:
    """Steps 1 to 3 above; safe to call twice."""
    components = app[COMPONENTS]
    if components.state.draining:
        return
    components.state.draining = True
    components.calls.draining = True
    components.dispatcher.paused = True
    hub, calls = components.hub, components.calls
    desks = hub.local_connections(Role.SPECIALIST)
    log.info("node.draining", node_id=components.settings.node_id, desks=len(desks))
    for subject, connection in desks:
        try:
            await calls.desk_disconnected(subject, connection)
        except Exception as exc:
            # Redis or SQL down: the offer's lease and the repair pass put it right.
            log.warning("node.drain_withdraw_failed", error=type(exc).__name__)
    await hub.close_clients(CLOSE_SERVICE_RESTART, "service restart")


async def serve(app: web.Application, host: str, port: int, drain_timeout_s: float) -> int:
    """Run ``app`` until a signal; drain within the bound; the exit status."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    # Every component has started: what start-up built lives as long as the process.
    log.info("node.start_up_frozen", objects=freeze_start_up())
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"======== Running on http://{host}:{port} ========", file=sys.stderr)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("node.forced_exit", reason="second signal")
            os._exit(FORCED_EXIT_STATUS)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    began = loop.time()
    try:
        async with asyncio.timeout(drain_timeout_s):
            await drain(app)
            log.info("node.drained", seconds=round(loop.time() - began, 2))
            await runner.cleanup()
    except TimeoutError:
        log.error("node.forced_exit", reason="drain bound", seconds=drain_timeout_s)
        os._exit(FORCED_EXIT_STATUS)
    log.info("node.stopped", seconds=round(loop.time() - began, 2))
    return 0
