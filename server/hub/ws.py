"""``GET /api/v1/ws``: one socket per client, one reader (this handler), and a writer task
while there is something to send.

Life of a socket: ``hello`` within the hello timeout of the socket's arrival or
close 4401; ``welcome``; then messages until either side closes. aiohttp's
heartbeat pings the client and closes a socket that stops answering, which is how
a desk that lost its network becomes offline for routing; a customer's socket is
pinged less often (``server/hub/heartbeat.py``).

The hello deadline is the client's, not this node's: a hello that reached the
node in time is answered however late a busy node gets round to reading it.
"""

from __future__ import annotations

import asyncio
import json
import select
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import structlog
from aiohttp import WSMessage, WSMsgType, web
from pydantic import ValidationError

from server.appkeys import HUB, METRICS, SETTINGS
from server.auth.principal import Principal, Role
from server.auth.staff import STAFF_ACCESS
from server.auth.tokens import verify_token
from server.errors import CloudBranchError
from server.failures import dependency_failure

from .budget import CLOSE_RATE_LIMITED, MessageBudget
from .connection import CLOSE_REPLACED, CLOSE_UNAUTHORIZED, ClientConnection
from .heartbeat import check_heartbeat_internals, retune_heartbeat
from .messages import Hello, error

log = structlog.get_logger(__name__)

MessageHandler = Callable[[ClientConnection, dict[str, Any]], Awaitable[None]]
ConnectHook = Callable[[ClientConnection], Awaitable[list[dict[str, Any]]]]
DisconnectHook = Callable[[ClientConnection], Awaitable[None]]


@dataclass(frozen=True)
class SocketRoutes:
    """What a socket does, fixed when the application is built (``server/app.py``).

    ``handlers``: message ``type`` -> its handler (read-only). ``connect_hooks``, in
    order: what each returns is replayed to a new socket after ``welcome``.
    ``disconnect_hooks``, in order: run when a socket ends, each whatever the
    others do. ``stops``: what the hooks started, stopped when the node shuts down.
    """

    handlers: Mapping[str, MessageHandler]
    connect_hooks: tuple[ConnectHook, ...]
    disconnect_hooks: tuple[DisconnectHook, ...]
    stops: tuple[Callable[[], Awaitable[None]], ...] = ()

    @classmethod
    def of(
        cls,
        handlers: Iterable[tuple[str, MessageHandler]],
        connect_hooks: Iterable[ConnectHook] = (),
        disconnect_hooks: Iterable[DisconnectHook] = (),
        stops: Iterable[Callable[[], Awaitable[None]]] = (),
    ) -> SocketRoutes:
        """Routes from (type, handler) pairs; a type given twice is a wiring error."""
        table: dict[str, MessageHandler] = {}
        for kind, handler in handlers:
            if kind in table or kind in _BUILT_IN:
                raise ValueError(f"socket message type {kind!r} has two handlers")
            table[kind] = handler
        return cls(
            MappingProxyType(table), tuple(connect_hooks), tuple(disconnect_hooks), tuple(stops)
        )


# Answered by the socket itself, never by a route.
_BUILT_IN = frozenset({"hello", "ping"})
# What ends the read loop (as ``async for`` over the socket would, and errors).
_SOCKET_ENDS = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})
# How long the server's close waits for the client's reply before dropping the
# connection (a phone in a tunnel does not hold a drain up for aiohttp's 10 s).
_CLOSE_REPLY_S = 2.0


