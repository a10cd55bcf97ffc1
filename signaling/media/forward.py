"""A sending track fed with encoded frames from the other leg: no encoder involved.

aiortc's ``RTCRtpSender`` calls ``recv()`` on its track and, given an
``av.Packet``, only packetises it (``Encoder.pack``). :class:`ForwardTrack` is
that track: the relay :meth:`~ForwardTrack.push`-es each encoded frame received
on the other leg, and the sender takes them out in order.

Bounded: a sender that falls behind (congested leg) loses the oldest frames,
never slows the leg the media comes from. For video, a loss means the picture
would be broken until the next keyframe, so the track then drops delta frames
until a keyframe arrives and asks for one (``want_keyframe``). It asks again,
at most every :data:`KEYFRAME_RETRY_S`, for as long as it keeps dropping delta
frames: a request can be lost, or answered by a keyframe that was itself lost,
and the sender's own encoder sends a keyframe only every few minutes, so a single
request could leave the picture frozen. Not more often: each request makes the
sender encode a large keyframe, and asking again while one is on its way only
costs the leg bandwidth.

A fresh track starts in that state too, and takes no frames until its sender
first asks for one (aiortc starts a sender once the leg's DTLS is up): frames
pushed while the leg is still connecting would only reach the receiver late, as
a burst of stale picture, and then overflow the queue.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

__all__ = ["ForwardTrack", "is_keyframe"]

VIDEO_QUEUE_FRAMES = 60  # 2 s at 30 fps
KEYFRAME_RETRY_S = 1.0
AUDIO_QUEUE_FRAMES = 100  # 2 s of 20 ms Opus frames


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


class ForwardTrack(MediaStreamTrack):
    """Encoded frames of one kind, to be sent as they are on one leg."""

    def __init__(
        self,
        kind: str,
        clock_rate: int,
        want_keyframe: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._time_base = fractions.Fraction(1, clock_rate)
        self._frames: deque[av.Packet[Any]] = deque(
            maxlen=VIDEO_QUEUE_FRAMES if kind == "video" else AUDIO_QUEUE_FRAMES
        )
        self._ready = asyncio.Event()
        self._want_keyframe = want_keyframe
        self._waiting_for_keyframe = kind == "video"
        self._sending = False  # set by the sender's first recv()
        self._clock = clock
        self._asked_at = -1e9
        self.pushed = 0
        self.dropped = 0

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting_for_keyframe

    def push(self, data: bytes, timestamp: int, keyframe: bool) -> None:
        """Queue one encoded frame (``timestamp`` in the track's clock rate)."""
        if self.readyState != "live":
            return
        if not self._sending:
            self.dropped += 1
            return
        if self._waiting_for_keyframe:
            if not keyframe:
                self.dropped += 1
                if self._clock() - self._asked_at >= KEYFRAME_RETRY_S:
                    self.request_keyframe()
                return
            self._waiting_for_keyframe = False
        if len(self._frames) == self._frames.maxlen:
            # Full: the leg cannot keep up. Drop what is queued rather than
            # stall the source; video must restart from a keyframe.
            self.dropped += len(self._frames)
            self._frames.clear()
            if self.kind == "video":
                self._waiting_for_keyframe = True
                self.request_keyframe()
                if not keyframe:
                    self.dropped += 1
                    return
                self._waiting_for_keyframe = False
        packet = av.Packet(data)
        packet.pts = timestamp
        packet.time_base = self._time_base
        self._frames.append(packet)
        self.pushed += 1
        self._ready.set()

    def request_keyframe(self) -> None:
        """The receiving end of this track's leg needs a keyframe."""
        if self.kind == "video" and self._want_keyframe is not None:
            self._asked_at = self._clock()
            self._want_keyframe()

    @property
    def sending(self) -> bool:
        """Whether the leg's sender has started taking frames."""
        return self._sending

    async def recv(self) -> av.Packet[Any]:
        if not self._sending:
            self._sending = True
            self.request_keyframe()  # the receiver starts on a keyframe
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()  # wake a pending recv() so that it raises
