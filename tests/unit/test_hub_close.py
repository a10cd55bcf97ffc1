"""Closing every socket (a drain, a shutdown): queued messages and the close frame
go out first, and a client that does not read does not hold the node up."""

from __future__ import annotations

import asyncio

from server.auth.principal import Principal, Role
from server.hub.connection import ClientConnection
from server.hub.hub import Hub

SERVICE_RESTART = 1012


class _Socket:
    """Stands in for aiohttp's socket: each write takes a turn of the loop (a real
    one waits for the kernel's buffer), and ``stuck`` ones never finish one."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[str] = []
        self.close_code: int | None = None
        self.closed = False

    async def send_str(self, text: str) -> None:
        await asyncio.sleep(3600 if self.stuck else 0.001)
        self.sent.append(text)

    async def close(self, *, code: int, message: bytes) -> bool:
        self.close_code, self.closed = code, True
        return True


def connect(hub: Hub, ws: _Socket, customer_id: str) -> ClientConnection:
    principal = Principal(Role.CUSTOMER, customer_id)
    connection = ClientConnection(ws, principal, 256)  # type: ignore[arg-type]
    hub.add(connection)
    connection.start()
    return connection


async def test_a_socket_with_a_backlog_gets_it_all_and_then_the_close_code() -> None:
    hub = Hub()
    ws = _Socket()
    connection = connect(hub, ws, "C1001")
    for n in range(50):
        assert connection.send({"type": "queue.update", "position": n})
    await hub.close_clients(SERVICE_RESTART, "service restart")
    assert len(ws.sent) == 50
    assert ws.close_code == SERVICE_RESTART


async def test_a_client_that_does_not_read_is_not_waited_for_past_the_grace() -> None:
    hub = Hub()
    reading, stuck = _Socket(), _Socket(stuck=True)
    connect(hub, reading, "C1001").send({"type": "pong"})
    connect(hub, stuck, "C1002").send({"type": "pong"})
    # A hang guard, not a timing assertion: the grace is about a second.
    await asyncio.wait_for(hub.close_clients(SERVICE_RESTART, "service restart"), timeout=30)
    assert reading.sent == ['{"type": "pong"}'] and reading.close_code == SERVICE_RESTART
    assert stuck.sent == [] and stuck.close_code is None  # its writer was stopped
