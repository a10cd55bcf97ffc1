"""One relayed call on a media node: two peer connections and the media between them.

The desk (specialist) offers to the node, the node offers to the app (customer):

1. desk ``webrtc.offer`` → the node reads the desk's codecs and offers the app
   the same ones (its own peer connection, its own ICE and DTLS);
2. app ``webrtc.answer`` → the app's choice is the call's codec; the node
   answers the desk with exactly that codec, so both legs carry the same one;
3. each RTP packet received on one leg goes, as received, out of the other
   leg's sender (:class:`~signaling.media.forward.RtpForwarder`: that leg's
   SSRC and payload type, its own continuous sequence numbers and
   timestamps), and each complete encoded frame to the call's
   :class:`~signaling.media.tap.MediaTap`. Nothing is decoded or encoded.

Keyframes: a leg whose receiver asks for one (PLI/FIR), or whose sender starts
or meets a new source stream, sends a PLI to the leg the video comes from (at most one
per :data:`KEYFRAME_REQUEST_INTERVAL_S`). RTCP stays per leg, handled by aiortc:
receiver and sender reports, NACKs (each leg's sender answers its receiver's
from its own history; the node's receiver asks the source for what it lost)
and congestion feedback (REMB, paced).

:class:`CallBridge` owns every peer connection it creates and closes them all in
:meth:`CallBridge.close`; its methods are serialised by one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription, candidate_from_sdp

from signaling.rtc import rtc_configuration

from .codecs import (
    CLOCK_RATES,
    NoCommonCodec,
    negotiated_codec,
    offered_codecs,
    single_codec,
)
from .forward import IdleTrack, RtpForwarder, is_keyframe
from .passthrough import (
    DivertedReceiver,
    SenderSink,
    divert_receiver,
    on_keyframe_request,
    request_keyframe,
)
from .tap import EncodedFrame, MediaTap, Party

__all__ = ["KEYFRAME_REQUEST_INTERVAL_S", "BridgeRefused", "CallBridge", "Outbound"]

log = structlog.get_logger(__name__)

KEYFRAME_REQUEST_INTERVAL_S = 0.25
KINDS: tuple[Literal["audio", "video"], ...] = ("audio", "video")

# How the node sends a media message to a party of a call.
Outbound = Callable[[str, Party, dict[str, Any]], Awaitable[None]]


class BridgeRefused(Exception):
    """A signaling message the call's bridge cannot act on now; ``code`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass
class Leg:
    """One party's peer connection with the node, and what lives and dies with it."""

    party: Party
    pc: RTCPeerConnection
    #: The packets this leg sends to its party (received on the other leg).
    outgoing: dict[str, RtpForwarder] = field(default_factory=dict)
    #: Its senders' tracks (which yield nothing: the forwarders send).
    tracks: dict[str, IdleTrack] = field(default_factory=dict)
    incoming: dict[str, DivertedReceiver] = field(default_factory=dict)
    pending_candidates: list[Any] = field(default_factory=list)
    gap_reported: bool = False

    @property
    def decoded(self) -> int:
        return sum(r.decoded for r in self.incoming.values())

    async def close(self) -> None:
        for track in self.tracks.values():
            track.stop()
        await self.pc.close()


def _other(party: Party) -> Party:
    return "customer" if party == "specialist" else "specialist"


