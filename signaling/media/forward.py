"""One leg's outgoing stream of one kind, made of the RTP packets received on the other leg.

The relay forwards media packet by packet, without decoding, depacketising for
the other leg or repacketising: :class:`RtpForwarder` takes each RTP packet the
source leg's receiver accepted and sends it on the sink leg's sender
(:class:`~signaling.media.passthrough.SenderSink`) with the sink's own SSRC
and payload type and with sequence numbers and timestamps rewritten to one
continuous stream: a packet's place relative to its neighbours is kept (a
packet lost upstream is a gap the receiver can NACK, a late retransmission
fills its own place), and when the source changes (the other party's leg
reconnected: a new SSRC, new sequence numbers and clock) the stream goes on
from where it was, one packet and the elapsed time later. The receiving
client never sees a jump.

Video starts on a keyframe. A forwarder sends nothing until its sender has
started (aiortc starts a sender once the leg's DTLS is up). Meanwhile it keeps
the packets from the source's latest keyframe on (at most
:data:`EARLY_PACKETS`), so that a leg that connects just after a keyframe
went by starts with it at once (the node asks for that keyframe when the
leg's party answers, while the leg connects); a keyframe older than
:data:`EARLY_MAX_AGE_S` would show stale picture, so it is let go. Without one,
the forwarder drops packets until the first packet of a keyframe and asks the
source for one (``want_keyframe``). It asks again, at most every :data:`KEYFRAME_RETRY_S`,
for as long as it keeps dropping: a request can be lost, or answered by a
keyframe that was itself lost, and the sender's own encoder sends a keyframe
only every few minutes, so a single request could leave the picture frozen.
Not more often: each request makes the sender encode a large keyframe, and
asking again while one is on its way only costs the leg bandwidth. The same
happens when the source changes.

Nothing is queued: a packet is sent while the source's packet is being
handled, so the relay adds no buffering delay. A leg that cannot keep up
loses packets in its socket, and its receiver's NACKs and PLIs are answered per
leg (retransmission from the sink sender's history; keyframe requests
propagated to the source).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import NoReturn, Protocol

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

__all__ = ["IdleTrack", "PacketSink", "RtpForwarder", "is_keyframe", "starts_keyframe"]

KEYFRAME_RETRY_S = 1.0
EARLY_PACKETS = 128  # about 1.5 s of 800 kb/s video
EARLY_MAX_AGE_S = 0.5


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame starts a picture that decodes on its own."""
    if codec == "VP8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return bool(data) and not data[0] & 0x01
    if codec == "H264":
        # Annex B NAL units as aiortc depayloads them: an IDR slice (5) or SPS (7).
        start = 0
        while True:
            start = data.find(b"\x00\x00\x01", start)
            if start < 0 or start + 3 >= len(data):
                return False
            if data[start + 3] & 0x1F in (5, 7):
                return True
            start += 3
    return True  # audio: every frame stands alone


def starts_keyframe(codec: str, payload: bytes, data: bytes) -> bool:
    """Whether an RTP packet (``payload``, depayloaded to ``data``) is the first of a keyframe."""
    if codec == "VP8":
        # RFC 7741 4.2: S set and partition index 0 mark the first packet of a frame.
        return bool(payload) and payload[0] & 0x1F == 0x10 and is_keyframe(codec, data)
    # H.264: only the first fragment of a NAL unit carries a start code after
    # depayloading (emulation prevention keeps one out of the NAL's bytes).
    return is_keyframe(codec, data)


class PacketSink(Protocol):
    """Where a forwarder's packets go: a leg's sender (``SenderSink``)."""

    @property
    def started(self) -> bool: ...

    async def send(self, packet: RtpPacket, sequence_number: int, timestamp: int) -> bool: ...


