"""The video integrity analyser: CPU per analysed track-second, samples, detection delay.

Each track is the synthetic customer camera of the integrity tests
(tests/integrity/sources.py: one face, sensor noise, jittered capture times),
320x240 at 10 fps, VP8-encoded once beforehand (a keyframe every second) so
that encoding does not count.
Every track then plays, in real time, ``--live`` seconds of live video and then
an attack: one repeated frame (frozen) or its last 3 s again and again (looped),
alternately across tracks. Frames go through the real path: the media node's
tap (AnalyserTap, on this loop), the bounded queue, the worker process (decode,
hashes, faces, detectors) and back.

Figures, for 1, 5 and 10 concurrent tracks:
- CPU of the worker processes per analysed track-second (psutil, every thread);
- samples analysed and dropped (the queue is full: the analysis sheds load);
- detection delay: seconds from the first attack frame to the signal;
- floor, measured in the same run: decoding the same frames alone, in this
  process (what any analysis of the video costs at least), and the ratio.
Targets: at most 5% of a core per track, detection within 5 s, no dropped media
(the tap never blocks the relay; dropped *samples* are reported as such).

    .venv/bin/python bench/integrity.py [--tracks 1 5 10] [--live 10] [--attack 8]
    .venv/bin/python bench/integrity.py --false-alarm 300   # 5 minutes live: signals raised
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _verdict import Verdicts  # bench/_verdict.py, beside this script

from signaling.integrity.detectors import Thresholds
from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalyserTap
from signaling.integrity.worker import AnalysisPool
from signaling.media.tap import EncodedFrame
from tests.integrity.sources import SyntheticCamera

FPS = 10.0
SAMPLE_INTERVAL_S = 1 / 3
CPU_TARGET = 0.05
DELAY_TARGET_S = 5.0


@dataclass
class Clip:
    packets: list[tuple[bytes, int, bool]]  # data, rtp timestamp, keyframe
    attack_at: int  # index of the first attack frame


def encode(live_s: float, attack_s: float, attack: str, seed: int) -> Clip:
    """The camera's frames, as VP8 packets with capture-time RTP timestamps."""
    camera = SyntheticCamera(faces=1, seed=seed)
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = camera.width, camera.height, "yuv420p"
    encoder.bit_rate, encoder.time_base = 400_000, fractions.Fraction(1, 90_000)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    # A keyframe every second: what a sender's answer to the tap's keyframe requests
    # (after a dropped sample) looks like, without a peer connection to ask.
    encoder.gop_size = int(FPS)
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    packets: list[tuple[bytes, int, bool]] = []
    live_n, total = int(live_s * FPS), int((live_s + attack_s) * FPS)
    pts = 0
    for index in range(total):
        if index < live_n:
            image = camera._picture(index, index / FPS)
            images.append(image)
        elif attack == "frozen":
            image = images[-1]
        else:
            clip = images[-int(3 * FPS) :]
            image = clip[(index - live_n) % len(clip)]
        pts += round(90_000 / FPS + rng.normal(0, 180))  # a camera's +-2 ms
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = pts
        for packet in encoder.encode(frame):
            packets.append((bytes(packet), pts, bool(packet.is_keyframe)))
    return Clip(packets, live_n)


def decode_floor(clip: Clip) -> float:
    """CPU seconds to decode the clip once, here: the least any analysis costs."""
    decoder = av.CodecContext.create("vp8", "r")
    started = time.process_time()
    for data, _, _ in clip.packets:
        decoder.decode(av.Packet(data))
    return time.process_time() - started


async def play(
    tap: AnalyserTap, clip: Clip, state: CallIntegrity, code: str | None
) -> float | None:
    """Feed the clip in real time; seconds from the attack's first frame to ``code``."""
    start = time.monotonic()
    attacked_at: float | None = None
    delay: float | None = None
    for index, (data, ts, key) in enumerate(clip.packets):
        due = start + index / FPS - time.monotonic()
        if due > 0:
            await asyncio.sleep(due)
        now = time.time()
        if index == clip.attack_at:
            attacked_at = now
        tap.write(EncodedFrame("customer", "video", "VP8", data, ts, 90_000, key, now))
        if code and delay is None and attacked_at and code in state.active_codes():
            delay = now - attacked_at
    if code and delay is None and attacked_at and code in state.active_codes():
        delay = time.time() - attacked_at
    return delay


