"""One client's socket: a bounded send buffer, written by a task that runs only
while there is something to write.

Senders never await the network: :meth:`ClientConnection.send` only buffers. A
client that cannot keep up fills its buffer and is disconnected (close code
4408), so one slow phone on a lift never stalls the messages of everyone else.

An idle socket (most of them: customers waiting in the queue) holds no task and
no buffer, only this object: the writer is started when a message is buffered
and ends when the buffer is empty again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
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

# Messages whose sending or receipt means this socket carries (or carried) a
# call's media: only such a socket has media state to clean up when it closes.
_MEDIA_TYPES = ("media.", "webrtc.")


class ClientConnection:
    """A welcomed client: who it is, its socket, and what is waiting to be sent."""

    __slots__ = (
        "_closing",
        "_limit",
        "_pending",
        "_started",
        "_writer",
        "conn_id",
        "had_media",
        "principal",
        "ws",
    )

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
        # True once a media message was sent to this client (counted in send();
        # what the client sends is not), or the socket came up in a call's
        # conversation: its close then has a media party to mark absent.
        self.had_media = False
        self._limit = queue_size
        self._pending: deque[str] | None = None  # None while nothing waits
        self._writer: asyncio.Task[None] | None = None  # runs while something waits
        self._started = False
        self._closing: tuple[int, str] | None = None

    @property
    def closed(self) -> bool:
        return self._closing is not None or self.ws.closed

    def start(self) -> None:
        """Begin writing: what was buffered before (the welcome replay) goes first."""
        self._started = True
        self._wake()

    def send(self, message: dict[str, Any]) -> bool:
        """Buffer a message for this client; False if it was dropped."""
        if self.closed:
            return False
        kind = message.get("type")
        if isinstance(kind, str) and kind.startswith(_MEDIA_TYPES):
            self.had_media = True
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        elif len(pending) >= self._limit:
            log.warning("ws.slow_consumer", role=self.principal.role)
            self.close_soon(CLOSE_SLOW_CONSUMER, "too slow")
            return False
        pending.append(json.dumps(message, ensure_ascii=False, default=str))
        self._wake()
        return True

    def refuse(self, code: str, detail: str) -> None:
        """This client may no longer act (account disabled, session revoked):
        tell it why, then close with 4401 so it logs in again instead of reconnecting."""
        self.send({"type": "error", "code": code, "detail": detail})
        self.close_soon(CLOSE_UNAUTHORIZED, "access revoked")

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the writer to close the socket after what is already buffered."""
        if self._closing is not None:
            return
        self._closing = (code, reason)
        self._wake()

    def _wake(self) -> None:
        if self._started and self._writer is None and (self._pending or self._closing):
            self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")

    async def _write_loop(self) -> None:
        try:
            while self._pending:
                await self.ws.send_str(self._pending.popleft())
            self._pending = None
            if self._closing is not None:
                code, reason = self._closing
                await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError, TimeoutError):
            # The peer went away mid-send; the reader sees the close and cleans up.
            self._pending = None
        finally:
            # No await between the empty check above and here: a send() that comes
            # after starts a new writer.
            if self._writer is asyncio.current_task():
                self._writer = None

    async def finish(self, within_s: float) -> None:
        """Give the writer up to ``within_s`` to send what is buffered and the close
        frame (after :meth:`close_soon`), then :meth:`stop` it: a client that
        reads is told why it was closed; one that does not is not waited for."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.wait({writer}, timeout=within_s)
        await self.stop()

    async def stop(self) -> None:
        """Stop the writer (cancel, then await). Safe to call twice."""
        self._started = False
        writer, self._writer = self._writer, None
        await cancel_and_wait(writer)
