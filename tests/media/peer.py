"""A real aiortc peer for media tests: sends a moving picture and a tone,
decodes what it receives, and counts the decoded frames.

It is transport-agnostic: it is fed the server's media messages through
:meth:`MediaPeer.handle` and hands its own messages to the ``send`` callable it
was given (a WebSocket writer in end-to-end tests, the other peer's ``handle``
in direct tests). Messages use the contract's field names and are built with
the :mod:`signaling.messages` models, so the peer never sends off-contract JSON.

Example, with ``ws`` an open ``aiohttp`` client WebSocket after ``welcome``::

    async def send(message: dict[str, Any]) -> None:
        await ws.send_json(message)

    async with MediaPeer("answerer", [], send, name="customer") as peer:

        async def read() -> None:                  # the socket's one reader
            async for msg in ws:
                await peer.handle(msg.json())      # non-media messages -> False

        reader = asyncio.create_task(read())
        try:
            await peer.wait_for_frames(30, timeout=10)
            print(peer.time_to_first_frame("video"))
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

ICE: aiortc gathers host candidates from every non-loopback interface before
``setLocalDescription`` returns and puts them in the SDP, so trickling is not
needed. With ``trickle=True`` the peer strips candidates from its SDP and sends
them as ``webrtc.ice`` messages followed by the ``null`` end-of-candidates, so a
test proves the server relays ``webrtc.ice``. On a host whose only interface
is loopback, aioice gathers no candidate at all; see
:func:`loopback_only_candidates`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

import aioice.ice
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from pydantic import BaseModel

from signaling.messages import (
    IceCandidate,
    IceServer,
    MediaRestart,
    MediaRole,
    MediaStart,
    MediaState,
    MediaStateValue,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
)
from signaling.rtc import rtc_configuration

__all__ = [
    "ConnectionStats",
    "MediaPeer",
    "MovingPatternTrack",
    "PeerFailed",
    "PeerProtocolError",
    "SineToneTrack",
    "loopback_only_candidates",
]

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
FrameKind = Literal["video", "audio"]

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020


class PeerProtocolError(Exception):
    """The peer received a media message it cannot act on in its current state."""


class PeerFailed(Exception):
    """The peer's connection failed or one of its background tasks raised."""


# --------------------------------------------------------------------------- tracks


