"""One party's audio or video track, muxed as received into short Matroska segments.

Runs in the call's writer thread, never on the event loop. Frames are muxed with
PyAV as packets (no decoding, no encoding) into memory; what the muxer emits is
sealed in chunks (up to :data:`CHUNK_BYTES` or :data:`CHUNK_SPAN_S` of media)
and appended to the open segment's file in the spool folder, so no plaintext
media touches the disk. A segment ends after
``target_s`` at the next keyframe (video) or frame (audio), and in any case
before ``max_s``; it is then finished, fsynced and handed on.
"""

from __future__ import annotations

import fractions
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from signaling.media.tap import EncodedFrame, Kind, Party

from .segment import SegmentSealer, encode_header

_MKV_OPTIONS = {"live": "1", "cluster_time_limit": "1000"}
_ENCODER_NAMES = {"VP8": "libvpx", "VP9": "libvpx-vp9", "H264": "libx264", "OPUS": "libopus"}
# Minimal Opus identification header (RFC 7845 §5.1): v1, 2 channels, 312 pre-skip, 48 kHz.
_OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
_MS = fractions.Fraction(1, 1000)
CHUNK_BYTES = 64 * 1024
"""Muxed bytes sealed together as one chunk, at most (or after ``CHUNK_SPAN_S``)."""
CHUNK_SPAN_S = 0.5


@dataclass(frozen=True)
class SegmentLimits:
    target_s: float = 6.0
    max_s: float = 10.0


@dataclass(frozen=True)
class ClosedSegment:
    """A finished segment file in the spool folder, ready to index and store."""

    call_id: str
    party: Party
    kind: Kind
    codec: str
    track_index: int
    segment_id: str
    start_s: float  # media time (seconds since the recording started)
    end_s: float
    frames: int
    size: int
    sha256: str
    path: Path
    keyframe_start: bool
    complete: bool = True  # False: salvaged after a crash, cut at its last whole chunk

    @property
    def storage_key(self) -> str:
        return storage_key(self.call_id, self.party, self.kind, self.track_index, self.segment_id)


def storage_key(call_id: str, party: str, kind: str, track_index: int, segment_id: str) -> str:
    return f"{call_id}/{party}-{kind}-{track_index:05d}-{segment_id}.cbseg"


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1)."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(
        data[8:10], "little"
    ) & 0x3FFF


