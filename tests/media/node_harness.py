"""Two real aiortc peers talking to a real media node, with no server in between.

The desk peer's messages go to the node as the specialist's, the app peer's as
the customer's; what the node sends goes to the right peer. Used by the node's
own tests and by ``bench/relay.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from signaling.media.interface import MediaNodeBackend as MediaNode
from signaling.media.tap import Party
from tests.media.peer import MediaPeer


@dataclass
class RelayedCall:
    call_id: str
    desk: MediaPeer
    app: MediaPeer
    node: MediaNode
    errors: list[BaseException] = field(default_factory=list)

    async def start(self) -> None:
        for peer, role in ((self.app, "answerer"), (self.desk, "offerer")):
            await peer.handle(
                {"type": "media.start", "call_id": self.call_id, "role": role, "ice_servers": []}
            )


class NodeRouter:
    """Delivers the node's messages to the peers of each call."""

    def __init__(self) -> None:
        self.calls: dict[str, RelayedCall] = {}
        self.sent: list[tuple[str, Party, dict[str, Any]]] = []

    async def send(self, call_id: str, party: Party, message: dict[str, Any]) -> None:
        self.sent.append((call_id, party, message))
        call = self.calls[call_id]
        peer = call.app if party == "customer" else call.desk
        try:
            await peer.handle(message)
        except Exception as exc:  # the test sees it in ``errors``
            call.errors.append(exc)


def peer_sender(router: NodeRouter, node: MediaNode, call_id: str, party: Party) -> Any:
    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "media.state":
            return
        try:
            await node.signal(call_id, party, message)
        except Exception as exc:
            router.calls[call_id].errors.append(exc)

    return send


@asynccontextmanager
async def relayed_calls(
    node: MediaNode, router: NodeRouter, count: int = 1, **peer_options: Any
) -> AsyncIterator[list[RelayedCall]]:
    calls: list[RelayedCall] = []
    try:
        for index in range(count):
            call_id = f"call-{index}"
            desk = MediaPeer(
                "offerer",
                [],
                peer_sender(router, node, call_id, "specialist"),
                name=f"desk-{index}",
                **peer_options,
            )
            app = MediaPeer(
                "answerer",
                [],
                peer_sender(router, node, call_id, "customer"),
                name=f"app-{index}",
                **peer_options,
            )
            call = RelayedCall(call_id, desk, app, node)
            router.calls[call_id] = call
            calls.append(call)
        await asyncio.gather(*(c.start() for c in calls))
        yield calls
    finally:
        for call in calls:
            await call.desk.close()
            await call.app.close()
            await node.close_call(call.call_id)
