"""The one place that reaches into aiortc's internals to forward encoded media.

aiortc decodes everything it receives and offers no public pass-through. The
media node needs the encoded frames as received (to forward them to the other
leg and to record them) and must never spend CPU decoding them. This module:

- **diverts a receiver**: swaps the queue between the receiver's jitter buffer
  and its decoder thread for one that hands each complete encoded frame to a
  callback on the event loop (the recorder's and the analyser's tap); the
  decoder thread then only ever sees the stop sentinel, so nothing is decoded.
  It also swaps the jitter buffer itself: audio packets (one Opus frame each)
  go straight through, and a video frame is released as soon as its marker
  packet completes it instead of when the next frame's first packet arrives
  (which would add one frame interval of latency). The buffer also hands every
  RTP packet it is given (after aiortc's own receive bookkeeping: RTCP
  statistics, RTX unwrapping, NACK generation, bitrate estimation) to a
  packet callback, awaited right after the receiver has handled the packet:
  that is where the relay forwards it;
- **sends RTP on a sender's transport** (:class:`SenderSink`): a packet
  received on the other leg goes out as this sender's own stream (its SSRC
  and payload type, the sequence number and timestamp the caller gives, this
  leg's header extensions), kept in the sender's retransmission history so
  that aiortc answers this leg's NACKs itself, and counted in its sender
  reports. The sender's own packetising loop never runs: its track never
  yields a frame;
- **paces a video receiver's congestion feedback**: aiortc's receive-side
  estimator sees every packet's bytes (once per burst of packets sent
  together, see :class:`PacedEstimator`), but while it sees the link
  overusing it asks for a REMB on nearly every packet; the node sends at most
  one per :data:`REMB_INTERVAL_MS` (libwebrtc's own pace), each carrying the
  latest estimate;
- **requests a keyframe** from the remote sender of a receiver (RTCP PLI);
- **hooks a sender's keyframe requests** (PLI/FIR from its remote receiver) so
  they can be propagated to the leg that produces the media.

Forwarding whole RTP packets (rather than frames re-packetised by the
sender) saves the node the sender's per-frame loop, the ``av.Packet`` for each
frame and the repacketising; what is left per packet is SRTP, the socket and
aiortc's receive bookkeeping.

Everything here is tested against the aiortc versions in
:data:`TESTED_AIORTC_VERSIONS` (and pinned to that range in ``pyproject.toml``);
:func:`check_internals` fails loudly, naming what moved, if they change.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiortc
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket

__all__ = [
    "TESTED_AIORTC_VERSIONS",
    "AiortcInternalsChanged",
    "DivertedReceiver",
    "PacedEstimator",
    "SenderSink",
    "check_internals",
    "divert_receiver",
    "on_keyframe_request",
    "request_keyframe",
]

TESTED_AIORTC_VERSIONS: Final = ("1.16.",)
"""aiortc releases (prefixes) whose internals this module was tested against."""

REMB_INTERVAL_MS: Final = 200
"""At most one REMB per video receiver per this many milliseconds."""

BURST_SEND_TIME: Final = (1 << 18) // 1000
"""Packets sent within this much abs-send-time (6.18 fixed-point seconds: 1 ms)
of a burst's first are one burst for the bitrate estimator."""

# Name-mangled private attributes of RTCRtpReceiver this module swaps.
_ESTIMATOR: Final = "_RTCRtpReceiver__remote_bitrate_estimator"
_DECODER_QUEUE: Final = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD: Final = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER: Final = "_RTCRtpReceiver__jitter_buffer"

# Name-mangled private attributes of RTCRtpSender a SenderSink reads or updates.
_SENDER_HISTORY: Final = "_RTCRtpSender__rtp_history"
_SENDER_MID: Final = "_RTCRtpSender__mid"
_SENDER_EXTENSIONS: Final = "_RTCRtpSender__rtp_header_extensions_map"
_SENDER_REPORT: Final = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)

# NTP time (RFC 5905) as aiortc's clock gives it: seconds since 1900 in 32.32 fixed point.
_NTP_EPOCH_S: Final = 2_208_988_800
_NTP_ONE_S: Final = 1 << 32

# What one complete encoded frame is handed to: (codec, frame).
OnFrame = Callable[[Any, JitterFrame], None]
# What each received RTP packet is handed to: (packet, its depayloaded bytes).
OnPacket = Callable[[RtpPacket, bytes], Awaitable[None]]


class AiortcInternalsChanged(RuntimeError):
    """The aiortc installed does not have the internals the media node relies on."""


