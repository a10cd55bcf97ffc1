"""The analysis worker process and the pool that feeds it from the event loop.

Decoding and face detection cost milliseconds per frame, so they run in a
separate process (``spawn``: the parent has an event loop and threads, which a
fork would copy half-way). Each track is pinned to one worker, because a video
decoder needs every frame since the last keyframe.

Bounds: each track has at most ``queue_samples`` samples waiting for or in its
worker (so that a busy machine's pause of the worker is ridden out by every
track alike, and one track never takes another's room); a sample beyond that is
dropped and counted (:attr:`AnalysisPool.dropped`), and the track then restarts
at its next keyframe (the tap asks for one). A worker's job queue holds that
many samples for up to ``TRACKS_PER_QUEUE`` tracks. Results come
back on one queue read by one thread, which hands them to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from .detectors import FrameMeasure, Thresholds, TrackDetectors

__all__ = ["AnalysisPool", "EncodedSample", "SampleResult"]

log = structlog.get_logger(__name__)

#: A worker's job queue has room for this many tracks' samples (its own, last bound).
TRACKS_PER_QUEUE = 32

# One encoded frame in a sample: data, RTP timestamp, clock rate, arrival, keyframe.
WireFrame = tuple[bytes, int, int, float, bool]


@dataclass(frozen=True, slots=True)
class EncodedSample:
    """The frames a track received since its last sample (the last one is analysed)."""

    track: str
    codec: str
    frames: tuple[WireFrame, ...]
    restart: bool = False  # frames were lost: the decoder starts again at a keyframe
    new_clock: bool = False  # a new peer connection: its RTP timestamps start afresh


@dataclass(frozen=True, slots=True)
class SampleResult:
    """What the worker found in one sample."""

    track: str
    at: float
    decoded: int
    undecodable: int
    signals: tuple[tuple[str, float, float, str], ...]  # code, since, confidence, detail
    faces: tuple[tuple[float, float, float, float], ...]  # x, y, w, h as fractions of the frame
    colour: tuple[float, float, float] | None  # mean RGB of the largest face, else of the frame
    cpu_s: float  # the worker's CPU time spent on this sample


# ----------------------------------------------------------------------------- worker side


class _Track:
    def __init__(self, codec: str, thresholds: Thresholds) -> None:
        import av

        self.codec = codec
        self.decoder: Any = av.CodecContext.create(codec.lower(), "r")
        self.detectors = TrackDetectors(thresholds)
        self.wants_keyframe = True
        self.last_seen = time.monotonic()

    def restart(self, codec: str) -> None:
        import av

        self.codec = codec
        self.decoder = av.CodecContext.create(codec.lower(), "r")
        self.wants_keyframe = True


#: Luma of limited-range video (16-235) stretched to 0-255, as a grey picture would be:
#: the detectors' pixel thresholds are in those units.
_LUMA_OFFSET, _LUMA_SCALE = 16.0, 255.0 / 219.0
#: The smallest face the detector looks for, as a fraction of the picture's width. A face
#: in a video call fills far more than that; the smaller sizes are most of the detector's cost.
FACE_MIN_FRACTION = 0.14
#: Picture formats whose first plane is full-resolution luma and the next two chroma at half.
_PLANAR_420 = {"yuv420p", "yuvj420p"}


def _planes(frame: Any) -> tuple[Any, Any, Any]:
    """The picture's Y, U and V planes as numpy views (no copy), 4:2:0."""
    import numpy as np

    if frame.format.name not in _PLANAR_420:
        frame = frame.reformat(format="yuv420p")
    out = []
    for plane in frame.planes[:3]:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        out.append(rows[:, : plane.width])
    return out[0], out[1], out[2]


