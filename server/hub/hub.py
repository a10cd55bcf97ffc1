"""Registry of the clients connected to this node, and delivery to any client."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import structlog

from server.auth.principal import Principal, Role

from .bus import LocalBus, MessageBus
from .connection import CLOSE_SHUTDOWN, ClientConnection

log = structlog.get_logger(__name__)

# How long closing every socket (drain, shutdown) waits for their writers to send
# what is queued and the close frame.
_CLOSE_GRACE_S = 1.0

# Offers withdrawn lately, by offer id (ids are never reused). An offer that
# reaches this node after its withdrawal (published by another node, or its
# sender was overtaken by a cancel) is not delivered: the desk would show a card
# nobody can accept until its lease ran out. A few minutes' worth at peak.
_WITHDRAWN_OFFERS_KEPT = 4096
_OFFERED = "call.offered"
_OFFER_WITHDRAWN = "call.offer_withdrawn"


class Hub:
    """Who is connected here, and how to reach anyone anywhere."""

    def __init__(self, bus: MessageBus | None = None) -> None:
        self._bus: MessageBus = bus or LocalBus()
        # A client has one live socket here (the newest), so one entry per identity.
        self._clients: dict[tuple[str, str], ClientConnection] = {}
        self._withdrawn_offers: OrderedDict[str, None] = OrderedDict()

    async def start(self) -> None:
        await self._bus.start(self._deliver_local)

    def add(self, connection: ClientConnection) -> list[ClientConnection]:
        """Register a welcomed client. A client has one socket and the newest is the
        live one: older sockets of the same client here stop receiving at once and
        are returned, for the caller to close (4409) once the new one has taken
        over (so their late close cannot be mistaken for the client leaving)."""
        older = self._clients.get(key := _key(connection.principal))
        self._clients[key] = connection
        return [older] if older is not None else []

    def discard(self, connection: ClientConnection) -> None:
        key = _key(connection.principal)
        if self._clients.get(key) is connection:
            del self._clients[key]

    def is_connected_here(self, role: Role, subject: str) -> bool:
        return (role.value, subject) in self._clients

    def connections(self) -> list[ClientConnection]:
        """Every client socket on this node (a copy: safe to close while iterating)."""
        return list(self._clients.values())

    def local_subjects(self, role: Role) -> list[str]:
        return [subject for (r, subject) in self._clients if r == role.value]

    def local_connections(self, role: Role) -> list[tuple[str, str]]:
        """(subject, connection id) of this node's live sockets with that role."""
        return [
            (subject, connection.conn_id)
            for (r, subject), connection in self._clients.items()
            if r == role.value
        ]

    @property
    def bus_healthy(self) -> bool:
        """False while the cross-node bus is not subscribed (readiness reports it)."""
        return bool(getattr(self._bus, "healthy", True))

    def send_local(self, role: Role, subject: str, message: dict[str, Any]) -> int:
        """Queue ``message`` for this node's clients with that identity; how many got it."""
        if self._overtaken_offer(message):
            log.info("hub.withdrawn_offer_not_sent", call_id=message.get("call_id"))
            return 0
        connection = self._clients.get((role.value, subject))
        return int(connection.send(message)) if connection is not None else 0

    async def send(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        """Deliver to the client wherever it is connected (this node or another)."""
        self.send_local(role, subject, message)
        await self.publish(role, subject, message)

    async def publish(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        """Deliver to the client if it is connected to another node."""
        try:
            await self._bus.publish(role.value, subject, message)
        except Exception as exc:
            # Redis is down: this node's clients got it; others learn the state
            # when they reconnect or on the next update. Never fail the caller,
            # whose SQL step has already committed.
            log.warning("hub.publish_failed", error=type(exc).__name__, type=message.get("type"))

    def is_current(self, message: dict[str, Any]) -> bool:
        """False for an offer already withdrawn (what a reconnecting client is
        replayed was read before that withdrawal may have reached this node)."""
        return not self._overtaken_offer(message)

    def _overtaken_offer(self, message: dict[str, Any]) -> bool:
        """Note a withdrawal; True for an offer whose withdrawal was seen first."""
        kind = message.get("type")
        if kind == _OFFER_WITHDRAWN:
            offer_id = str(message.get("offer_id"))
            self._withdrawn_offers[offer_id] = None
            self._withdrawn_offers.move_to_end(offer_id)
            while len(self._withdrawn_offers) > _WITHDRAWN_OFFERS_KEPT:
                self._withdrawn_offers.popitem(last=False)
            return False
        return kind == _OFFERED and str(message.get("offer_id")) in self._withdrawn_offers

    async def _deliver_local(self, role: str, subject: str, message: dict[str, Any]) -> None:
        self.send_local(Role(role), subject, message)

    async def close_clients(self, code: int, reason: str) -> None:
        """Close every client socket with ``code``, after what is already queued
        (within ``_CLOSE_GRACE_S`` for all of them: a client that does not read
        does not hold up a drain)."""
        connections = list(self._clients.values())
        for connection in connections:
            connection.close_soon(code, reason)
        await asyncio.gather(
            *(c.finish(_CLOSE_GRACE_S) for c in connections), return_exceptions=True
        )
        self._clients.clear()

    async def close(self) -> None:
        """Close every client socket (going away) and stop the bus."""
        await self.close_clients(CLOSE_SHUTDOWN, "server shutting down")
        await self._bus.close()


def _key(principal: Principal) -> tuple[str, str]:
    return (principal.role.value, principal.subject)