class _Sink:
    """A write-only, non-seekable file for PyAV: the muxer streams, never rewrites."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


@dataclass
class _OpenSegment:
    path: Path
    fd: int
    sealer: SegmentSealer
    container: Any
    stream: Any
    sink: _Sink
    header: dict[str, Any]
    first_pts: int
    last_pts: int
    hasher: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    chunks: int = 0
    frames: int = 0
    keyframe_wanted: bool = False
    sealed_pts: int = 0  # media time of the frame after which the last chunk was sealed


class TrackWriter:
    """Muxes one track's frames into consecutive segment files."""

    def __init__(
        self,
        *,
        call_id: str,
        party: Party,
        kind: Kind,
        spool: Path,
        started_at: float,
        recording_key: bytes | None,
        wrapped_key: dict[str, Any] | None,
        limits: SegmentLimits,
        first_index: int = 0,
        want_keyframe: Callable[[Party], None] | None = None,
    ) -> None:
        self.call_id = call_id
        self.party: Party = party
        self.kind: Kind = kind
        self.spool = spool
        self.started_at = started_at
        self.key = recording_key
        self.wrapped_key = wrapped_key
        self.limits = limits
        self.next_index = first_index
        self.want_keyframe = want_keyframe
        self.segment: _OpenSegment | None = None
        self.need_keyframe = kind == "video"
        self.width, self.height = 640, 480
        self._anchor: tuple[int, int] | None = None  # (extended RTP ts, pts) at the anchor
        self._last_rtp: int | None = None
        self._ext_rtp = 0
        self._last_pts = -1
        self._frame_ticks = 0
        self.skipped = 0

    # -- timing ------------------------------------------------------------------------
    def resync(self) -> None:
        """The sender's RTP clock starts over (the leg dropped): anchor on arrival again."""
        self._anchor = None
        self._last_rtp = None
        if self.kind == "video":
            self.need_keyframe = True

    def _pts(self, frame: EncodedFrame) -> int:
        """Media time of ``frame`` in its clock's units, monotonic within the track."""
        if self._last_rtp is None:
            self._ext_rtp = frame.timestamp
        else:
            delta = (frame.timestamp - self._last_rtp) & 0xFFFFFFFF
            self._ext_rtp += delta - (1 << 32) if delta >= 1 << 31 else delta
        self._last_rtp = frame.timestamp
        if self._anchor is None:
            arrival_pts = round((frame.arrival - self.started_at) * frame.clock_rate)
            self._anchor = (self._ext_rtp, max(arrival_pts, self._last_pts + 1, 0))
        pts = self._anchor[1] + self._ext_rtp - self._anchor[0]
        if pts <= self._last_pts:
            pts = self._last_pts + 1
        if self._last_pts >= 0 and pts - self._last_pts < frame.clock_rate:
            self._frame_ticks = pts - self._last_pts
        self._last_pts = pts
        return pts

    # -- frames ------------------------------------------------------------------------
    def add(self, frame: EncodedFrame) -> ClosedSegment | None:
        """Mux one frame; returns the segment it closed, if it started a new one."""
        if self.kind == "video" and frame.keyframe and frame.codec.upper() == "VP8":
            size = vp8_size(frame.data)
            if size is not None and size != (self.width, self.height):
                self.width, self.height = size
                if self.segment is not None:
                    pts = self._pts(frame)
                    closed = self.close()
                    self._write(frame, pts)
                    return closed
        if self.need_keyframe and not frame.keyframe:
            self.skipped += 1
            return None
        self.need_keyframe = False
        pts = self._pts(frame)
        closed = None
        segment = self.segment
        if segment is not None:
            span_s = (pts - segment.first_pts) / frame.clock_rate
            at_boundary = frame.keyframe or self.kind == "audio"
            if (span_s >= self.limits.target_s and at_boundary) or span_s >= self.limits.max_s:
                closed = self.close()
            elif span_s >= self.limits.target_s and not segment.keyframe_wanted:
                segment.keyframe_wanted = True
                if self.want_keyframe is not None:
                    self.want_keyframe(self.party)
        self._write(frame, pts)
        return closed

    def _write(self, frame: EncodedFrame, pts: int) -> None:
        if self.segment is None:
            self.segment = self._open(frame, pts)
        segment = self.segment
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, frame.clock_rate)
        if self.kind == "audio":
            packet.duration = self._frame_ticks or 960
        packet.is_keyframe = frame.keyframe
        packet.stream = segment.stream
        segment.container.mux(packet)
        segment.frames += 1
        segment.last_pts = pts
        # Sealed per chunk, not per frame: one AES-GCM call, one write and one hash
        # update per chunk. A crash loses at most the unsealed tail (under a second),
        # which salvage cuts off like any torn chunk.
        if len(segment.sink.buffer) >= CHUNK_BYTES or (
            segment.sink.buffer and pts - segment.sealed_pts >= CHUNK_SPAN_S * frame.clock_rate
        ):
            segment.sealed_pts = pts
            self._seal(segment, segment.sink.take(), final=False, clock=frame.clock_rate)

    # -- segments ----------------------------------------------------------------------
    def _open(self, frame: EncodedFrame, pts: int) -> _OpenSegment:
        index = self.next_index
        self.next_index += 1
        segment_id = uuid.uuid4().hex[:16]
        start_s = pts / frame.clock_rate
        header: dict[str, Any] = {
            "format": "matroska",
            "call_id": self.call_id,
            "party": self.party,
            "kind": self.kind,
            "codec": frame.codec,
            "clock_rate": frame.clock_rate,
            "track_index": index,
            "segment_id": segment_id,
            "start_s": round(start_s, 6),
            "keyframe_start": frame.keyframe,
            "recording_started_at": self.started_at,
            "opened_at": time.time(),
            "encryption": "AES-256-GCM" if self.key is not None else "none",
            "wrapped_key": self.wrapped_key,
        }
        header_bytes = encode_header(header)
        folder = self.spool / self.call_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (
            Path(storage_key(self.call_id, self.party, self.kind, index, segment_id)).name + ".part"
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        sink = _Sink()
        container = av.open(sink, "w", format="matroska", options=_MKV_OPTIONS)
        stream = self._stream(container, frame)
        segment = _OpenSegment(
            path=path,
            fd=fd,
            sealer=SegmentSealer(header_bytes, self.key),
            container=container,
            stream=stream,
            sink=sink,
            header=header,
            first_pts=pts,
            last_pts=pts,
            sealed_pts=pts,
        )
        self._append(segment, header_bytes)
        return segment

    def _stream(self, container: Any, frame: EncodedFrame) -> Any:
        name = _ENCODER_NAMES.get(frame.codec.upper(), frame.codec.lower())
        if self.kind == "video":
            stream = container.add_stream(name, rate=30)
            stream.codec_context.width = self.width
            stream.codec_context.height = self.height
        else:
            stream = container.add_stream(name, rate=frame.clock_rate)
            stream.codec_context.extradata = _OPUS_HEAD
        stream.time_base = _MS
        return stream

    def _append(self, segment: _OpenSegment, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(segment.fd, view)
            view = view[written:]
        segment.hasher.update(data)
        segment.size += len(data)

    def _seal(self, segment: _OpenSegment, plain: bytes, *, final: bool, clock: int) -> None:
        end_ms = round((segment.last_pts - segment.first_pts) * 1000 / clock)
        sealed = segment.sealer.seal(
            segment.chunks, plain, final=final, end_ms=end_ms, frames=segment.frames
        )
        segment.chunks += 1
        self._append(segment, sealed)

    def close(self) -> ClosedSegment | None:
        """Finish the open segment: trailer, final chunk, fsync. None if none is open."""
        segment, self.segment = self.segment, None
        if segment is None:
            return None
        clock = int(segment.header["clock_rate"])
        try:
            segment.container.close()
            self._seal(segment, segment.sink.take(), final=True, clock=clock)
            os.fsync(segment.fd)
        finally:
            os.close(segment.fd)
        tail = self._frame_ticks if self._frame_ticks else 0
        return ClosedSegment(
            call_id=self.call_id,
            party=self.party,
            kind=self.kind,
            codec=str(segment.header["codec"]),
            track_index=int(segment.header["track_index"]),
            segment_id=str(segment.header["segment_id"]),
            start_s=segment.first_pts / clock,
            end_s=(segment.last_pts + tail) / clock,
            frames=segment.frames,
            size=segment.size,
            sha256=segment.hasher.hexdigest(),
            path=segment.path,
            keyframe_start=bool(segment.header["keyframe_start"]),
        )

    def abandon(self) -> None:
        """Drop the open segment's muxer without finishing it (the file stays for salvage)."""
        segment, self.segment = self.segment, None
        if segment is not None:
            os.close(segment.fd)
