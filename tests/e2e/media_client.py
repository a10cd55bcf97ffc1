"""An app or desk as the server sees it: one WebSocket, one reader, a real aiortc peer.

Media messages go to :class:`tests.media.peer.MediaPeer`; everything else is kept
in an inbox for the test to ``expect``. ``drop()`` is what a phone in a lift does:
the socket and the peer connection vanish at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack

from server.hub.protocol import server_messages
from tests.api.harness import Party
from tests.media.peer import MediaPeer

MEDIA_TYPES = {"media.start", "media.restart", "webrtc.offer", "webrtc.answer", "webrtc.ice"}


class MediaClient:
    def __init__(
        self,
        party: Party,
        base_url: str | None = None,
        video: Callable[[], MediaStreamTrack] | None = None,
    ) -> None:
        self.party = party
        self.video = video  # the camera of each new peer connection (default: moving pattern)
        self.base_url = base_url or party.api.base_url
        self.role = "offerer" if party.role == "specialist" else "answerer"
        self.peer: MediaPeer | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.failures: list[Exception] = []
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        self.peer = MediaPeer(
            self.role,  # type: ignore[arg-type]
            [],
            self._send,
            name=self.party.role,
            video=self.video,
        )
        self.ws = await self.party.api.session.ws_connect(
            self.base_url + "/api/v1/ws", heartbeat=None
        )
        await self.ws.send_json({"type": "hello", "token": self.party.token})
        # Generous: the server welcomes only once the media session is claimed.
        welcome: dict[str, Any] = json.loads((await self.ws.receive(timeout=15)).data)
        assert welcome["type"] == "welcome", welcome
        self._reader = asyncio.create_task(self._read(self.ws, self.peer))
        return welcome

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_json(message)

    async def send_raw(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(message)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, peer: MediaPeer) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            try:
                server_messages.validate_python(data)  # the published protocol
            except ValueError as exc:
                self.failures.append(exc)
            self.seen.append(data)
            kind = data.get("type")
            if kind == "media.restart" and peer.call_id is None:
                # A client that lost its state on the way back treats a restart
                # like a start: the server sends its role and ICE servers along.
                data = {**data, "type": "media.start"}
            if kind in MEDIA_TYPES:
                try:
                    await peer.handle(data)
                except Exception as exc:  # the test sees it in ``failures``
                    self.failures.append(exc)
            else:
                if kind == "error":
                    self.errors.append(data)
                await self.inbox.put(data)

    async def expect(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if message.get("type") == kind and all(
                    message.get(k) == v for k, v in match.items()
                ):
                    return message

    async def frames(self, n: int = 10, timeout: float = 20.0) -> None:
        """Wait until ``n`` decoded video and audio frames arrived on the current connection."""
        assert self.peer is not None
        await self.peer.wait_for_frames(n, timeout=timeout)
        await self.peer.wait_for_frames(n, timeout=timeout, kind="audio")

    def generation(self) -> int:
        """How many peer connections this client has built so far."""
        return len(self.peer.connections) if self.peer is not None else 0

    async def frames_after(self, generation: int, timeout: float = 20.0) -> None:
        """Wait for a peer connection newer than ``generation`` to decode a frame."""
        assert self.peer is not None
        async with asyncio.timeout(timeout):
            while len(self.peer.connections) <= generation:
                await asyncio.sleep(0.005)
        await self.peer.wait_for_frames(1, timeout=timeout)

    async def drop(self) -> None:
        """Lose the socket and the peer connection at once, as a phone on a lift does."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self.ws is not None:
            await self.ws.close()
        if self.peer is not None:
            await self.peer.close()

    async def close(self) -> None:
        await self.drop()
        protocol = [f for f in self.failures if not isinstance(f, AssertionError)]
        assert not any("validation error" in str(f) for f in protocol), protocol
