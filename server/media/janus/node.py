"""A media node whose calls Janus carries: two NoSIP legs per call, bridged by us.

The clients' contract is the aiortc node's (:mod:`signaling.media.bridge`):

1. desk ``webrtc.offer`` → the desk's NoSIP handle ``generate``: Janus takes the
   WebRTC offer and writes a plain one naming its RTP ports; this node answers
   it with one codec per kind and its own relay sockets (``process``), and Janus
   gives the WebRTC answer for the desk;
2. the app's handle ``process``-es a plain offer of this node with those same
   codecs, and Janus gives the WebRTC offer for the app;
3. app ``webrtc.answer`` → ``generate`` on the app's handle: Janus's plain answer
   names the app leg's RTP ports, and RTP flows leg to leg through
   :class:`~.rtp.CallRtp`, which also feeds the call's tap (the recorder).

With ``srtp`` both plain sides of every leg are SDES-SRTP: the
node writes its key per kind into the plain SDPs it gives Janus and reads Janus's
from Janus's (:mod:`.srtp`), so media between Janus and the node is encrypted
and authenticated too.

ICE, DTLS, SRTP, NACK and bandwidth estimation are Janus's, per leg; PLI/FIR
cross from leg to leg as RTCP, and a leg that comes up asks the other side for
a keyframe.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from signaling.media.bridge import BridgeRefused, Outbound
from signaling.media.node import NodeStats
from signaling.media.tap import MediaTap, MediaTapFactory, NullTaps, Party

from .client import JanusError, JanusHandle, JanusUnavailable
from .connection import JanusLink
from .pump import RtpPump
from .rtp import CallRtp, LegSockets
from .sdp import KINDS, Codec, PlainSdpError, choose_codecs, parse_plain, write_plain
from .srtp import SUITE

__all__ = ["NOSIP", "JanusMediaNode"]

log = structlog.get_logger(__name__)

NOSIP = "janus.plugin.nosip"


@dataclass
class _Leg:
    party: Party
    handle: JanusHandle
    sockets: LegSockets
    described: bool = False  # Janus has the party's description: candidates may go in
    pending: list[dict[str, Any] | None] = field(default_factory=list)
    gap_reported: bool = False


class _JanusCall:
    def __init__(self, call_id: str, tap: MediaTap) -> None:
        self.call_id = call_id
        self.tap = tap
        self.lock = asyncio.Lock()
        self.legs: dict[Party, _Leg] = {}
        self.rtp: CallRtp | None = None
        self.codecs: dict[str, Codec] | None = None
        self.generation = 0
        self.forwarded_closed = 0
        self.keyframes_closed = 0

    @property
    def forwarded(self) -> int:
        return self.forwarded_closed + (self.rtp.forwarded_packets if self.rtp else 0)

    @property
    def keyframe_requests(self) -> int:
        return self.keyframes_closed + (self.rtp.keyframe_requests if self.rtp else 0)


def _other(party: Party) -> Party:
    return "customer" if party == "specialist" else "specialist"


class JanusMediaNode:
    """The Janus implementation of :class:`signaling.media.interface.MediaNodeBackend`."""

    def __init__(
        self,
        node_id: str,
        send: Outbound,
        ice_servers: Callable[[str], Sequence[Mapping[str, Any]]],
        taps: MediaTapFactory | None,
        capacity: int,
        *,
        link: JanusLink,
        rtp_host: str = "127.0.0.1",
        srtp: bool = False,
    ) -> None:
        self.node_id = node_id
        self.capacity = capacity
        self._send = send
        self._ice_servers = ice_servers
        self._taps: MediaTapFactory = taps or NullTaps()
        self.link = link
        self._rtp_host = rtp_host
        self._srtp = srtp
        # What NoSIP is asked for when it writes a plain description (``generate``).
        self._generate: dict[str, Any] = {"request": "generate"}
        if srtp:
            self._generate |= {"srtp": "sdes_mandatory", "srtp_profile": SUITE}
        self._calls: dict[str, _JanusCall] = {}
        self._opening = asyncio.Lock()
        self._closed = False
        self._forwarded_closed = 0
        self._keyframes_closed = 0
        self.on_calls_lost: Callable[[list[str]], None] | None = None
        self._lost_calls: set[str] = set()
        self._pump: RtpPump | None = None
        link.on_lost = self._janus_lost
        link.on_restored = self._janus_restored

    @property
    def load(self) -> int:
        return len(self._calls)

    @property
    def healthy(self) -> bool:
        return not self._closed and self.link.healthy

    async def start(self) -> None:
        if self._pump is None:
            self._pump = RtpPump(asyncio.get_running_loop())
            self._pump.start()
        await self.link.start()

    def _running_pump(self) -> RtpPump:
        if self._pump is None or not self._pump.running:
            raise BridgeRefused("media_unavailable", "the media node is not started")
        return self._pump

    def call(self, call_id: str) -> _JanusCall | None:
        return self._calls.get(call_id)

    def request_keyframe(self, call_id: str, party: Party) -> None:
        call = self._calls.get(call_id)
        if call is not None and call.rtp is not None:
            call.rtp.request_keyframe(party)

    def call_ids(self) -> list[str]:
        return list(self._calls)

    # -- signaling ---------------------------------------------------------------------
    async def signal(self, call_id: str, party: Party, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        if kind == "webrtc.offer":
            if party != "specialist":
                raise BridgeRefused("illegal_state", "only the desk offers to the media node")
            await self._on_offer(await self._open(call_id), str(message["sdp"]))
            return
        call = self._calls.get(call_id)
        if call is None:
            if kind == "webrtc.ice":
                return  # a late candidate for media that has ended
            raise BridgeRefused("illegal_state", "no media of that call on this node")
        if kind == "webrtc.answer":
            await self._on_answer(call, str(message["sdp"]))
        elif kind == "webrtc.ice":
            await self._on_ice(call, party, message.get("candidate"))
        else:
            raise BridgeRefused("invalid_message", f"{kind} is not for the media node")

    async def _on_offer(self, call: _JanusCall, sdp: str) -> None:
        async with call.lock:
            await self._close_legs(call)
            call.generation += 1
            try:
                answer, offer = await self._build_legs(call, sdp)
            except BaseException:
                await self._close_legs(call)
                raise
        await self._send(
            call.call_id,
            "specialist",
            {"type": "webrtc.answer", "call_id": call.call_id, "sdp": answer},
        )
        await self._send(
            call.call_id,
            "customer",
            {"type": "webrtc.offer", "call_id": call.call_id, "sdp": offer},
        )

    async def _build_legs(self, call: _JanusCall, sdp: str) -> tuple[str, str]:
        try:
            client = self.link.client()
            desk_handle = await client.attach(NOSIP)
            self._watch_handle(call, "specialist", desk_handle)
            data, _ = await desk_handle.message(self._generate, {"type": "offer", "sdp": sdp})
            desk_plain = parse_plain(str(data["result"]["sdp"]))
            codecs = choose_codecs(desk_plain)
            call.codecs = codecs
            call.rtp = CallRtp(
                call.call_id,
                call.tap,
                codecs,
                self._rtp_host,
                pump=self._running_pump(),
                srtp=self._srtp,
            )
            desk_sockets = call.rtp.open_leg("specialist")
            desk_sockets.remote = {k: v for k, v in desk_plain.items() if k in codecs}
            desk = call.legs["specialist"] = _Leg("specialist", desk_handle, desk_sockets)
            _, desk_jsep = await desk_handle.message(
                {
                    "request": "process",
                    "type": "answer",
                    "sdp": self._plain(desk_sockets, codecs, order=list(desk_plain)),
                }
            )
            desk.described = True
            await self._flush(desk)
            app_handle = await client.attach(NOSIP)
            self._watch_handle(call, "customer", app_handle)
            app_sockets = call.rtp.open_leg("customer")
            call.legs["customer"] = _Leg("customer", app_handle, app_sockets)
            _, app_jsep = await app_handle.message(
                {"request": "process", "type": "offer", "sdp": self._plain(app_sockets, codecs)}
            )
        except JanusUnavailable as exc:
            raise BridgeRefused("media_unavailable", "the media server is not reachable") from exc
        except JanusError as exc:
            raise BridgeRefused("invalid_sdp", f"the offer was refused: {exc.reason}") from exc
        except (PlainSdpError, KeyError, TypeError, ValueError) as exc:
            raise BridgeRefused("no_common_codec", f"the offer cannot be bridged: {exc}") from exc
        if desk_jsep is None or app_jsep is None:
            raise BridgeRefused("media_unavailable", "the media server gave no description")
        return str(desk_jsep["sdp"]), str(app_jsep["sdp"])

    def _plain(
        self, sockets: LegSockets, codecs: Mapping[str, Codec], order: Sequence[str] = KINDS
    ) -> str:
        return write_plain(
            self._rtp_host,
            sockets.ports,
            codecs,
            session_id=secrets.randbelow(2**31),
            order=order,
            keys=sockets.node_keys or None,
        )

    async def _on_answer(self, call: _JanusCall, sdp: str) -> None:
        async with call.lock:
            app = call.legs.get("customer")
            if app is None or app.described or call.codecs is None:
                raise BridgeRefused(
                    "illegal_state", "no offer of the node is waiting for an answer"
                )
            try:
                data, _ = await app.handle.message(self._generate, {"type": "answer", "sdp": sdp})
                app_plain = parse_plain(str(data["result"]["sdp"]))
                for kind, codec in call.codecs.items():
                    media = app_plain.get(kind)
                    if media is None or all(
                        c.payload_type != codec.payload_type for c in media.codecs
                    ):
                        raise BridgeRefused("no_common_codec", f"the app did not take {codec.name}")
                app.sockets.remote = {k: v for k, v in app_plain.items() if k in call.codecs}
            except JanusUnavailable as exc:
                raise BridgeRefused(
                    "media_unavailable", "the media server is not reachable"
                ) from exc
            except JanusError as exc:
                raise BridgeRefused("invalid_sdp", f"answer refused: {exc.reason}") from exc
            except (PlainSdpError, KeyError, TypeError, ValueError) as exc:
                raise BridgeRefused("invalid_sdp", f"answer refused: {exc}") from exc
            app.described = True
            await self._flush(app)

    async def _on_ice(self, call: _JanusCall, party: Party, candidate: Any) -> None:
        wire = _janus_candidate(candidate)
        async with call.lock:
            leg = call.legs.get(party)
            if leg is None:
                return
            if not leg.described:
                leg.pending.append(wire)
                return
            try:
                await leg.handle.trickle(wire)
            except (JanusUnavailable, JanusError) as exc:
                log.info("janus.trickle_failed", call_id=call.call_id, error=str(exc))

    async def _flush(self, leg: _Leg) -> None:
        pending, leg.pending = leg.pending, []
        for candidate in pending:
            try:
                await leg.handle.trickle(candidate)
            except (JanusUnavailable, JanusError):
                return

    # -- Janus events --------------------------------------------------------------------
    def _watch_handle(self, call: _JanusCall, party: Party, handle: JanusHandle) -> None:
        generation = call.generation

        def on_event(event: Mapping[str, Any]) -> None:
            if call.generation != generation:
                return
            kind = event.get("janus")
            if kind == "webrtcup" and call.rtp is not None:
                # A receiver that has just connected needs a keyframe to start with.
                call.rtp.receiver_connected(party)
            elif kind == "hangup":
                leg = call.legs.get(party)
                if leg is not None:
                    self._report_gap(call, leg)

        handle.on_event = on_event

    def _janus_lost(self) -> None:
        """Janus went away: every leg is gone. The calls stay open (their taps too).
        Until Janus is back the node is unhealthy and stops heartbeating, so servers
        move its calls to another node once its heartbeat lapses."""
        for call in self._calls.values():
            for leg in call.legs.values():
                self._report_gap(call, leg)
            if call.rtp is not None:
                call.rtp.close()
        self._lost_calls |= {c.call_id for c in self._calls.values() if c.codecs is not None}

    def _janus_restored(self) -> None:
        """Janus is back before anyone moved the calls: have them restarted now (a
        restart before this point would meet no Janus and be refused)."""
        lost = sorted(self._lost_calls & set(self._calls))
        self._lost_calls.clear()
        if lost and self.on_calls_lost is not None:
            self.on_calls_lost(lost)

    # -- lifecycle -------------------------------------------------------------------------
    async def restart(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            async with call.lock:
                await self._close_legs(call)

    async def party_left(self, call_id: str, party: Party) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        async with call.lock:
            leg = call.legs.pop(party, None)
            if leg is not None:
                await self._close_leg(call, leg)

    async def close_call(self, call_id: str) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        async with call.lock:
            await self._close_legs(call)
        self._forwarded_closed += call.forwarded
        self._keyframes_closed += call.keyframe_requests
        await call.tap.close()
        log.info("media.call_closed", call_id=call_id, packets=call.forwarded)

    def stats(self) -> NodeStats:
        calls = list(self._calls.values())
        return NodeStats(
            calls=len(calls),
            legs=sum(len(c.legs) for c in calls),
            forwarded_packets=self._forwarded_closed + sum(c.forwarded for c in calls),
            decoded_frames=0,
            keyframe_requests=self._keyframes_closed + sum(c.keyframe_requests for c in calls),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(
            *(self.close_call(c) for c in list(self._calls)), return_exceptions=True
        )
        await self.link.close()
        if self._pump is not None:
            await asyncio.to_thread(self._pump.stop)

    async def _open(self, call_id: str) -> _JanusCall:
        if self._closed:
            raise BridgeRefused("illegal_state", "the media node is shutting down")
        async with self._opening:
            existing = self._calls.get(call_id)
            if existing is not None:
                return existing
            if not self.link.healthy:
                raise BridgeRefused("media_unavailable", "the media server is not reachable")
            tap = await self._taps.open(call_id, started_at=time.time())
            call = self._calls[call_id] = _JanusCall(call_id, tap)
            log.info("media.call_opened", call_id=call_id, node_id=self.node_id)
            return call

    def _report_gap(self, call: _JanusCall, leg: _Leg) -> None:
        if not leg.gap_reported:
            leg.gap_reported = True
            call.tap.track_gap(leg.party, since=time.time())

    async def _close_leg(self, call: _JanusCall, leg: _Leg) -> None:
        self._report_gap(call, leg)
        if call.rtp is not None:
            call.rtp.close_leg(leg.party)
        await leg.handle.detach()

    async def _close_legs(self, call: _JanusCall) -> None:
        legs, call.legs = list(call.legs.values()), {}
        await asyncio.gather(*(self._close_leg(call, leg) for leg in legs), return_exceptions=True)
        if call.rtp is not None:
            call.forwarded_closed += call.rtp.forwarded_packets
            call.keyframes_closed += call.rtp.keyframe_requests
            call.rtp.close()
            call.rtp = None
        call.codecs = None


def _janus_candidate(candidate: Any) -> dict[str, Any] | None:
    """Wire candidate → Janus trickle body; None (or an empty one) ends the candidates."""
    if candidate is None:
        return None
    if not isinstance(candidate, Mapping):
        raise BridgeRefused("invalid_message", "malformed ICE candidate")
    line = str(candidate.get("candidate", ""))
    if not line:
        return None
    if not line.startswith("candidate:") or len(line.split()) < 8:
        raise BridgeRefused("invalid_message", "malformed ICE candidate")
    body: dict[str, Any] = {"candidate": line}
    if candidate.get("sdpMid") is not None:
        body["sdpMid"] = str(candidate["sdpMid"])
    if candidate.get("sdpMLineIndex") is not None:
        body["sdpMLineIndex"] = int(candidate["sdpMLineIndex"])
    return body
