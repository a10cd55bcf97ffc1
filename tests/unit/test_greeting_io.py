"""A customer's hello costs one read, and what cannot apply to it does no I/O.

Counted as connections taken from the engine's pool (every session that runs a
statement takes one), on a node that is built but not started: no dispatcher or
sweeper shares the pool while a hello is counted. The hooks are the application's
own (:func:`server.app.socket_routes`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import event

from server.app import socket_routes
from server.auth.principal import Principal, Role
from server.bootstrap import Container, build
from server.db.models import Call
from server.hub.connection import ClientConnection
from server.hub.ws import SocketRoutes
from server.settings import Settings


@pytest.fixture
async def node(unit_database: str, tmp_path: Path) -> AsyncIterator[Container]:
    settings = Settings(
        dev_mode=True,
        database_url=unit_database,
        log_level="WARNING",
        media_mode="direct",
        recording_spool_dir=str(tmp_path / "spool"),
        documents_dir=str(tmp_path / "documents"),
    )
    c = build(settings)
    try:
        yield c
    finally:
        await c.engine.dispose()


class PoolCount:
    """How many connections the node's engine has handed out."""

    def __init__(self, c: Container) -> None:
        self.taken = 0
        event.listen(c.engine.sync_engine, "checkout", self._checkout)

    def _checkout(self, *_: Any) -> None:
        self.taken += 1


async def add_call(c: Container, customer_id: str, **values: Any) -> str:
    now = datetime.now(tz=UTC)
    row: dict[str, Any] = {
        "call_id": uuid.uuid4().hex,
        "customer_id": customer_id,
        "state": "queued",
        "priority": "normal",
        "callback_allowed": True,
        "context": {},
        "created_at": now,
        "enqueued_at": now,
        **values,
    }
    async with c.sessions() as session:
        session.add(Call(**row))
        await session.commit()
    # Waiting calls go back in the queue as a node's start-up puts them.
    await c.calls.rebuild_queue()
    return str(row["call_id"])


def customer_socket(customer_id: str) -> ClientConnection:
    return ClientConnection(web.WebSocketResponse(), Principal(Role.CUSTOMER, customer_id), 8)


async def hello(routes: SocketRoutes, connection: ClientConnection) -> list[dict[str, Any]]:
    return [m for hook in routes.connect_hooks for m in await hook(connection)]


async def close(routes: SocketRoutes, connection: ClientConnection) -> None:
    for hook in routes.disconnect_hooks:
        await hook(connection)


async def test_a_waiting_customer_hello_is_one_read_and_its_close_none(node: Container) -> None:
    call_id = await add_call(node, "C1001")
    routes = socket_routes(node)
    count = PoolCount(node)
    socket = customer_socket("C1001")

    replay = await hello(routes, socket)
    assert [m["type"] for m in replay] == ["queue.update"]
    assert replay[0]["call_id"] == call_id and replay[0]["position"] == 1
    assert "callback_available" in replay[0]  # decided on the facts read with the call
    assert count.taken == 1

    await close(routes, socket)
    assert count.taken == 1  # a socket that never carried media: no close-time query


async def test_hellos_at_once_share_one_read(node: Container) -> None:
    customers = ["C1001", "C1002", "C1003"]
    for customer_id in customers:
        await add_call(node, customer_id)
    routes = socket_routes(node)
    count = PoolCount(node)

    replays = await asyncio.gather(*(hello(routes, customer_socket(c)) for c in customers))
    assert [[m["type"] for m in r] for r in replays] == [["queue.update"]] * 3
    assert sorted(r[0]["position"] for r in replays) == [1, 2, 3]
    assert count.taken == 1


async def test_a_customer_with_nothing_open_costs_one_read(node: Container) -> None:
    routes = socket_routes(node)
    count = PoolCount(node)
    socket = customer_socket("C1004")
    assert await hello(routes, socket) == []
    await close(routes, socket)
    assert count.taken == 1


async def test_a_failed_call_is_told_once_and_then_costs_no_more_than_the_read(
    node: Container,
) -> None:
    now = datetime.now(tz=UTC)
    call_id = await add_call(
        node,
        "C1005",
        state="ended",
        end_reason="failed",
        specialist_id=None,
        conversation_ended_at=now,
        ended_at=now,
    )
    routes = socket_routes(node)
    count = PoolCount(node)

    first = await hello(routes, customer_socket("C1005"))
    assert [(m["type"], m["call_id"], m["end_reason"]) for m in first] == [
        ("call.ended", call_id, "failed")
    ]
    assert count.taken == 2  # the read, then the notice written to the timeline

    assert await hello(routes, customer_socket("C1005")) == []
    assert count.taken == 3  # the read only: it already says the customer was told


class _Socket:
    """Stands in for aiohttp's socket: records what is written."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_str(self, text: str) -> None:
        await asyncio.sleep(0)
        self.sent.append(text)


def writers() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "ws-writer"]


async def test_an_idle_socket_holds_no_writer_task() -> None:
    ws = _Socket()
    connection = ClientConnection(ws, Principal(Role.CUSTOMER, "C1001"), 8)  # type: ignore[arg-type]
    connection.send({"type": "welcome"})
    assert writers() == []  # nothing is written before start()
    connection.start()
    (writer,) = writers()  # something to write: a writer runs
    await asyncio.wait_for(writer, timeout=5)
    assert ws.sent == ['{"type": "welcome"}']
    assert writers() == []  # idle: no task held
    connection.send({"type": "pong"})
    assert len(writers()) == 1
    await connection.stop()
    assert writers() == []