def check_internals() -> None:
    """Raise :class:`AiortcInternalsChanged` unless every internal used here exists.

    Called when a media node starts, so a changed aiortc stops the node at once
    instead of silently decoding (or dropping) every call's media.
    """
    version = getattr(aiortc, "__version__", "?")
    problems: list[str] = []
    if not version.startswith(TESTED_AIORTC_VERSIONS):
        problems.append(f"aiortc {version} is not one of {TESTED_AIORTC_VERSIONS}")
    # Name mangling happens at compile time: the mangled names are in co_names.
    for name in (_DECODER_QUEUE, _DECODER_THREAD, _JITTER_BUFFER, _ESTIMATOR):
        if name not in RTCRtpReceiver.__init__.__code__.co_names:
            problems.append(f"RTCRtpReceiver no longer sets {name}")
    if _ESTIMATOR not in RTCRtpReceiver._handle_rtp_packet.__code__.co_names:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer feeds its bitrate estimator")
    if not callable(getattr(RemoteBitrateEstimator, "add", None)):
        problems.append("RemoteBitrateEstimator.add is gone")
    handle = RTCRtpReceiver._handle_rtp_packet.__code__.co_names
    if _JITTER_BUFFER not in handle or "depayload" not in handle:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer depayloads into its buffer")
    sender_names = RTCRtpSender.__init__.__code__.co_names
    for name in (_SENDER_HISTORY, _SENDER_MID, _SENDER_EXTENSIONS, *_SENDER_REPORT, "_ssrc"):
        if name not in sender_names:
            problems.append(f"RTCRtpSender no longer sets {name}")
    if _SENDER_HISTORY not in RTCRtpSender._retransmit.__code__.co_names:
        problems.append("RTCRtpSender._retransmit no longer answers NACKs from its history")
    if not callable(getattr(RTCDtlsTransport, "_send_rtp", None)):
        problems.append("RTCDtlsTransport._send_rtp is gone")
    if not {"abs_send_time", "audio_level", "mid"} <= set(vars(HeaderExtensions)):
        problems.append("HeaderExtensions no longer has abs_send_time, audio_level and mid")
    if _DECODER_QUEUE not in RTCRtpReceiver.receive.__code__.co_names:
        problems.append("RTCRtpReceiver.receive no longer hands its decoder queue to the thread")
    for method in ("_handle_rtp_packet", "_send_rtcp_pli", "receive", "getSynchronizationSources"):
        if not callable(getattr(RTCRtpReceiver, method, None)):
            problems.append(f"RTCRtpReceiver.{method} is gone")
    for method in ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame", "send"):
        if not callable(getattr(RTCRtpSender, method, None)):
            problems.append(f"RTCRtpSender.{method} is gone")
    if "_send_keyframe" not in RTCRtpSender._handle_rtcp_packet.__code__.co_names:
        problems.append("RTCRtpSender._handle_rtcp_packet no longer calls _send_keyframe")
    if "pack" not in RTCRtpSender._next_encoded_frame.__code__.co_names:
        problems.append("RTCRtpSender._next_encoded_frame no longer packs pre-encoded packets")
    buffer = JitterBuffer(capacity=16, is_video=True)
    for attribute in ("_packets", "_origin", "_capacity", "remove"):
        if not hasattr(buffer, attribute):
            problems.append(f"JitterBuffer.{attribute} is gone")
    if JitterFrame(data=b"", timestamp=0).__dict__.keys() != {"data", "timestamp"}:
        problems.append("JitterFrame is no longer (data, timestamp)")
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))


