"""One client's socket: a bounded send buffer, written by a task that runs only
while there is something to write.

Senders never await the network: :meth:`ClientConnection.send` only buffers. A
client that cannot keep up fills its buffer and is disconnected (close code
4408), so one slow phone on a lift never stalls the messages of everyone else.

An idle socket (most of them: customers waiting in the queue) holds no task and
no buffer, only this object: the writer is started when a message is buffered
and ends when the buffer is empty again.

A close the server decides on (:meth:`ClientConnection.close_soon`) goes out
after what is buffered, and is made by the task that reads the socket, so that
the client's reply is waited for (see :meth:`ClientConnection.receive`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from typing import Any

import structlog
from aiohttp import WSMessage, web

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
        "_close_due",
        "_closed_by_reader",
        "_closing",
        "_interrupted",
        "_limit",
        "_pending",
        "_reader",
        "_receiving",
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
        # The close is made by the task that reads the socket, when there is one:
        # aiohttp completes the closing handshake (waits for the client's reply)
        # only when close() is not racing a receive() in another task; from the
        # writer, the transport would be dropped at once and clients see 1006.
        self._reader: asyncio.Task[Any] | None = None
        self._receiving = False  # the reader waits in receive()
        self._interrupted = False  # the writer cancelled that receive() once
        self._close_due: tuple[int, str] | None = None  # handed to the reader
        self._closed_by_reader: asyncio.Future[None] | None = None  # see _reader_done

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
                if self._reader is not None:
                    self._hand_close_to_reader(self._closing)
                else:
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

    def _hand_close_to_reader(self, close: tuple[int, str]) -> None:
        """What was buffered is sent: the reader closes now (its receive() is
        interrupted once if it waits in one; if it is busy handling a message,
        it closes when it asks for the next)."""
        self._close_due = close
        reader = self._reader
        if self._receiving and not self._interrupted and reader is not None:
            self._interrupted = True
            reader.cancel()

    def attach_reader(self) -> None:
        """The calling task reads this socket (:meth:`receive`) and closes it."""
        self._reader = asyncio.current_task()

    async def receive(self) -> WSMessage | None:
        """The client's next message; None once the socket is to be closed, by
        the caller, with :meth:`close_as_asked`."""
        if self._close_due is not None:
            return None
        self._receiving = True
        try:
            return await self.ws.receive()
        except asyncio.CancelledError:
            # Our own interruption (nobody else's cancel pending too): close.
            if self._interrupted and self._reader is not None and self._reader.uncancel() == 0:
                return None
            raise
        finally:
            self._receiving = False

    async def close_as_asked(self) -> None:
        """The reader is done with the socket: if a close was handed to it, the
        close frame and then the client's reply (bounded by the socket's close
        timeout). Called however the read loop ended."""
        close = self._close_due
        try:
            if close is not None and not self.ws.closed:
                code, reason = close
                await self.ws.close(code=code, message=reason.encode())
        finally:
            done = self._reader_done()
            if not done.done():
                done.set_result(None)

    def _reader_done(self) -> asyncio.Future[None]:
        """Done once the reader has finished with the socket (made on first use:
        most sockets are never waited for)."""
        if self._closed_by_reader is None:
            self._closed_by_reader = asyncio.get_running_loop().create_future()
        return self._closed_by_reader

    async def finish(self, within_s: float) -> None:
        """Give this socket up to ``within_s`` to send what is buffered and close
        (after :meth:`close_soon`), then :meth:`stop` its writer: a client that
        reads is told why it was closed; one that does not is not waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.wait({writer}, timeout=within_s)
        remaining = deadline - loop.time()
        reader = self._reader
        if reader is not None and not reader.done() and self._closing is not None and remaining > 0:
            await asyncio.wait({self._reader_done()}, timeout=remaining)
        await self.stop()

    async def stop(self) -> None:
        """Stop the writer (cancel, then await). Safe to call twice."""
        self._started = False
        writer, self._writer = self._writer, None
        await cancel_and_wait(writer)
