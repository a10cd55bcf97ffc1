"""Registry of the clients connected to this node, and delivery to any client."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from server.auth.principal import Principal, Role

from .bus import LocalBus, MessageBus
from .connection import CLOSE_SHUTDOWN, ClientConnection


class Hub:
    """Who is connected here, and how to reach anyone anywhere."""

    def __init__(self, bus: MessageBus | None = None) -> None:
        self._bus: MessageBus = bus or LocalBus()
        self._clients: dict[tuple[str, str], set[ClientConnection]] = defaultdict(set)

    async def start(self) -> None:
        await self._bus.start(self._deliver_local)

    def add(self, connection: ClientConnection) -> list[ClientConnection]:
        """Register a welcomed client. A client has one socket and the newest is the
        live one: older sockets of the same client here stop receiving at once and
        are returned, for the caller to close (4409) once the new one has taken
        over (so their late close cannot be mistaken for the client leaving)."""
        group = self._clients[_key(connection.principal)]
        displaced = list(group)
        group.clear()
        group.add(connection)
        return displaced

    def discard(self, connection: ClientConnection) -> None:
        key = _key(connection.principal)
        clients = self._clients.get(key)
        if clients is not None:
            clients.discard(connection)
            if not clients:
                del self._clients[key]

    def is_connected_here(self, role: Role, subject: str) -> bool:
        return bool(self._clients.get((role.value, subject)))

    def connections(self) -> list[ClientConnection]:
        """Every client socket on this node (a copy: safe to close while iterating)."""
        return [c for group in self._clients.values() for c in group]

    def local_subjects(self, role: Role) -> list[str]:
        return [subject for (r, subject), c in self._clients.items() if r == role.value and c]

    def send_local(self, role: Role, subject: str, message: dict[str, Any]) -> int:
        """Queue ``message`` for this node's clients with that identity; how many got it."""
        sent = 0
        for connection in list(self._clients.get((role.value, subject), ())):
            sent += connection.send(message)
        return sent

    async def send(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        """Deliver to the client wherever it is connected (this node or another)."""
        self.send_local(role, subject, message)
        await self._bus.publish(role.value, subject, message)

    async def _deliver_local(self, role: str, subject: str, message: dict[str, Any]) -> None:
        self.send_local(Role(role), subject, message)

    async def close(self) -> None:
        """Close every client socket (going away) and stop the bus."""
        connections = [c for group in self._clients.values() for c in group]
        for connection in connections:
            connection.close_soon(CLOSE_SHUTDOWN, "server shutting down")
        await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)
        self._clients.clear()
        await self._bus.close()


def _key(principal: Principal) -> tuple[str, str]:
    return (principal.role.value, principal.subject)