class _DivertingQueue(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue: frames go to ``on_frame``.

    The receiver puts ``(codec, frame)`` here on the event loop thread (from
    ``_handle_rtp_packet``); ``None`` is its stop sentinel, which must still
    reach the decoder thread so that it exits and ends the receiver's track.
    ``decoded`` counts anything other than the sentinel that the decoder thread
    takes out: it stays zero while the diversion works.
    """

    def __init__(self, on_frame: OnFrame) -> None:
        super().__init__()
        self.on_frame = on_frame
        self.diverted = 0
        self.decoded = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        self.diverted += 1
        codec, frame = item
        self.on_frame(codec, frame)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if item is not None:
            self.decoded += 1
        return item


class _PassThroughAudioBuffer(JitterBuffer):
    """Audio: every RTP packet is one Opus frame; release it on arrival.

    Reordering and concealment are left to the receiving client's own jitter
    buffer, which sees the packets on the other leg.
    """

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        super().__init__(capacity=16)
        self.on_packet = on_packet

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        self.on_packet(packet)
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


class _MarkerVideoBuffer(JitterBuffer):
    """aiortc's video jitter buffer, releasing a frame when its marker packet
    completes it (aiortc's own waits for the next frame's first packet)."""

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        super().__init__(capacity=512, is_video=True)
        self.on_packet = on_packet

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        self.on_packet(packet)
        pli_flag, frame = super().add(packet)
        if frame is None and packet.marker:
            frame = self._take_marked_frame()
        return pli_flag, frame

    def _take_marked_frame(self) -> JitterFrame | None:
        if self._origin is None:
            return None
        parts: list[bytes] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or (timestamp is not None and packet.timestamp != timestamp):
                return None  # a gap: wait for the missing packet (or aiortc's own release)
            timestamp = packet.timestamp
            parts.append(packet._data)  # type: ignore[attr-defined]  # set by depayloading
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(parts), timestamp=timestamp)
        return None


class PacedEstimator:
    """Stands in for a video receiver's ``RemoteBitrateEstimator``: the estimate
    follows every packet's bytes, a REMB is asked for at most every ``interval_ms``.

    A burst (packets sent within :data:`BURST_SEND_TIME` of the burst's first:
    one frame's packets, or a pacer's burst) reaches the estimator as one packet
    with the burst's bytes, its last send time and its last arrival. That is
    what the estimator makes of a burst anyway (it groups packets sent within
    5 ms and uses each group's size and last send and arrival times), at a
    third of the cost for a frame of three packets. A burst is handed on when
    the next one begins.
    """

    def __init__(self, inner: Any, interval_ms: int = REMB_INTERVAL_MS) -> None:
        self.inner = inner
        self.interval_ms = interval_ms
        self._sent_at_ms: int | None = None
        self._burst: list[int] | None = None  # [first send time, arrival, send time, size, ssrc]
        self.held = 0

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        burst = self._burst
        if (
            burst is not None
            and burst[4] == ssrc
            and (abs_send_time - burst[0]) & 0xFFFFFF < BURST_SEND_TIME
        ):
            burst[1], burst[2], burst[3] = arrival_time_ms, abs_send_time, burst[3] + payload_size
            return None
        self._burst = [abs_send_time, arrival_time_ms, abs_send_time, payload_size, ssrc]
        if burst is None:
            return None
        remb: tuple[int, list[int]] | None = self.inner.add(
            arrival_time_ms=burst[1], abs_send_time=burst[2], payload_size=burst[3], ssrc=burst[4]
        )
        if remb is None:
            return None
        if self._sent_at_ms is not None and burst[1] - self._sent_at_ms < self.interval_ms:
            self.held += 1
            return None
        self._sent_at_ms = burst[1]
        return remb


@dataclass
class DivertedReceiver:
    """A receiver whose encoded frames go to a callback instead of a decoder."""

    receiver: RTCRtpReceiver
    _queue: _DivertingQueue

    @property
    def diverted(self) -> int:
        """Encoded frames handed to the callback."""
        return self._queue.diverted

    @property
    def decoded(self) -> int:
        """Frames that reached aiortc's decoder (zero while diverted)."""
        return self._queue.decoded

    @property
    def decoder_thread(self) -> Any:
        """aiortc's (idle) decoder thread of this receiver, once it has started."""
        return getattr(self.receiver, _DECODER_THREAD, None)


def divert_receiver(
    receiver: RTCRtpReceiver, kind: str, on_frame: OnFrame, on_packet: OnPacket | None = None
) -> DivertedReceiver:
    """Send ``receiver``'s complete encoded frames to ``on_frame`` and decode nothing.

    Must be called before the receiver starts (``receive()`` starts the decoder
    thread with whatever queue is in place then): right after the transceiver
    exists, i.e. after ``addTransceiver`` or ``setRemoteDescription(offer)``.
    The frame's timestamp is already rebased to start at zero, in the codec's
    clock rate; ``on_frame`` runs on the event loop and must not block.

    ``on_packet``, if given, is awaited with every RTP packet the receiver
    accepts (RTX already unwrapped; the packet's own sequence number, timestamp
    and SSRC) and its depayloaded bytes, after the receiver has handled it. It
    must not change the packet: the jitter buffer keeps it.
    """
    if getattr(receiver, _DECODER_THREAD, None) is not None:
        raise AiortcInternalsChanged("receiver already started: too late to divert it")
    if not isinstance(getattr(receiver, _DECODER_QUEUE, None), queue.Queue):
        raise AiortcInternalsChanged(f"RTCRtpReceiver has no {_DECODER_QUEUE}")
    diverting = _DivertingQueue(on_frame)
    setattr(receiver, _DECODER_QUEUE, diverting)
    estimator = getattr(receiver, _ESTIMATOR, None)
    if estimator is not None and not isinstance(estimator, PacedEstimator):
        setattr(receiver, _ESTIMATOR, PacedEstimator(estimator))
    pending: list[RtpPacket] = []
    buffer = _PassThroughAudioBuffer if kind == "audio" else _MarkerVideoBuffer
    setattr(receiver, _JITTER_BUFFER, buffer(pending.append if on_packet else _keep_none))
    if on_packet is not None:
        handle = receiver._handle_rtp_packet

        async def handle_and_forward(packet: RtpPacket, arrival_time_ms: int) -> None:
            await handle(packet, arrival_time_ms)
            if pending:  # one packet, unless the receiver dropped it before its buffer
                batch = pending[:]
                pending.clear()
                for accepted in batch:
                    await on_packet(accepted, accepted._data)  # type: ignore[attr-defined]

        # The DTLS transport looks the handler up on the receiver for every packet.
        receiver._handle_rtp_packet = handle_and_forward  # type: ignore[method-assign]
    return DivertedReceiver(receiver, diverting)


def _keep_none(packet: RtpPacket) -> None:
    """A receiver nothing forwards from keeps no packets for it."""


class SenderSink:
    """Sends RTP packets received on another leg as ``sender``'s own stream.

    The sender stays aiortc's: it negotiated the leg's payload type and header
    extensions, sends the leg's RTCP sender reports, answers its NACKs (from
    its history, over RTX) and takes its PLI/FIR (see
    :func:`on_keyframe_request`). Its track must never yield a frame, so that
    aiortc's own packetising loop sends nothing. ``on_start`` is awaited once,
    when aiortc starts the sender (the leg's DTLS is up), and may send.
    """

    def __init__(self, sender: RTCRtpSender, on_start: Callable[[], Awaitable[None]]) -> None:
        self._sender = sender
        self.payload_type: int | None = None
        self._packets = self._octets = 0
        start = sender.send

        async def send(parameters: Any) -> None:
            await start(parameters)
            if self.payload_type is None:
                # What the sender settled on when it started, read once, not per packet.
                self._ssrc: int = sender._ssrc
                self._mid: str | None = getattr(sender, _SENDER_MID)
                self._history: dict[int, RtpPacket] = getattr(sender, _SENDER_HISTORY)
                self._extensions: Any = getattr(sender, _SENDER_EXTENSIONS)
                self._transport: RTCDtlsTransport = sender.transport
                self.payload_type = parameters.codecs[0].payloadType
                await on_start()

        # RTCPeerConnection looks ``send`` up on the sender when the leg connects.
        sender.send = send  # type: ignore[method-assign]

    @property
    def started(self) -> bool:
        return self.payload_type is not None

    async def send(self, packet: RtpPacket, sequence_number: int, timestamp: int) -> bool:
        """Send ``packet``'s payload with this sender's SSRC and payload type and the
        given sequence number and timestamp. False if the leg cannot send (yet)."""
        payload_type = self.payload_type
        if payload_type is None:
            return False
        out = RtpPacket(
            payload_type=payload_type,
            marker=packet.marker,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=self._ssrc,
            payload=packet.payload,
        )
        now = int((time.time() + _NTP_EPOCH_S) * _NTP_ONE_S)  # aiortc's clock, cheaper
        extensions = out.extensions
        extensions.abs_send_time = (now >> 14) & 0x00FFFFFF  # for this leg's estimator
        extensions.mid = self._mid
        extensions.audio_level = packet.extensions.audio_level
        self._history[sequence_number % RTP_HISTORY_SIZE] = out
        try:
            await self._transport._send_rtp(out.serialize(self._extensions))
        except ConnectionError:
            return False
        # What the sender's next RTCP sender report says it sent.
        self._packets += 1
        self._octets += len(out.payload)
        sender, (ntp, rtp, octets, packets) = self._sender, _SENDER_REPORT
        setattr(sender, ntp, now)
        setattr(sender, rtp, timestamp)
        setattr(sender, octets, self._octets)
        setattr(sender, packets, self._packets)
        return True


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender of ``receiver`` for a keyframe (RTCP PLI to each of
    its sources). Returns False when no source is known yet."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever ``sender``'s remote receiver asks for a keyframe.

    aiortc's sender turns an incoming PLI or FIR into ``_send_keyframe()``,
    which only flags its encoder; a pass-through sender has no encoder to flag,
    so the request must travel to the leg the media comes from.
    """
    sender._send_keyframe = callback  # type: ignore[method-assign]