class CallBridge:
    """Terminates both legs of one call and forwards encoded media between them."""

    def __init__(
        self,
        call_id: str,
        *,
        ice_servers: Sequence[Mapping[str, Any]],
        tap: MediaTap,
        send: Outbound,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.call_id = call_id
        self._ice_servers = list(ice_servers)
        self.tap = tap
        self._send = send
        self._clock = clock
        self._lock = asyncio.Lock()
        self._legs: dict[Party, Leg] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retiring: set[asyncio.Task[Any]] = set()  # legs closing after a restart
        self._last_keyframe_request: dict[Party, float] = {}
        # The one codec of each kind both legs use (set by the desk's offer).
        self._codecs: dict[str, list[Any]] | None = None
        self._decoded_closed = 0
        self._closed = False
        self.forwarded = 0
        self.tap_errors = 0
        self.keyframe_requests = 0
        self.generation = 0

    # -- signaling from the parties ----------------------------------------------
    async def on_offer(self, sdp: str) -> None:
        """The desk's offer: a new generation. The node offers the app the one
        codec per kind it takes from the desk's offer and answers the desk with
        it, so that both legs connect in parallel and carry the same codec.

        The app's offer goes first: the app's leg needs one more round trip
        (offer, answer) than the desk's, so it is the one the call waits for.
        The desk's leg takes the desk's offer before that, so that the desk's
        trickled candidates have a leg to go to meanwhile."""
        async with self._lock:
            self._check_open()
            codecs = _checked_offer(sdp)  # before anything is torn down for it
            try:
                chosen = {kind: single_codec(kind, codecs[kind]) for kind in codecs}
            except NoCommonCodec as exc:
                raise BridgeRefused("no_common_codec", str(exc)) from exc
            await self._close_legs()
            self.generation += 1
            self._codecs = chosen
            desk = self._new_leg("specialist")
            for kind in chosen:
                transceiver = desk.pc.addTransceiver(desk.tracks[kind], direction="sendrecv")
                transceiver.setCodecPreferences(chosen[kind])
            try:
                await desk.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except (ValueError, InternalError, InvalidStateError, OperationError) as exc:
                await self._close_legs()
                raise BridgeRefused("invalid_sdp", f"the offer was refused: {exc}") from exc
            for transceiver in desk.pc.getTransceivers():
                self._divert(desk, transceiver)
            offer = await self._offer_app(chosen)
            generation = self.generation
        await self._send(
            self.call_id,
            "customer",
            {"type": "webrtc.offer", "call_id": self.call_id, "sdp": offer},
        )
        async with self._lock:
            if (
                self._closed
                or self.generation != generation
                or self._legs.get("specialist") is not desk
            ):
                return  # restarted or closed meanwhile: this offer is stale
            await desk.pc.setLocalDescription(await desk.pc.createAnswer())
            answer = str(desk.pc.localDescription.sdp)
        await self._send(
            self.call_id,
            "specialist",
            {"type": "webrtc.answer", "call_id": self.call_id, "sdp": answer},
        )

    async def reconnect_app(self) -> None:
        """Give the app a new leg (and a new offer) while the desk's leg stays up.

        Its video starts at the desk's next keyframe, which the new leg asks for.
        """
        async with self._lock:
            self._check_open()
            desk, old = self._legs.get("specialist"), self._legs.pop("customer", None)
            if desk is None or self._codecs is None:
                raise BridgeRefused("illegal_state", "the desk's leg is not up")
            if old is not None:
                self._report_gap(old)
                self._decoded_closed += old.decoded
                await old.close()
            offer = await self._offer_app(self._codecs)
        await self._send(
            self.call_id,
            "customer",
            {"type": "webrtc.offer", "call_id": self.call_id, "sdp": offer},
        )

    async def _offer_app(self, codecs: Mapping[str, list[Any]]) -> str:
        leg = self._new_leg("customer")
        for kind in codecs:
            transceiver = leg.pc.addTransceiver(leg.tracks[kind], direction="sendrecv")
            transceiver.setCodecPreferences(codecs[kind])
            self._divert(leg, transceiver)
        await leg.pc.setLocalDescription(await leg.pc.createOffer())
        return str(leg.pc.localDescription.sdp)

    async def on_answer(self, sdp: str) -> None:
        """The app's answer to the node's offer."""
        async with self._lock:
            self._check_open()
            app = self._legs.get("customer")
            if app is None or app.pc.signalingState != "have-local-offer":
                raise BridgeRefused(
                    "illegal_state", "no offer of the node is waiting for an answer"
                )
            try:
                for kind in {t.kind for t in app.pc.getTransceivers()}:
                    negotiated_codec(sdp, kind)  # the app took the one codec it was offered
                await app.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except NoCommonCodec as exc:
                raise BridgeRefused("no_common_codec", str(exc)) from exc
            except (ValueError, InternalError, InvalidStateError, OperationError) as exc:
                raise BridgeRefused("invalid_sdp", f"answer refused: {exc}") from exc
            await self._flush_candidates(app)
            # The app's leg connects now. A keyframe of the desk's asked for now
            # comes in about when the leg is up; its forwarder keeps it until then.
            self._want_keyframe("specialist")

    async def on_ice(self, party: Party, candidate: Mapping[str, Any] | None) -> None:
        """A trickled candidate of ``party`` (``None``: end of candidates)."""
        async with self._lock:
            self._check_open()
            rtc = _rtc_candidate(candidate)
            leg = self._legs.get(party)
            if leg is None:
                return  # a candidate for a leg that is gone: nothing to add it to
            if leg.pc.remoteDescription is None:
                leg.pending_candidates.append(rtc)
            else:
                await leg.pc.addIceCandidate(rtc)

    async def restart(self) -> None:
        """Both parties build new peer connections: drop the current legs."""
        async with self._lock:
            self._retire(self._detach_legs())
            self._codecs = None

    async def party_left(self, party: Party) -> None:
        """A party's socket dropped: its leg is useless; the other waits for the restart."""
        async with self._lock:
            leg = self._legs.pop(party, None)
            if leg is not None:
                self._decoded_closed += leg.decoded
                self._report_gap(leg)
                self._retire([leg])

    # -- stats -------------------------------------------------------------------------
    @property
    def decoded(self) -> int:
        """Frames of this call that reached an aiortc decoder (stays zero)."""
        return self._decoded_closed + sum(leg.decoded for leg in self._legs.values())

    def leg(self, party: Party) -> Leg | None:
        return self._legs.get(party)

    @property
    def leg_count(self) -> int:
        return len(self._legs)

    # -- lifecycle -----------------------------------------------------------------------
    async def close(self) -> None:
        """Close both legs and the tap; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._close_legs()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._retiring, return_exceptions=True)
        await self.tap.close()

    # -- internals -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BridgeRefused("illegal_state", "the call's media is closed")

    def _new_leg(self, party: Party) -> Leg:
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        leg = Leg(party=party, pc=pc)
        source = _other(party)
        for kind in KINDS:
            leg.tracks[kind] = IdleTrack(kind)
            leg.outgoing[kind] = RtpForwarder(
                kind,
                self._codec_name(kind),
                CLOCK_RATES[kind],
                want_keyframe=lambda: self._want_keyframe(source),
            )
        self._legs[party] = leg

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self._legs.get(party) is leg:
                self._report_gap(leg)
            elif pc.connectionState == "connected":
                # A receiver that has just connected needs a keyframe to start with.
                leg.outgoing["video"].request_keyframe()

        return leg

    def _divert(self, leg: Leg, transceiver: RTCRtpTransceiver) -> None:
        kind = transceiver.kind
        if kind not in KINDS or kind in leg.incoming:
            return
        party = leg.party

        # A replaced leg can still hand over packets and frames while it closes;
        # they belong to a connection that is gone and must reach neither the
        # other party nor the recording.
        def on_frame(codec: Any, frame: JitterFrame) -> None:
            if self._legs.get(party) is leg:
                self._record(party, kind, codec.name, frame)

        async def on_packet(packet: RtpPacket, data: bytes) -> None:
            if self._legs.get(party) is not leg:
                return
            sink = self._legs.get(_other(party))
            if sink is not None and await sink.outgoing[kind].forward(packet, data):
                self.forwarded += 1

        leg.incoming[kind] = divert_receiver(transceiver.receiver, kind, on_frame, on_packet)
        forwarder = leg.outgoing[kind]
        forwarder.sink = SenderSink(transceiver.sender, on_start=forwarder.sink_started)
        on_keyframe_request(transceiver.sender, lambda: leg.outgoing["video"].request_keyframe())

    def _codec_name(self, kind: str) -> str:
        """The call's codec of ``kind`` ("VP8", "H264", "opus"); "" if it has none."""
        codecs = (self._codecs or {}).get(kind)
        return str(codecs[0].mimeType.split("/", 1)[1]) if codecs else ""

    def _record(self, source: Party, kind: str, codec: str, frame: JitterFrame) -> None:
        """A complete frame received from ``source`` (its packets are forwarded): to the tap."""
        keyframe = is_keyframe(codec, frame.data)
        try:
            self._write_tap(source, kind, codec, frame, keyframe)
        except Exception:
            # A tap must never raise; if one does, the call still goes on.
            self.tap_errors += 1
            if self.tap_errors == 1:
                log.exception("media.tap_failed", call_id=self.call_id)

    def _write_tap(
        self, source: Party, kind: str, codec: str, frame: JitterFrame, keyframe: bool
    ) -> None:
        self.tap.write(
            EncodedFrame(
                party=source,
                kind=kind,  # type: ignore[arg-type]
                codec=codec,
                data=frame.data,
                timestamp=frame.timestamp,
                clock_rate=CLOCK_RATES[kind],
                keyframe=keyframe,
                arrival=self._clock(),
            )
        )

    def request_keyframe(self, source: Party) -> None:
        """Ask ``source``'s sender for a keyframe (rate-limited): for the recording's
        segments and the video analyser."""
        self._want_keyframe(source)

    def _want_keyframe(self, source: Party) -> None:
        """Ask ``source``'s leg for a keyframe, at most once per interval."""
        now = time.monotonic()
        if now - self._last_keyframe_request.get(source, -1e9) < KEYFRAME_REQUEST_INTERVAL_S:
            return
        leg = self._legs.get(source)
        receiver = leg.incoming.get("video") if leg is not None else None
        if receiver is None or self._closed:
            return
        self._last_keyframe_request[source] = now
        self.keyframe_requests += 1
        task = asyncio.create_task(request_keyframe(receiver.receiver), name="media-pli")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_gap(self, leg: Leg) -> None:
        if not leg.gap_reported:
            leg.gap_reported = True
            self.tap.track_gap(leg.party, since=self._clock())

    def _detach_legs(self) -> list[Leg]:
        """Take every leg out of the call (its frames go nowhere from now on)."""
        legs, self._legs = list(self._legs.values()), {}
        for leg in legs:
            self._decoded_closed += leg.decoded
            self._report_gap(leg)
        return legs

    async def _close_legs(self) -> None:
        legs = self._detach_legs()
        await asyncio.gather(*(leg.close() for leg in legs), return_exceptions=True)

    def _retire(self, legs: list[Leg]) -> None:
        """Close detached legs in the background: a restart or a party's drop is
        answered at once (the returning client waits for it before its
        ``welcome``), while their ICE and DTLS transports shut down meanwhile.
        :meth:`close` waits for them."""
        if not legs:
            return
        task = asyncio.create_task(_close_all(legs), name="media-leg-close")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _flush_candidates(self, leg: Leg) -> None:
        pending, leg.pending_candidates = leg.pending_candidates, []
        for candidate in pending:
            with contextlib.suppress(Exception):  # one bad candidate must not end the leg
                await leg.pc.addIceCandidate(candidate)


async def _close_all(legs: list[Leg]) -> None:
    await asyncio.gather(*(leg.close() for leg in legs), return_exceptions=True)


def _checked_offer(sdp: str) -> dict[str, Any]:
    """The desk offer's codecs by kind, once it is known to be a usable WebRTC offer."""
    try:
        description = SessionDescription.parse(sdp)
        codecs = offered_codecs(sdp)
    except (ValueError, IndexError, KeyError) as exc:
        raise BridgeRefused("invalid_sdp", "the offer cannot be parsed") from exc
    for media in description.media:
        if media.kind in KINDS and (
            media.ice is None
            or not media.ice.usernameFragment
            or not media.dtls
            or not media.dtls.fingerprints
        ):
            # Checked now: the desk's leg is only built once the app has answered.
            raise BridgeRefused("invalid_sdp", f"the {media.kind} section has no ICE or DTLS")
    if not codecs:
        raise BridgeRefused("no_common_codec", "the offer has no audio or video")
    return codecs


def _rtc_candidate(candidate: Mapping[str, Any] | None) -> Any:
    """Wire candidate → aiortc candidate; ``None`` (or "") means end of candidates."""
    if candidate is None:
        return None
    line = str(candidate.get("candidate", "")).removeprefix("candidate:")
    if not line:
        return None
    try:
        rtc = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError) as exc:
        raise BridgeRefused("invalid_message", "malformed ICE candidate") from exc
    rtc.sdpMid = candidate.get("sdpMid")
    rtc.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return rtc