class RtpForwarder:
    """The packets of one kind that one leg sends to its party (received on the other leg)."""

    def __init__(
        self,
        kind: str,
        codec: str,
        clock_rate: int,
        want_keyframe: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.codec = codec
        self._clock_rate = clock_rate
        self._want_keyframe = want_keyframe
        self._clock = clock
        self.sink: PacketSink | None = None
        self._waiting_for_keyframe = kind == "video"
        self._asked_at = -1e9
        self._source: int | None = None  # the SSRC being forwarded
        self._rebase = True  # the next packet forwarded continues the stream
        self._first: int = 0  # source sequence number the current mapping starts at
        self._seq_offset = 0
        self._ts_offset = 0
        self._last: tuple[int, int, float] | None = None  # (seq, ts, when) last sent
        # Before the sink starts: the packets from the latest keyframe on, and when it came.
        self._early: list[tuple[RtpPacket, bytes]] = []
        self._early_at = 0.0
        self.forwarded = 0
        self.dropped = 0

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting_for_keyframe

    @property
    def last_sequence_number(self) -> int | None:
        """The (rewritten) sequence number of the newest packet sent, if any."""
        return None if self._last is None else self._last[0]

    @property
    def sending(self) -> bool:
        """Whether the leg's sender has started."""
        return self.sink is not None and self.sink.started

    async def sink_started(self) -> None:
        """The sink's sender has started: its receiver starts on a keyframe, the
        one kept meanwhile if it is recent enough, else one asked for now."""
        early, self._early = self._early, []
        if not early or self._clock() - self._early_at > EARLY_MAX_AGE_S:
            self.request_keyframe()
            return
        # Counted as dropped when they came; they are sent after all.
        self.dropped -= len(early)
        for packet, data in early:
            await self.forward(packet, data)

    def request_keyframe(self) -> None:
        """The receiving end of this leg needs a keyframe."""
        if self.kind == "video" and self._want_keyframe is not None:
            self._asked_at = self._clock()
            self._want_keyframe()

    async def forward(self, packet: RtpPacket, data: bytes) -> bool:
        """Send one packet received from the source (``data``: its depayloaded bytes);
        whether it was sent."""
        if self.sink is None or not self.sink.started:
            self._keep_early(packet, data)
            self.dropped += 1
            return False
        if packet.ssrc != self._source:
            # A new source stream: the other party's leg (re)connected.
            self._source, self._rebase = packet.ssrc, True
            if self.kind == "video" and not self._waiting_for_keyframe:
                self._waiting_for_keyframe = True
                self.request_keyframe()
        if self._waiting_for_keyframe:
            if not starts_keyframe(self.codec, packet.payload, data):
                self.dropped += 1
                if self._clock() - self._asked_at >= KEYFRAME_RETRY_S:
                    self.request_keyframe()
                return False
            self._waiting_for_keyframe, self._rebase = False, True
        if self._rebase:
            self._continue_from(packet)
        elif (packet.sequence_number - self._first) & 0xFFFF >= 0x8000:
            self.dropped += 1  # late: from before where this stream was picked up
            return False
        sequence_number = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        if not await self.sink.send(packet, sequence_number, timestamp):
            self.dropped += 1
            return False
        self.forwarded += 1
        last = self._last
        if last is None or (sequence_number - last[0]) & 0xFFFF < 0x8000:
            self._last = (sequence_number, timestamp, self._clock())
        return True

    def _keep_early(self, packet: RtpPacket, data: bytes) -> None:
        if self.kind != "video":
            return  # audio starts with the next packet anyway
        early = self._early
        if starts_keyframe(self.codec, packet.payload, data):
            self._early, self._early_at = [(packet, data)], self._clock()
        elif early and early[0][0].ssrc == packet.ssrc and len(early) < EARLY_PACKETS:
            early.append((packet, data))
        else:
            early.clear()  # too long ago, or from a source that is gone

    def _continue_from(self, packet: RtpPacket) -> None:
        """Map ``packet`` to the next place in the outgoing stream."""
        self._rebase, self._first = False, packet.sequence_number
        if self._last is None:
            # A stream's first packet: random bases, as an RTP sender picks them
            # (the sequence number in the lower half, so SRTP's rollover is far).
            sequence_number, timestamp = secrets.randbelow(32768), secrets.randbits(32)
        else:
            last_seq, last_ts, sent_at = self._last
            elapsed = max(1, round((self._clock() - sent_at) * self._clock_rate))
            sequence_number, timestamp = last_seq + 1, last_ts + elapsed
        self._seq_offset = (sequence_number - packet.sequence_number) & 0xFFFF
        self._ts_offset = (timestamp - packet.timestamp) & 0xFFFFFFFF


class IdleTrack(MediaStreamTrack):
    """A forwarding sender's track: it never yields a frame, so aiortc's own
    packetising loop waits on it while the forwarder sends the leg's packets
    (the sender's RTCP runs as usual)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> NoReturn:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
