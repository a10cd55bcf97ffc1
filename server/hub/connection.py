"""One client's socket: a bounded send queue drained by its own writer task.

Senders never await the network: :meth:`ClientConnection.send` only enqueues. A
client that cannot keep up fills its queue and is disconnected (close code 4408),
so one slow phone on a lift never stalls the messages of everyone else.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import structlog
from aiohttp import web

from server.auth.principal import Principal
from server.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW_CONSUMER = 4408
CLOSE_REPLACED = 4409
CLOSE_SHUTDOWN = 1001
# A node drains (restart, deploy): reconnect, and the load balancer picks another.
CLOSE_SERVICE_RESTART = 1012
_CLOSE_TIMEOUT_S = 5.0


class ClientConnection:
    """A welcomed client: who it is, its socket, and its outgoing queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        principal: Principal,
        queue_size: int,
        node_id: str = "",
    ) -> None:
        self.ws = ws
        self.principal = principal
        # Tells this socket apart from an older or newer one of the same client,
        # on any node: routing keys a desk's presence by it ("<node>/<uuid>").
        self.conn_id = f"{node_id}/{uuid.uuid4().hex}" if node_id else uuid.uuid4().hex
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def closed(self) -> bool:
        return self._closing or self.ws.closed

    def start(self) -> None:
        self._writer = asyncio.create_task(
            self._write_loop(), name=f"ws-writer-{self.principal.role}-{self.principal.subject}"
        )

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message for this client; False if it was dropped."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(json.dumps(message, ensure_ascii=False, default=str))
        except asyncio.QueueFull:
            log.warning("ws.slow_consumer", role=self.principal.role)
            self.close_soon(CLOSE_SLOW_CONSUMER, "too slow")
            return False
        return True

    def refuse(self, code: str, detail: str) -> None:
        """This client may no longer act (account disabled, session revoked):
        tell it why, then close with 4401 so it logs in again instead of reconnecting."""
        self.send({"type": "error", "code": code, "detail": detail})
        self.close_soon(CLOSE_UNAUTHORIZED, "access revoked")

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the writer to close the socket after what is already queued."""
        if self._closing:
            return
        self._closing = True
        self._close_code, self._close_reason = code, reason
        # Make room for the sentinel: a slow consumer loses its backlog anyway.
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def _write_loop(self) -> None:
        try:
            while True:
                text = await self._queue.get()
                if text is None:
                    await self.ws.close(code=self._close_code, message=self._close_reason.encode())
                    return
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, TimeoutError):
            # The peer went away mid-send; the reader sees the close and cleans up.
            return

    async def stop(self) -> None:
        """Stop the writer (cancel, then await). Safe to call twice."""
        writer, self._writer = self._writer, None
        await cancel_and_wait(writer)
