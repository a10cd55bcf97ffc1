"""The one place that reaches into aiortc's internals to forward encoded media.

aiortc decodes everything it receives and offers no public pass-through. The
media node needs the encoded frames as received (to forward them to the other
leg and to record them) and must never spend CPU decoding them. This module:

- **diverts a receiver**: swaps the queue between the receiver's jitter buffer
  and its decoder thread for one that hands each complete encoded frame to a
  callback on the event loop; the decoder thread then only ever sees the stop
  sentinel, so nothing is decoded. It also swaps the jitter buffer itself:
  audio packets (one Opus frame each) go straight through, and a video frame
  is released as soon as its marker packet completes it instead of when the
  next frame's first packet arrives (which would add one frame interval of
  latency);
- **paces a video receiver's congestion feedback**: aiortc's receive-side
  estimator runs on every packet, as before, but while it sees the link
  overusing it asks for a REMB on nearly every packet; the node sends at most
  one per :data:`REMB_INTERVAL_MS` (libwebrtc's own pace), each carrying the
  latest estimate;
- **requests a keyframe** from the remote sender of a receiver (RTCP PLI);
- **hooks a sender's keyframe requests** (PLI/FIR from its remote receiver) so
  they can be propagated to the leg that produces the media.

Sending pre-encoded frames needs no internals: aiortc's ``RTCRtpSender`` packs
(instead of encoding) whatever ``av.Packet`` a track's ``recv()`` returns.

Everything here is tested against the aiortc versions in
:data:`TESTED_AIORTC_VERSIONS` (and pinned to that range in ``pyproject.toml``);
:func:`check_internals` fails loudly, naming what moved, if they change.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiortc
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

__all__ = [
    "TESTED_AIORTC_VERSIONS",
    "AiortcInternalsChanged",
    "DivertedReceiver",
    "PacedEstimator",
    "check_internals",
    "divert_receiver",
    "on_keyframe_request",
    "request_keyframe",
]

TESTED_AIORTC_VERSIONS: Final = ("1.16.",)
"""aiortc releases (prefixes) whose internals this module was tested against."""

REMB_INTERVAL_MS: Final = 200
"""At most one REMB per video receiver per this many milliseconds."""

# Name-mangled private attributes of RTCRtpReceiver this module swaps.
_ESTIMATOR: Final = "_RTCRtpReceiver__remote_bitrate_estimator"
_DECODER_QUEUE: Final = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD: Final = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER: Final = "_RTCRtpReceiver__jitter_buffer"

# What one complete encoded frame is handed to: (codec, frame).
OnFrame = Callable[[Any, JitterFrame], None]


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
    if _DECODER_QUEUE not in RTCRtpReceiver.receive.__code__.co_names:
        problems.append("RTCRtpReceiver.receive no longer hands its decoder queue to the thread")
    for method in ("_handle_rtp_packet", "_send_rtcp_pli", "receive", "getSynchronizationSources"):
        if not callable(getattr(RTCRtpReceiver, method, None)):
            problems.append(f"RTCRtpReceiver.{method} is gone")
    for method in ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame"):
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

    def __init__(self) -> None:
        super().__init__(capacity=16)

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


class _MarkerVideoBuffer(JitterBuffer):
    """aiortc's video jitter buffer, releasing a frame when its marker packet
    completes it (aiortc's own waits for the next frame's first packet)."""

    def __init__(self) -> None:
        super().__init__(capacity=512, is_video=True)

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
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
    """Stands in for a video receiver's ``RemoteBitrateEstimator``: the estimate is
    updated on every packet, a REMB is asked for at most every ``interval_ms``."""

    def __init__(self, inner: Any, interval_ms: int = REMB_INTERVAL_MS) -> None:
        self.inner = inner
        self.interval_ms = interval_ms
        self._sent_at_ms: int | None = None
        self.held = 0

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        remb: tuple[int, list[int]] | None = self.inner.add(
            arrival_time_ms=arrival_time_ms,
            abs_send_time=abs_send_time,
            payload_size=payload_size,
            ssrc=ssrc,
        )
        if remb is None:
            return None
        if self._sent_at_ms is not None and arrival_time_ms - self._sent_at_ms < self.interval_ms:
            self.held += 1
            return None
        self._sent_at_ms = arrival_time_ms
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


def divert_receiver(receiver: RTCRtpReceiver, kind: str, on_frame: OnFrame) -> DivertedReceiver:
    """Send ``receiver``'s complete encoded frames to ``on_frame`` and decode nothing.

    Must be called before the receiver starts (``receive()`` starts the decoder
    thread with whatever queue is in place then): right after the transceiver
    exists, i.e. after ``addTransceiver`` or ``setRemoteDescription(offer)``.
    The frame's timestamp is already rebased to start at zero, in the codec's
    clock rate; ``on_frame`` runs on the event loop and must not block.
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
    setattr(
        receiver,
        _JITTER_BUFFER,
        _PassThroughAudioBuffer() if kind == "audio" else _MarkerVideoBuffer(),
    )
    return DivertedReceiver(receiver, diverting)


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
