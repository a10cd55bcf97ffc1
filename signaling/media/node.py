"""A media node: the calls whose media it relays, and the only way in to them.

The server (embedded) or a ``cloudbranch media-node`` process owns one
:class:`MediaNode`. Signaling reaches it as :meth:`MediaNode.signal` calls with
the contract's ``webrtc.*`` messages; what it sends back to the parties goes
through the ``send`` callable it was given. Each call is a
:class:`~signaling.media.bridge.CallBridge`, opened on the call's first offer
and closed when the call's conversation ends (or the node stops).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from .bridge import BridgeRefused, CallBridge, Outbound
from .passthrough import check_internals
from .tap import MediaTapFactory, NullTaps, Party

__all__ = ["MediaNode", "NodeStats"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStats:
    calls: int
    legs: int
    #: RTP packets sent on from one leg to the other (on both backends)
    forwarded_packets: int
    decoded_frames: int
    keyframe_requests: int


class MediaNode:
    """Relays the media of its calls; see :mod:`signaling.media.bridge`."""

    def __init__(
        self,
        node_id: str,
        send: Outbound,
        ice_servers: Callable[[str], Sequence[Mapping[str, Any]]],
        taps: MediaTapFactory | None = None,
        capacity: int = 50,
    ) -> None:
        check_internals()  # a changed aiortc must stop the node, not decode every call
        self.node_id = node_id
        self.capacity = capacity
        # aiortc runs in this process: its calls are never lost apart from it.
        self.on_calls_lost: Callable[[list[str]], None] | None = None
        self._send = send
        self._ice_servers = ice_servers
        self._taps: MediaTapFactory = taps or NullTaps()
        self._calls: dict[str, CallBridge] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._closed = False
        self._forwarded_closed = 0
        self._decoded_closed = 0
        self._keyframes_closed = 0

    @property
    def load(self) -> int:
        """How many calls this node relays now."""
        return len(self._calls)

    @property
    def healthy(self) -> bool:
        """aiortc lives in this process: the node is up while the process is."""
        return not self._closed

    async def start(self) -> None:
        """Nothing to bring up: aiortc runs in this process."""
        return None

    def bridge(self, call_id: str) -> CallBridge | None:
        return self._calls.get(call_id)

    async def signal(self, call_id: str, party: Party, message: Mapping[str, Any]) -> None:
        """Act on a party's ``webrtc.offer``/``answer``/``ice``; raises
        :class:`BridgeRefused` when it cannot (the sender is told why)."""
        kind = message.get("type")
        if kind == "webrtc.offer":
            opened = await self._open(call_id)
            await opened.on_offer(str(message["sdp"]))
            return
        bridge = self._calls.get(call_id)
        if bridge is None:
            if kind == "webrtc.ice":
                return  # a late candidate for media that has ended
            raise BridgeRefused("illegal_state", "no media of that call on this node")
        if kind == "webrtc.answer":
            await bridge.on_answer(str(message["sdp"]))
        elif kind == "webrtc.ice":
            await bridge.on_ice(party, message.get("candidate"))
        else:
            raise BridgeRefused("invalid_message", f"{kind} is not for the media node")

    async def restart(self, call_id: str) -> None:
        """Both parties are told to build new peer connections."""
        bridge = self._calls.get(call_id)
        if bridge is not None:
            await bridge.restart()

    def request_keyframe(self, call_id: str, party: Party) -> None:
        """Ask ``party``'s sender in that call for a keyframe (the recorder wants
        its video segments to end on time at one); rate limited per call."""
        bridge = self._calls.get(call_id)
        if bridge is not None:
            bridge.request_keyframe(party)

    async def party_left(self, call_id: str, party: Party) -> None:
        bridge = self._calls.get(call_id)
        if bridge is not None:
            await bridge.party_left(party)

    async def close_call(self, call_id: str) -> None:
        bridge = self._calls.pop(call_id, None)
        self._opening.pop(call_id, None)
        if bridge is not None:
            await bridge.close()
            self._forwarded_closed += bridge.forwarded
            self._decoded_closed += bridge.decoded
            self._keyframes_closed += bridge.keyframe_requests
            log.info("media.call_closed", call_id=call_id, packets=bridge.forwarded)

    def stats(self) -> NodeStats:
        bridges = list(self._calls.values())
        return NodeStats(
            calls=len(bridges),
            legs=sum(b.leg_count for b in bridges),
            forwarded_packets=self._forwarded_closed + sum(b.forwarded for b in bridges),
            decoded_frames=self._decoded_closed + sum(b.decoded for b in bridges),
            keyframe_requests=self._keyframes_closed + sum(b.keyframe_requests for b in bridges),
        )

    async def close(self) -> None:
        """Close every call's media; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(
            *(self.close_call(call_id) for call_id in list(self._calls)), return_exceptions=True
        )

    async def _open(self, call_id: str) -> CallBridge:
        if self._closed:
            raise BridgeRefused("illegal_state", "the media node is shutting down")
        lock = self._opening.setdefault(call_id, asyncio.Lock())
        async with lock:
            bridge = self._calls.get(call_id)
            if bridge is None:
                tap = await self._taps.open(call_id, started_at=time.time())
                bridge = CallBridge(
                    call_id, ice_servers=self._ice_servers(call_id), tap=tap, send=self._send
                )
                self._calls[call_id] = bridge
                log.info("media.call_opened", call_id=call_id, node_id=self.node_id)
            return bridge