async def run(
    tracks: int, live_s: float, attack_s: float, clips: dict[str, Clip]
) -> dict[str, object]:
    pool = AnalysisPool(Thresholds(), workers=1)  # the server's defaults
    await pool.start()
    workers = [psutil.Process(w.process.pid) for w in pool._workers]
    states, taps, plays = [], [], []
    for index in range(tracks):
        attack = "frozen" if index % 2 == 0 else "looped"
        state = CallIntegrity()
        tap = AnalyserTap(
            f"track-{index}",
            pool,
            state,
            sample_interval_s=SAMPLE_INTERVAL_S,
            changed=lambda *_: None,
        )
        states.append((attack, state))
        taps.append(tap)
        code = "video_frozen" if attack == "frozen" else "video_looped"
        plays.append(play(tap, clips[attack], state, code))
    cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in workers)
    wall = time.monotonic()
    delays = await asyncio.gather(*plays)
    await asyncio.sleep(1.0)  # the last samples come back
    wall = time.monotonic() - wall
    cpu = sum(p.cpu_times().user + p.cpu_times().system for p in workers) - cpu_before
    for tap in taps:
        await tap.close()
    analysed, dropped = pool.analysed, pool.dropped
    await pool.close()
    track_seconds = tracks * (live_s + attack_s)
    return {
        "tracks": tracks,
        "cpu_per_track_s": cpu / track_seconds,
        "analysed": analysed,
        "dropped": dropped,
        "delays": {
            a: [d for (att, _), d in zip(states, delays, strict=True) if att == a]
            for a in ("frozen", "looped")
        },
        "wall": wall,
    }


async def false_alarm(seconds: float, verdicts: Verdicts) -> None:
    clip = encode(seconds, 0.0, "frozen", seed=11)
    pool = AnalysisPool(Thresholds(), workers=1)
    await pool.start()
    state = CallIntegrity()
    tap = AnalyserTap(
        "live", pool, state, sample_interval_s=SAMPLE_INTERVAL_S, changed=lambda *_: None
    )
    await play(tap, clip, state, None)
    await asyncio.sleep(1.0)
    await tap.close()
    await pool.close()
    raised = [e.view() for e in state.episodes]
    verdicts.check(
        f"false alarms over {seconds:.0f} s live",
        f"{len(raised)} signals raised ({state.analysed} samples analysed, {pool.dropped} dropped)",
        "none",
        not raised,
    )
    for episode in raised:
        print("   ", episode)


def _rounded(values: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v, 1) for v in values]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--live", type=float, default=10.0, help="live seconds before the attack")
    parser.add_argument("--attack", type=float, default=8.0, help="seconds of attack")
    parser.add_argument(
        "--false-alarm", type=float, default=0.0, help="only: N s live, count signals"
    )
    args = parser.parse_args()
    verdicts = Verdicts()
    if args.false_alarm:
        asyncio.run(false_alarm(args.false_alarm, verdicts))
        return verdicts.exit_code()
    clips = {a: encode(args.live, args.attack, a, seed=3) for a in ("frozen", "looped")}
    floor = decode_floor(clips["frozen"]) / (args.live + args.attack)
    print(f"floor: decoding alone {floor * 100:.2f}% of a core per track (this process)")
    for tracks in args.tracks:
        r = asyncio.run(run(tracks, args.live, args.attack, clips))
        cpu = float(r["cpu_per_track_s"])  # type: ignore[arg-type]
        delays = r["delays"]  # type: ignore[assignment]
        flat = [d for ds in delays.values() for d in ds]  # type: ignore[union-attr]
        worst = max((d for d in flat if d is not None), default=None)
        missed = sum(d is None for d in flat)
        print(
            f"{tracks:>2} tracks: samples analysed {r['analysed']}, dropped {r['dropped']}",
            flush=True,
        )
        verdicts.check(
            f"{tracks} tracks, worker CPU per track",
            f"{cpu * 100:.2f}% of a core ({cpu / floor:.1f}x the decode floor)",
            f"<= {CPU_TARGET:.0%}",
            cpu <= CPU_TARGET,
        )
        verdicts.check(
            f"{tracks} tracks, detection delay",
            f"frozen {_rounded(delays['frozen'])} looped {_rounded(delays['looped'])} s"  # type: ignore[index]
            + (f", {missed} not detected" if missed else ""),
            f"every attack within {DELAY_TARGET_S:.0f} s",
            worst is not None and worst <= DELAY_TARGET_S and not missed,
        )
    return verdicts.exit_code()


if __name__ == "__main__":
    sys.exit(main())
