"""What a client's socket means to its calls: the first connect and disconnect hooks.

A specialist's socket logs the desk in to routing (or an ``error`` replayed in
its place when the desk may not take calls); the last socket of a desk on this
node withdraws it. A customer's hello is answered by :mod:`server.connect`, from
one read shared with its media and callback parts.
"""

from __future__ import annotations

from typing import Any

from server.auth.principal import Role
from server.errors import CloudBranchError
from server.hub.connection import ClientConnection
from server.hub.hub import Hub
from server.hub.messages import error

from .service import CallService


class CallSocketHooks:
    """The call service's socket hooks (``SocketRoutes`` in ``server/app.py``)."""

    def __init__(self, calls: CallService, hub: Hub) -> None:
        self._calls = calls
        self._hub = hub

    async def connected(self, connection: ClientConnection) -> list[dict[str, Any]]:
        principal = connection.principal
        if principal.role is Role.SPECIALIST:
            try:
                return await self._calls.desk_connected(principal.subject, connection.conn_id)
            except CloudBranchError as exc:
                return [error(exc.code, exc.detail)]
        return []

    async def disconnected(self, connection: ClientConnection) -> None:
        principal = connection.principal
        if principal.role is Role.SPECIALIST and not self._hub.is_connected_here(
            Role.SPECIALIST, principal.subject
        ):
            await self._calls.desk_disconnected(principal.subject, connection.conn_id)