def _measure(luma: Any, at: float, ts: int, clock: int) -> FrameMeasure:
    """Hash and thumbnail straight from the luma plane: two area resizes, no colour
    conversion, no copy of the picture."""
    import cv2
    import numpy as np

    small = cv2.resize(luma, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    phash = int.from_bytes(np.packbits(bits).tobytes(), "big")
    thumb = cv2.resize(luma, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb -= _LUMA_OFFSET
    thumb *= _LUMA_SCALE
    return FrameMeasure(at=at, rtp_timestamp=ts, clock_rate=clock, phash=phash, thumbnail=thumb)


def _mean_rgb(
    y: Any, u: Any, v: Any, box: tuple[int, int, int, int] | None
) -> tuple[float, float, float]:
    """Mean colour of a region of a 4:2:0 picture (the whole picture without a box).

    The mean of an affine colour conversion is the conversion of the means, so the
    region's mean Y, U and V are converted once (ITU-R BT.601, limited range: what
    the decoder's pictures are, and what a conversion to RGB would have used).
    """
    if box is not None:
        x, top, w, h = box
        y = y[top : top + h, x : x + w]
        u = u[top // 2 : (top + h + 1) // 2, x // 2 : (x + w + 1) // 2]
        v = v[top // 2 : (top + h + 1) // 2, x // 2 : (x + w + 1) // 2]
    luma = 1.164 * (float(y.mean()) - 16.0)
    cb, cr = float(u.mean()) - 128.0, float(v.mean()) - 128.0
    rgb = (luma + 1.596 * cr, luma - 0.392 * cb - 0.813 * cr, luma + 2.017 * cb)
    return tuple(min(255.0, max(0.0, c)) for c in rgb)  # type: ignore[return-value]


class _Faces:
    def __init__(self, width: int) -> None:
        import cv2

        self.cv2 = cv2
        self.width = width
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"the face detector's model is missing: {path}")

    def find(
        self, y: Any, u: Any, v: Any
    ) -> tuple[tuple[tuple[float, float, float, float], ...], tuple[float, float, float]]:
        """Face boxes (fractions of the picture, largest first) and the mean colour of
        the largest face (of the whole picture when there is none)."""
        cv2 = self.cv2
        full_h, full_w = y.shape
        height = max(2, round(full_h * self.width / full_w)) // 2 * 2
        grey = cv2.resize(y, (self.width, height), interpolation=cv2.INTER_AREA)
        smallest = max(24, int(self.width * FACE_MIN_FRACTION))
        found = self.cascade.detectMultiScale(
            grey, scaleFactor=1.15, minNeighbors=5, minSize=(smallest, smallest)
        )
        w_f, h_f = float(self.width), float(height)
        boxes = sorted(
            ((int(x) / w_f, int(top) / h_f, int(w) / w_f, int(h) / h_f) for x, top, w, h in found),
            key=lambda b: -b[2] * b[3],
        )
        region = None
        if boxes:
            bx, by, bw, bh = boxes[0]
            region = (
                int(bx * full_w),
                int(by * full_h),
                max(1, int(bw * full_w)),
                max(1, int(bh * full_h)),
            )
        return tuple(boxes), _mean_rgb(y, u, v, region)


def _analyse(
    tracks: dict[str, _Track], faces: _Faces, job: EncodedSample, thresholds: Thresholds
) -> SampleResult:
    started = time.process_time()
    track = tracks.get(job.track)
    if track is None:
        track = tracks[job.track] = _Track(job.codec, thresholds)
    elif job.restart or track.codec != job.codec:
        track.restart(job.codec)  # the detectors keep what they saw
    if job.new_clock:
        track.detectors.reset_timing()
    track.last_seen = time.monotonic()
    import av

    decoded, undecodable, last = 0, 0, None
    last_at = job.frames[-1][3] if job.frames else time.time()
    for data, ts, clock, arrival, keyframe in job.frames:
        if track.wants_keyframe and not keyframe:
            undecodable += 1
            continue
        track.wants_keyframe = False
        try:
            pictures = track.decoder.decode(av.Packet(data))
        except (av.error.FFmpegError, ValueError):
            undecodable += 1
            track.decoder = av.CodecContext.create(track.codec.lower(), "r")
            track.wants_keyframe = True
            continue
        for picture in pictures:
            decoded += 1
            planes = _planes(picture)
            track.detectors.frame(_measure(planes[0], arrival, ts, clock))
            last, last_at = planes, arrival
    found: tuple[tuple[float, float, float, float], ...] = ()
    colour = None
    if last is not None:
        found, colour = faces.find(*last)
        track.detectors.sample(last_at, len(found))
    signals = tuple((s.code, s.since, s.confidence, s.detail) for s in track.detectors.active())
    return SampleResult(
        track=job.track,
        at=last_at,
        decoded=decoded,
        undecodable=undecodable,
        signals=signals,
        faces=found,
        colour=colour,
        cpu_s=time.process_time() - started,
    )


def worker_main(jobs: Any, results: Any, thresholds: Thresholds, face_width: int) -> None:
    """A worker process: take samples until ``None``; forget tracks idle for 2 minutes.

    numpy's BLAS and OpenCV run on this process's one thread: the workers are the
    parallelism (one per core), and thread pools spinning on a busy machine cost
    several times the work itself.
    """
    import cv2
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(1)
    cv2.setNumThreads(1)
    faces = _Faces(face_width)
    tracks: dict[str, _Track] = {}
    results.put(("ready", None))
    while True:
        try:
            job = jobs.get(timeout=30.0)
        except queue.Empty:
            job = ()
        if job is None:
            break
        if isinstance(job, tuple) and job[:1] == ("close",):
            tracks.pop(job[1], None)
        elif isinstance(job, EncodedSample):
            try:
                results.put(("result", _analyse(tracks, faces, job, thresholds)))
            except Exception as exc:  # one bad sample must not end the analysis of every call
                tracks.pop(job.track, None)
                results.put(("error", (job.track, f"{type(exc).__name__}: {exc}")))
        idle = time.monotonic() - 120.0
        for name in [n for n, t in tracks.items() if t.last_seen < idle]:
            del tracks[name]
    results.put(("stopped", None))


# ----------------------------------------------------------------------------- loop side

ResultHandler = Callable[[SampleResult], None]


@dataclass
class _Worker:
    process: Any
    jobs: Any


@dataclass
class AnalysisPool:
    """Worker processes shared by every analysed track of this media node.

    :meth:`submit` never blocks (it drops instead); results reach each track's
    handler on the event loop. :meth:`close` stops the workers and the reader.
    """

    thresholds: Thresholds
    workers: int = 1
    queue_samples: int = 8
    face_width: int = 240
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    submitted: int = 0
    dropped: int = 0
    analysed: int = 0
    errors: int = 0
    cpu_s: float = 0.0
    _workers: list[_Worker] = field(default_factory=list)
    _handlers: dict[str, ResultHandler] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)  # per track: sent, not answered
    _results: Any = None
    _reader: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _starting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stopped: int = 0
    _closed: bool = False

    @property
    def running(self) -> bool:
        """A worker is up and analysing (before that, samples are not queued at all)."""
        return bool(self._workers) and self._ready.is_set() and not self._closed

    async def start(self) -> None:
        """Start the workers (once); returns when the first is ready to analyse."""
        async with self._starting:
            if self._workers or self._closed:
                return
            self._loop = asyncio.get_running_loop()
            ctx = multiprocessing.get_context("spawn")
            self._results = ctx.Queue()
            for index in range(self.workers):
                jobs = ctx.Queue(self.queue_samples * TRACKS_PER_QUEUE)
                process = ctx.Process(
                    target=worker_main,
                    args=(jobs, self._results, self.thresholds, self.face_width),
                    name=f"integrity-worker-{index}",
                    daemon=True,
                )
                await asyncio.to_thread(process.start)
                self._workers.append(_Worker(process, jobs))
            self._reader = threading.Thread(
                target=self._read, name="integrity-results", daemon=True
            )
            self._reader.start()
            ready = await asyncio.to_thread(self._ready.wait, self.start_timeout_s)
            if not ready:
                log.warning("integrity.worker_slow_to_start", timeout_s=self.start_timeout_s)

    def subscribe(self, track: str, handler: ResultHandler) -> None:
        self._handlers[track] = handler

    def unsubscribe(self, track: str) -> None:
        self._handlers.pop(track, None)
        self._in_flight.pop(track, None)
        worker = self._worker_for(track)
        if worker is not None:
            with contextlib.suppress(queue.Full, ValueError, OSError):
                worker.jobs.put_nowait(("close", track))  # else the worker forgets it when idle

    def submit(self, sample: EncodedSample) -> bool:
        """Queue a sample; False (and counted as dropped) when its worker is behind."""
        worker = self._worker_for(sample.track)
        waiting = self._in_flight.get(sample.track, 0)
        if worker is None or waiting >= self.queue_samples:
            self.dropped += 1
            return False
        try:
            worker.jobs.put_nowait(sample)
        except (queue.Full, ValueError, OSError):
            self.dropped += 1
            return False
        self._in_flight[sample.track] = waiting + 1
        self.submitted += 1
        return True

    def _answered(self, track: str) -> None:
        waiting = self._in_flight.get(track)
        if waiting is not None:
            if waiting <= 1:
                del self._in_flight[track]
            else:
                self._in_flight[track] = waiting - 1

    def _worker_for(self, track: str) -> _Worker | None:
        if not self._workers or self._closed:
            return None
        return self._workers[zlib.crc32(track.encode()) % len(self._workers)]

    def _read(self) -> None:
        """The one reader of the results queue (a thread: the queue's get blocks)."""
        while True:
            try:
                kind, payload = self._results.get()
            except (EOFError, OSError, ValueError):
                return
            if kind == "ready":
                self._ready.set()
            elif kind == "stopped" or kind == "quit":
                self._stopped += 1
                if kind == "quit" or self._stopped >= len(self._workers):
                    return
            elif self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._deliver, kind, payload)

    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == "error":
            self._answered(payload[0])
            self.errors += 1
            log.warning("integrity.sample_failed", track=payload[0], error=payload[1])
            return
        result: SampleResult = payload
        self._answered(result.track)
        self.analysed += 1
        self.cpu_s += result.cpu_s
        handler = self._handlers.get(result.track)
        if handler is not None:
            handler(result)

    async def close(self) -> None:
        """Stop every worker (then terminate what did not stop) and the reader; idempotent."""
        if self._closed:
            return
        self._closed = True
        timeout = self.stop_timeout_s
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(worker.jobs.put, None, True, timeout)
        for worker in workers:
            await asyncio.to_thread(worker.process.join, timeout)
            if worker.process.is_alive():
                worker.process.terminate()
                await asyncio.to_thread(worker.process.join, 5.0)
            worker.jobs.close()
            worker.jobs.cancel_join_thread()
        if self._results is not None:
            with contextlib.suppress(Exception):
                self._results.put(("quit", None))
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, timeout)
        self._handlers.clear()
