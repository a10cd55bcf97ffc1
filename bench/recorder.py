"""The compliance recorder alone: CPU per recorded call-second, against a floor.

A "call" is both parties' 640x480 VP8 (about 800 kb/s, keyframe every 2 s) and
Opus (20 ms packets), pre-encoded once so encoding does not count. Each call is
fed through the real recorder path (bounded queue, writer thread, PyAV packet
muxing into Matroska in memory, AES-256-GCM chunks appended to a spool file,
fsync per segment, copy into local storage with fsync and rename). The floor, in
the same run over the same frames: appending the raw frame bytes, unencrypted,
to one file per track with an fsync every 6 s of media. CPU is the process's
CPU time (every thread), so the recorder's worker threads are counted.
The database index (one row and one audit entry per segment) is not included.

    .venv/bin/python bench/recorder.py [--calls 4] [--seconds 20]

Target: at most 10 ms of CPU per recorded call-second.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signaling.media.recording.keys import new_recording_key
from signaling.media.recording.storage import LocalStorage
from signaling.media.recording.track import ClosedSegment
from signaling.media.recording.writer import CallWriter
from signaling.media.tap import EncodedFrame, Party

WIDTH, HEIGHT, FPS = 640, 480, 30


def video(party: Party, seconds: float, seed: int) -> list[EncodedFrame]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 90000)
    encoder.framerate = FPS
    encoder.gop_size = 2 * FPS
    encoder.bit_rate = 800_000
    encoder.thread_count = 1
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(seed)
    base = int(rng.integers(0, 1 << 32))
    frames = []
    for i in range(round(seconds * FPS)):
        image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        image[:, :, 0] = (np.arange(WIDTH) + i * 3) % 256
        image[:, :, 1] = ((np.arange(HEIGHT) + i * 2) % 256)[:, None]
        y, x = (i * 5) % (HEIGHT - 120), (i * 7) % (WIDTH - 160)
        image[y : y + 120, x : x + 160] = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i * 3000, encoder.time_base
        for packet in encoder.encode(frame):
            assert packet.pts is not None
            frames.append(
                EncodedFrame(
                    party,
                    "video",
                    "VP8",
                    bytes(packet),
                    (base + packet.pts) & 0xFFFFFFFF,
                    90000,
                    packet.is_keyframe,
                    packet.pts / 90000,
                )
            )
    return frames


def audio(party: Party, seconds: float) -> list[EncodedFrame]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    encoder.bit_rate = 32000
    frames = []
    for i in range(round(seconds * 50)):
        t = (np.arange(960) + i * 960) / 48000
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        chunk = av.AudioFrame.from_ndarray(
            np.stack([samples, samples]).T.reshape(1, -1), format="s16", layout="stereo"
        )
        chunk.sample_rate, chunk.pts = 48000, i * 960
        for packet in encoder.encode(chunk):
            assert packet.pts is not None
            frames.append(
                EncodedFrame(
                    party,
                    "audio",
                    "opus",
                    bytes(packet),
                    packet.pts,
                    48000,
                    True,
                    packet.pts / 48000,
                )
            )
    return frames


def record(frames: list[EncodedFrame], root: Path, call_id: str) -> int:
    storage = LocalStorage(root / "store")
    stored = 0

    def on_closed(segment: ClosedSegment) -> None:
        nonlocal stored
        storage.put(segment.storage_key, segment.path, retain_until=None)  # type: ignore[arg-type]
        segment.path.unlink()
        stored += 1

    writer = CallWriter(
        call_id=call_id,
        started_at=0.0,
        spool=root / "spool",
        recording_key=new_recording_key(),
        wrapped_key=None,
        on_closed=on_closed,
        on_problem=lambda reason, at: print(reason),
        queue_size=100_000,
    )
    writer.start()
    for frame in frames:
        if not writer.submit(frame):
            raise SystemExit("queue full in the benchmark")
    writer.stop(120)
    return stored


def floor(frames: list[EncodedFrame], root: Path, call_id: str) -> None:
    files: dict[tuple[str, str], int] = {}
    synced: dict[tuple[str, str], float] = {}
    for frame in frames:
        key = (frame.party, frame.kind)
        if key not in files:
            files[key] = os.open(
                root / f"{call_id}-{key[0]}-{key[1]}.raw",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o600,
            )
            synced[key] = frame.arrival
        os.write(files[key], frame.data)
        if frame.arrival - synced[key] >= 6.0:
            os.fsync(files[key])
            synced[key] = frame.arrival
    for fd in files.values():
        os.fsync(fd)
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"encoding {args.seconds:.0f} s of media for two parties (not measured)...")
    frames = sorted(
        video("customer", args.seconds, 1)
        + video("specialist", args.seconds, 2)
        + audio("customer", args.seconds)
        + audio("specialist", args.seconds),
        key=lambda f: f.arrival,
    )
    video_bytes = sum(len(f.data) for f in frames if f.kind == "video")
    kbps = video_bytes * 8 / 2 / args.seconds / 1000
    call_seconds = args.calls * args.seconds
    order = list(range(args.calls))
    random.Random(3).shuffle(order)
    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as folder:
        root = Path(folder)
        cpu = {"recorder": 0.0, "floor": 0.0}
        segments = 0
        for i in order:  # alternate so load changes hit both alike
            t = time.process_time()
            segments += record(frames, root, f"call{i}")
            cpu["recorder"] += time.process_time() - t
            t = time.process_time()
            floor(frames, root, f"call{i}")
            cpu["floor"] += time.process_time() - t
    per = {k: v * 1000 / call_seconds for k, v in cpu.items()}
    print(
        f"video per party: {kbps:.0f} kb/s; {args.calls} calls x {args.seconds:.0f} s "
        f"= {call_seconds:.0f} call-seconds; {segments} segments stored"
    )
    print(f"{'measure':<44}{'CPU ms per call-second':>24}")
    print(f"{'recorder (mux, AES-GCM, spool, fsync, store)':<44}{per['recorder']:>24.2f}")
    print(f"{'floor (raw bytes appended, fsync per 6 s)':<44}{per['floor']:>24.2f}")
    print(f"{'ratio recorder / floor':<44}{per['recorder'] / max(per['floor'], 1e-9):>23.1f}x")
    verdict = "met" if per["recorder"] <= 10 else "missed"
    print(f"recorder CPU {per['recorder']:.2f} ms per call-second (target <= 10 ms): {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