class _PacedTrack(MediaStreamTrack):
    """Paces frames on the wall clock: frame ``n`` is due ``n / rate`` after the first."""

    def __init__(self, frames_per_second: float) -> None:
        super().__init__()
        self._interval = 1.0 / frames_per_second
        self._start: float | None = None
        self._index = 0

    async def _next_index(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
            return 0
        self._index += 1
        delay = self._start + self._index * self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return self._index


class MovingPatternTrack(_PacedTrack):
    """Video: a colour gradient scrolling sideways with a bright square bouncing on it.

    Every frame differs from the previous one, so an encoder cannot send only
    "no change" and a receiver can prove that motion arrived.
    """

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: float = 15.0) -> None:
        super().__init__(fps)
        self.width = width
        self.height = height
        self._fps = fps
        y, x = np.mgrid[0:height, 0:width]
        self._base = np.stack(
            [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1
        ).astype(np.uint8)

    async def recv(self) -> av.VideoFrame:
        index = await self._next_index()
        image = np.roll(self._base, (index * 8) % self.width, axis=1)
        side = self.height // 4
        span_x, span_y = self.width - side, self.height - side
        left = abs((index * 6) % (2 * span_x) - span_x)
        top = abs((index * 4) % (2 * span_y) - span_y)
        image[top : top + side, left : left + side] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = round(index * VIDEO_CLOCK_RATE / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame


class SineToneTrack(_PacedTrack):
    """Audio: a continuous sine tone, 48 kHz mono, 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency_hz: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__(1.0 / AUDIO_PTIME)
        self.frequency_hz = frequency_hz
        self._amplitude = amplitude * 32767
        self._samples = round(AUDIO_SAMPLE_RATE * AUDIO_PTIME)

    async def recv(self) -> av.AudioFrame:
        index = await self._next_index()
        first = index * self._samples
        t = (np.arange(self._samples) + first) / AUDIO_SAMPLE_RATE
        samples = (self._amplitude * np.sin(2 * math.pi * self.frequency_hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        return frame


# --------------------------------------------------------------------------- stats


@dataclass
class ConnectionStats:
    """What one peer connection received. Times are ``time.monotonic()`` values."""

    generation: int
    created_at: float
    connected_at: float | None = None
    failed: bool = False
    video_frames: int = 0
    audio_frames: int = 0
    first_video_at: float | None = None
    first_audio_at: float | None = None
    #: Decoded video frames whose picture differs from the frame before.
    changed_video_frames: int = 0
    video_size: tuple[int, int] | None = None
    #: Largest absolute decoded audio sample (0 means silence).
    audio_peak: int = 0
    _last_picture: bytes | None = field(default=None, repr=False)

    def frames(self, kind: FrameKind) -> int:
        return self.video_frames if kind == "video" else self.audio_frames

    def time_to_first_frame(self, kind: FrameKind) -> float | None:
        """Seconds from building this peer connection to its first decoded frame."""
        first = self.first_video_at if kind == "video" else self.first_audio_at
        return None if first is None else first - self.created_at


@dataclass
class _Connection:
    """One RTCPeerConnection and everything that lives and dies with it."""

    pc: RTCPeerConnection
    stats: ConnectionStats
    local_tracks: list[MediaStreamTrack]
    consumers: set[asyncio.Task[None]] = field(default_factory=set)
    pending_candidates: list[RTCIceCandidate | None] = field(default_factory=list)


# --------------------------------------------------------------------------- the peer

_M = TypeVar("_M", bound=BaseModel)


def _lenient(model: type[_M], message: Mapping[str, Any]) -> _M:
    # The contract lets the server add fields; validate only the known ones.
    return model.model_validate({k: v for k, v in message.items() if k in model.model_fields})


class MediaPeer:
    """One side of a call's media, driven by the contract's media messages.

    ``role`` is what this peer expects to be told in ``media.start``; a
    different role there is a :class:`PeerProtocolError`. ``ice_servers`` is
    used until ``media.start`` brings its own list. Incoming messages go to
    :meth:`handle`; outgoing ones are queued and delivered, in order, by one
    writer task that calls ``send``. :meth:`close` stops everything.
    """

    def __init__(
        self,
        role: MediaRole,
        ice_servers: Sequence[IceServer | Mapping[str, Any]],
        send: Send,
        *,
        name: str | None = None,
        trickle: bool = False,
        width: int = 320,
        height: int = 240,
        fps: float = 15.0,
        tone_hz: float = 440.0,
        send_queue_size: int = 64,
        video: Callable[[], MediaStreamTrack] | None = None,
    ) -> None:
        self.role: MediaRole = role
        # Builds the video track of each new connection (default: the moving pattern).
        self._video_factory = video
        self.name = name or role
        self.trickle = trickle
        self.call_id: str | None = None
        self.ice_servers: list[IceServer] = [
            s if isinstance(s, IceServer) else IceServer.model_validate(s) for s in ice_servers
        ]
        #: ``media.state`` values this peer reported, in order.
        self.reported_states: list[MediaStateValue] = []
        #: Stats of every peer connection this peer built, the current one last.
        self.connections: list[ConnectionStats] = []
        self._send = send
        self._video = (width, height, fps)
        self._tone_hz = tone_hz
        self._conn: _Connection | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(send_queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._failures: list[BaseException] = []
        self._closed = False

    # -- public API ----------------------------------------------------------

    @property
    def stats(self) -> ConnectionStats | None:
        """Stats of the current peer connection (``None`` before ``media.start``)."""
        return self._conn.stats if self._conn is not None else None

    @property
    def connection_state(self) -> str | None:
        """aiortc's ``connectionState`` of the current peer connection."""
        return self._conn.pc.connectionState if self._conn is not None else None

    def time_to_first_frame(self, kind: FrameKind = "video") -> float | None:
        """Seconds from building the current connection to its first decoded frame."""
        stats = self.stats
        return stats.time_to_first_frame(kind) if stats is not None else None

    async def handle(self, message: Mapping[str, Any]) -> bool:
        """Act on one message from the server. Returns ``False`` if it is not a
        media message for a client (``call.*``, ``queue.update``, ...), or if
        the peer is closed; raises :class:`PeerProtocolError` if it is one that
        makes no sense now, and ``pydantic.ValidationError`` if it is off-contract.
        """
        if self._closed:
            return False
        kind = message.get("type")
        if kind == "media.start":
            await self._on_start(_lenient(MediaStart, message))
        elif kind == "media.restart":
            await self._on_restart(_lenient(MediaRestart, message))
        elif kind == "webrtc.offer":
            await self._on_offer(_lenient(WebRtcOffer, message))
        elif kind == "webrtc.answer":
            await self._on_answer(_lenient(WebRtcAnswer, message))
        elif kind == "webrtc.ice":
            await self._on_ice(_lenient(WebRtcIce, message))
        else:
            return False
        return True

    # The timeout is a parameter (not left to the caller's asyncio.timeout) so
    # that the error can say how many frames did arrive.
    async def wait_for_frames(
        self,
        n: int,
        timeout: float,
        kind: FrameKind = "video",
    ) -> ConnectionStats:
        """Wait until the current peer connection has decoded ``n`` frames of ``kind``.

        Counting starts again at zero on each new connection (``media.start``
        or ``media.restart``). Raises :class:`PeerFailed` as soon as the
        connection fails, and ``TimeoutError`` (saying how far it got) after
        ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._raise_if_failed()
                    stats = self.stats
                    if stats is not None and stats.frames(kind) >= n:
                        return stats
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            stats = self.stats
            got = stats.frames(kind) if stats is not None else 0
            raise TimeoutError(
                f"{self.name}: {got} of {n} {kind} frames after {timeout} s "
                f"(connection state {self.connection_state})"
            ) from None

    async def wait_connected(self, timeout: float) -> ConnectionStats:
        """Wait until the current peer connection is connected."""
        async with asyncio.timeout(timeout):
            while True:
                self._raise_if_failed()
                stats = self.stats
                if stats is not None and stats.connected_at is not None:
                    return stats
                self._progress.clear()
                await self._progress.wait()

    async def close(self) -> None:
        """Close the peer connection and stop every task of this peer.

        Safe to call twice. Queued messages not yet sent are dropped: the peer
        is leaving, the other side learns it from the server.
        """
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await self._close_connection(conn)
        finally:
            if self._writer is not None:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
                self._writer = None
            self._progress.set()

    async def __aenter__(self) -> MediaPeer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- message handlers ----------------------------------------------------

    async def _on_start(self, message: MediaStart) -> None:
        if message.role != self.role:
            raise PeerProtocolError(
                f"{self.name}: media.start says {message.role}, this peer is the {self.role}"
            )
        # A second media.start (say, after the server lost its own state) is
        # handled like a restart with possibly new ICE servers.
        self.call_id = message.call_id
        self.ice_servers = list(message.ice_servers)
        await self._replace_connection()

    async def _on_restart(self, message: MediaRestart) -> None:
        self._check_call(message.call_id, "media.restart")
        await self._replace_connection()

    async def _on_offer(self, message: WebRtcOffer) -> None:
        conn = self._current(message.call_id, "webrtc.offer")
        if self.role != "answerer":
            raise PeerProtocolError(f"{self.name}: the offerer received an offer")
        if conn.pc.remoteDescription is not None:
            # aiortc cannot do an ICE restart on a live connection; a new offer
            # must come after media.restart, on a new connection.
            raise PeerProtocolError(f"{self.name}: second offer without media.restart")
        await conn.pc.setRemoteDescription(RTCSessionDescription(sdp=message.sdp, type="offer"))
        await self._flush_candidates(conn)
        await conn.pc.setLocalDescription(await conn.pc.createAnswer())
        await self._send_description(conn, "answer")

    async def _on_answer(self, message: WebRtcAnswer) -> None:
        conn = self._current(message.call_id, "webrtc.answer")
        if self.role != "offerer":
            raise PeerProtocolError(f"{self.name}: the answerer received an answer")
        if conn.pc.signalingState != "have-local-offer":
            raise PeerProtocolError(
                f"{self.name}: answer in signaling state {conn.pc.signalingState}"
            )
        await conn.pc.setRemoteDescription(RTCSessionDescription(sdp=message.sdp, type="answer"))
        await self._flush_candidates(conn)

    async def _on_ice(self, message: WebRtcIce) -> None:
        conn = self._current(message.call_id, "webrtc.ice")
        candidate = _rtc_candidate(message.candidate)
        if conn.pc.remoteDescription is None:
            # Candidates may overtake the description they belong to; keep them
            # until it is set, as browsers do.
            conn.pending_candidates.append(candidate)
        else:
            await conn.pc.addIceCandidate(candidate)

    # -- connections ---------------------------------------------------------

    async def _replace_connection(self) -> None:
        old, self._conn = self._conn, None
        if old is not None:
            await self._close_connection(old)
        conn = self._build_connection()
        self._conn = conn
        self._progress.set()
        if self.role == "offerer":
            await conn.pc.setLocalDescription(await conn.pc.createOffer())
            await self._send_description(conn, "offer")

    def _build_connection(self) -> _Connection:
        pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
        width, height, fps = self._video
        video = self._video_factory
        tracks: list[MediaStreamTrack] = [
            video() if video is not None else MovingPatternTrack(width, height, fps),
            SineToneTrack(self._tone_hz),
        ]
        stats = ConnectionStats(generation=len(self.connections) + 1, created_at=time.monotonic())
        self.connections.append(stats)
        conn = _Connection(pc=pc, stats=stats, local_tracks=tracks)
        for track in tracks:
            pc.addTrack(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if conn is not self._conn:
                return  # a replaced connection closing down: not news for the server
            state = pc.connectionState
            if state == "connected" and stats.connected_at is None:
                stats.connected_at = time.monotonic()
                self._report("connected")
            elif state == "failed" and not stats.failed:
                stats.failed = True
                self._report("failed")
            self._progress.set()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if conn is not self._conn:
                return
            task = asyncio.create_task(
                self._consume(conn, track), name=f"{self.name}-recv-{track.kind}"
            )
            conn.consumers.add(task)

        return conn

    async def _close_connection(self, conn: _Connection) -> None:
        # Consumers first, so no task is left reading from a closed receiver.
        for task in conn.consumers:
            task.cancel()
        await asyncio.gather(*conn.consumers, return_exceptions=True)
        conn.consumers.clear()
        await conn.pc.close()
        for track in conn.local_tracks:
            track.stop()

    async def _consume(self, conn: _Connection, track: MediaStreamTrack) -> None:
        stats = conn.stats
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if isinstance(frame, av.VideoFrame):
                    _count_video(stats, frame, now)
                elif isinstance(frame, av.AudioFrame):
                    _count_audio(stats, frame, now)
                self._progress.set()
        except MediaStreamError:
            return  # the remote track ended: its connection is closing
        except Exception as exc:
            self._fail(exc)

    # -- sending -------------------------------------------------------------

    async def _send_description(self, conn: _Connection, kind: Literal["offer", "answer"]) -> None:
        assert self.call_id is not None
        description = conn.pc.localDescription
        sdp, candidates = (
            _split_candidates(description.sdp) if self.trickle else (description.sdp, [])
        )
        model = WebRtcOffer if kind == "offer" else WebRtcAnswer
        await self._enqueue(model(call_id=self.call_id, sdp=sdp))
        if self.trickle:
            for candidate in candidates:
                await self._enqueue(WebRtcIce(call_id=self.call_id, candidate=candidate))
            await self._enqueue(WebRtcIce(call_id=self.call_id, candidate=None))

    def _report(self, state: MediaStateValue) -> None:
        assert self.call_id is not None
        self.reported_states.append(state)
        message = MediaState(call_id=self.call_id, state=state)
        try:
            self._outbox.put_nowait(message.model_dump(mode="json"))
        except asyncio.QueueFull:
            self._fail(PeerFailed(f"{self.name}: send queue full, {state} report lost"))
        self._ensure_writer()

    async def _enqueue(self, message: BaseModel) -> None:
        self._ensure_writer()
        await self._outbox.put(message.model_dump(mode="json"))

    def _ensure_writer(self) -> None:
        if self._writer is None and not self._closed:
            self._writer = asyncio.create_task(self._write_loop(), name=f"{self.name}-writer")

    async def _write_loop(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await self._send(message)
            except Exception as exc:
                # Keep going: one failed delivery is reported through
                # wait_for_frames, and later messages still get their chance.
                self._fail(exc)

    # -- helpers -------------------------------------------------------------

    def _current(self, call_id: str, what: str) -> _Connection:
        self._check_call(call_id, what)
        if self._conn is None:
            raise PeerProtocolError(f"{self.name}: {what} before media.start")
        return self._conn

    def _check_call(self, call_id: str, what: str) -> None:
        if self.call_id is None:
            raise PeerProtocolError(f"{self.name}: {what} before media.start")
        if call_id != self.call_id:
            raise PeerProtocolError(f"{self.name}: {what} for call {call_id}, not {self.call_id}")

    async def _flush_candidates(self, conn: _Connection) -> None:
        pending, conn.pending_candidates = conn.pending_candidates, []
        for candidate in pending:
            await conn.pc.addIceCandidate(candidate)

    def _fail(self, exc: BaseException) -> None:
        logger.warning("%s: %r", self.name, exc)
        self._failures.append(exc)
        self._progress.set()

    def _raise_if_failed(self) -> None:
        if self._closed:
            raise PeerFailed(f"{self.name}: closed")
        if self._failures:
            raise PeerFailed(f"{self.name}: {self._failures[0]!r}") from self._failures[0]
        stats = self.stats
        if stats is not None and stats.failed:
            raise PeerFailed(f"{self.name}: peer connection {stats.generation} failed")


def _count_video(stats: ConnectionStats, frame: av.VideoFrame, now: float) -> None:
    if stats.first_video_at is None:
        stats.first_video_at = now
    stats.video_frames += 1
    stats.video_size = (frame.width, frame.height)
    # A digest of the luma plane: cheap (one 76 KB plane at 320x240) and enough
    # to tell a moving picture from a frozen one.
    picture = hashlib.blake2b(bytes(frame.planes[0]), digest_size=16).digest()
    if stats._last_picture is not None and picture != stats._last_picture:
        stats.changed_video_frames += 1
    stats._last_picture = picture


def _count_audio(stats: ConnectionStats, frame: av.AudioFrame, now: float) -> None:
    if stats.first_audio_at is None:
        stats.first_audio_at = now
    stats.audio_frames += 1
    peak = int(np.abs(frame.to_ndarray().astype(np.int32)).max(initial=0))
    stats.audio_peak = max(stats.audio_peak, peak)


def _rtc_candidate(candidate: IceCandidate | None) -> RTCIceCandidate | None:
    """Wire candidate → aiortc candidate; ``None`` means end-of-candidates."""
    if candidate is None:
        return None
    line = candidate.candidate.removeprefix("candidate:")
    if not line:
        # Browsers signal the end of a media section's candidates with "".
        # With BUNDLE (always, between our peers) there is one transport.
        return None
    try:
        rtc = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError) as exc:
        raise PeerProtocolError(f"malformed ICE candidate {candidate.candidate!r}") from exc
    rtc.sdpMid = candidate.sdpMid
    rtc.sdpMLineIndex = candidate.sdpMLineIndex
    return rtc


def _split_candidates(sdp: str) -> tuple[str, list[IceCandidate]]:
    """Take the ``a=candidate`` and ``a=end-of-candidates`` lines out of an SDP.

    Returns the SDP without them and the candidates, each tagged with the mid
    and index of its media section, as a browser would trickle them.
    """
    kept: list[str] = []
    found: list[tuple[str, int]] = []
    mids: dict[int, str] = {}
    index = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:"):
            mids[index] = line.removeprefix("a=mid:")
        if line.startswith("a=candidate:"):
            found.append((line.removeprefix("a="), index))
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    candidates = [
        IceCandidate(candidate=text, sdpMid=mids.get(i), sdpMLineIndex=i) for text, i in found
    ]
    return "\r\n".join(kept) + "\r\n", candidates


@contextlib.contextmanager
def loopback_only_candidates(ipv6: bool = False) -> Iterator[None]:
    """Make aiortc gather only ``127.0.0.1`` (and ``::1``) host candidates.

    aioice leaves loopback out of its host addresses, so on a host whose only
    interface is ``lo`` (a bare network namespace, some CI sandboxes) a peer has
    no candidate at all and never connects. This patches aioice's module-level
    address lookup for the duration of the block: it affects every peer
    connection *created* in this process meanwhile, so use it only where every
    peer in the process is a test peer.
    """
    addresses = ["127.0.0.1", *(["::1"] if ipv6 else [])]
    original = aioice.ice.get_host_addresses

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = loopback
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
