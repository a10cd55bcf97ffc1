"""The seam between the media relay and what consumes a call's media as received.

The relay forwards each party's encoded media to the other party without
transcoding and, for every frame it forwards, hands an :class:`EncodedFrame` to
the call's :class:`MediaTap` (the compliance recorder, with the integrity
analyser composed after it: :mod:`signaling.integrity.tap`). A tap must never
slow the call down: :meth:`MediaTap.write` is called on the event loop, does no
I/O and never blocks; a tap that cannot keep up drops
and says so (``healthy`` turns false and the gap is recorded), it never
back-pressures the relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Party = Literal["customer", "specialist"]
Kind = Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame as the node received it (a depacketised video frame or an audio packet)."""

    party: Party
    kind: Kind
    codec: str  # the RTP codec's mime subtype as negotiated: "VP8", "H264", "opus"
    data: bytes
    timestamp: int  # RTP timestamp, in units of ``clock_rate``
    clock_rate: int  # 90000 for video, 48000 for Opus
    keyframe: bool  # always True for audio
    arrival: float  # wall-clock seconds (time.time()) when the node received it


class MediaTap(Protocol):
    """What a call's media is written to while the relay forwards it."""

    def write(self, frame: EncodedFrame) -> None:
        """Take one frame; non-blocking, never raises because a queue is full."""

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        """Note a moment that matters (wall-clock ``at``), e.g. a customer confirmation."""

    def track_gap(self, party: Party, *, since: float) -> None:
        """A party's leg dropped at ``since``; frames after it resume the track."""

    @property
    def healthy(self) -> bool:
        """False once anything written was lost (queue full, storage failing)."""

    async def close(self) -> None:
        """Flush and close; safe to call twice."""


class MediaTapFactory(Protocol):
    """Opens the tap for a call when its media starts on this node."""

    async def open(self, call_id: str, *, started_at: float) -> MediaTap: ...


class NullTap:
    """A tap that keeps nothing: ``direct`` mode, or recording explicitly disabled."""

    healthy = True

    def write(self, frame: EncodedFrame) -> None:
        return None

    def mark(self, kind: str, *, at: float, operation_id: str | None = None) -> None:
        return None

    def track_gap(self, party: Party, *, since: float) -> None:
        return None

    async def close(self) -> None:
        return None


class NullTaps:
    """A tap factory whose taps keep nothing: a node given no recorder or analyser."""

    async def open(self, call_id: str, *, started_at: float) -> MediaTap:
        return NullTap()