def socket_endpoint(routes: SocketRoutes) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The ``GET /api/v1/ws`` handler for ``routes``."""
    check_heartbeat_internals()  # a changed aiohttp stops the build, not every customer's socket

    async def websocket(request: web.Request) -> web.StreamResponse:
        return await _serve(request, routes)

    return websocket


async def _serve(request: web.Request, routes: SocketRoutes) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    # The socket's arrival: this handler starts as soon as its upgrade is parsed.
    deadline = asyncio.get_running_loop().time() + settings.ws_hello_timeout_s
    ws = web.WebSocketResponse(
        timeout=_CLOSE_REPLY_S,
        heartbeat=settings.ws_heartbeat_s,
        max_msg_size=settings.ws_max_message_bytes,
        receive_timeout=None,
    )
    await ws.prepare(request)
    principal = await _await_hello(ws, request, deadline)
    if principal is None:
        return ws
    if principal.role is Role.CUSTOMER:
        retune_heartbeat(ws, settings.ws_customer_heartbeat_s)
    hub = request.app[HUB]
    connection = ClientConnection(ws, principal, settings.ws_send_queue, settings.node_id)
    displaced = hub.add(connection)
    gauge = request.app[METRICS].ws_clients.labels(principal.role.value)
    gauge.inc()
    try:
        connection.send(
            {"type": "welcome", "role": principal.role.value, "subject": principal.subject}
        )
        for message in await _replay_or_error(routes, connection):
            # The replay was read while the socket was already registered: a
            # withdrawal sent meanwhile is queued, and its offer must not follow.
            if hub.is_current(message):
                connection.send(message)
        for older in displaced:
            older.close_soon(CLOSE_REPLACED, "replaced by a newer connection")
        del displaced  # not held for the socket's life
        # Only now does the client get ``welcome``: by then this socket has taken
        # over (media session claimed, older sockets displaced), so nothing the
        # client does on welcome can race with that.
        connection.start()
        await _read_loop(request, routes, connection)
    finally:
        hub.discard(connection)
        gauge.dec()
        await connection.stop()
        if not ws.closed:
            await ws.close()
        for hook in routes.disconnect_hooks:
            await _guarded_close_step(hook(connection))
        log.info("ws.closed", role=principal.role.value, code=ws.close_code)
    return ws


async def _await_hello(
    ws: web.WebSocketResponse, request: web.Request, deadline: float
) -> Principal | None:
    settings = request.app[SETTINGS]
    msg = await first_message(ws, request, deadline, settings.ws_hello_timeout_s)
    if msg is None or msg.type is not WSMsgType.TEXT:
        if not ws.closed:
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"hello expected")
        return None
    try:
        hello = Hello.model_validate_json(msg.data)
        principal = verify_token(settings, hello.token)
        # Staff: account active and session live, before anything is welcomed.
        await request.app[STAFF_ACCESS].check(principal)
        return principal
    except (ValidationError, CloudBranchError) as exc:
        detail = exc.detail if isinstance(exc, CloudBranchError) else "first message must be hello"
        await ws.send_json(error("unauthorized", detail))
        await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
        return None


async def first_message(
    ws: web.WebSocketResponse, request: web.Request, deadline: float, late_allowance_s: float
) -> WSMessage | None:
    """The client's first message if it reached this node by ``deadline`` (loop time).

    A node under load may get round to a socket after its deadline: what had
    arrived by then (read by aiohttp, or still in the kernel's buffer) is read and
    answered, within ``late_allowance_s`` more, rather than the socket closed.
    None: nothing came in time.
    """
    loop = asyncio.get_running_loop()
    receiving = asyncio.ensure_future(ws.receive())
    try:
        await asyncio.wait((receiving,), timeout=max(0.0, deadline - loop.time()))
        if not receiving.done() and _bytes_waiting(request):
            await asyncio.wait((receiving,), timeout=late_allowance_s)
        return receiving.result() if receiving.done() else None
    finally:
        if not receiving.done():
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)


def _bytes_waiting(request: web.Request) -> bool:
    """Whether the client's bytes wait in the kernel, not yet read by this node."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()  # not select.select: descriptors past 1024 under a storm
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


async def _replay_or_error(
    routes: SocketRoutes, connection: ClientConnection
) -> list[dict[str, Any]]:
    """What to replay to a new socket; if Redis or the database is down, an
    ``error`` instead, and the socket stays open (a desk's next heartbeat logs it
    in to routing once the dependency is back)."""
    try:
        return await _on_connect(routes, connection)
    except Exception as exc:
        unavailable = dependency_failure(exc)
        if unavailable is None:
            raise
        log.warning("ws.connect_degraded", error=type(exc).__name__)
        return [error(unavailable.code, unavailable.detail)]


async def _guarded_close_step(step: Awaitable[None]) -> None:
    """A socket's clean-up steps run whatever fails; the repair pass and the
    presence TTL put right what a failing dependency left undone."""
    try:
        await asyncio.shield(step)
    except Exception as exc:
        if dependency_failure(exc) is None:
            log.exception("ws.close_step_failed")
        else:
            log.warning("ws.close_step_deferred", error=type(exc).__name__)


async def _on_connect(routes: SocketRoutes, connection: ClientConnection) -> list[dict[str, Any]]:
    replay: list[dict[str, Any]] = []
    for hook in routes.connect_hooks:
        replay += await hook(connection)
    return replay


async def _read_loop(
    request: web.Request, routes: SocketRoutes, connection: ClientConnection
) -> None:
    handlers = routes.handlers
    # Made at the first message: most sockets (customers waiting) never send one.
    budget: MessageBudget | None = None
    # This task reads the socket and also makes the server's close of it (see
    # ClientConnection.receive), so that the closing handshake completes.
    connection.attach_reader()
    try:
        while (msg := await connection.receive()) is not None:
            if msg.type is WSMsgType.TEXT:
                if budget is None:
                    budget = MessageBudget.from_settings(request.app[SETTINGS])
                await _handle_text(handlers, connection, msg.data, budget)
            elif msg.type is WSMsgType.BINARY:
                connection.send(error("unsupported", "binary messages are not accepted"))
            elif msg.type in _SOCKET_ENDS:
                break
    finally:
        await connection.close_as_asked()


async def _handle_text(
    handlers: Mapping[str, MessageHandler],
    connection: ClientConnection,
    text: str,
    budget: MessageBudget | None = None,
) -> None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # Not only JSONDecodeError: numbers past Python's 4300-digit limit raise a
        # plain ValueError, and very deep nesting a RecursionError. Either would
        # otherwise escape the read loop and drop the client's socket.
        if not _over_budget(connection, budget, "malformed"):
            connection.send(error("malformed_json", "message is not valid JSON"))
        return
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        if not _over_budget(connection, budget, "malformed"):
            connection.send(error("malformed_message", "message must be an object with a type"))
        return
    kind = data["type"]
    if _over_budget(connection, budget, kind):
        return
    if kind == "ping":
        connection.send({"type": "pong"})
        return
    if kind == "hello":
        connection.send(error("already_welcomed", "hello was already accepted"))
        return
    handler = handlers.get(kind)
    if handler is None:
        connection.send(error("unknown_type", f"unknown message type {kind[:40]!r}"))
        return
    try:
        await handler(connection, data)
    except ValidationError as exc:
        connection.send(error("invalid_message", exc.errors(include_url=False)[0]["msg"]))
    except CloudBranchError as exc:
        connection.send(error(exc.code, exc.detail))
    except Exception as exc:
        unavailable = dependency_failure(exc)
        if unavailable is not None:
            log.warning("ws.dependency_unavailable", type=kind, error=type(exc).__name__)
            connection.send(error(unavailable.code, unavailable.detail))
            return
        log.exception("ws.handler_crashed", type=kind)
        connection.send(error("internal_error", "something went wrong on our side"))


def _over_budget(connection: ClientConnection, budget: MessageBudget | None, kind: str) -> bool:
    """Past its budget, a client gets one ``rate_limited`` error and then a close (4429)."""
    over = budget.admit(kind, asyncio.get_running_loop().time()) if budget else None
    if over is None:
        return False
    connection.send(error("rate_limited", over))
    connection.close_soon(CLOSE_RATE_LIMITED, "message budget exceeded")
    return True
